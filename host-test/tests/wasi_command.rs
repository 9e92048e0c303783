//! The composed command (`scripts/build-command.sh`: the connector with the wasi:http adapter
//! plugged in, inside the wasi:cli command) run the way a stock wasi:http host runs a command:
//! wasmtime's own `wasi:cli` command bindings and `wasi:http` implementation, no host code of
//! ours. Graph calls go over loopback HTTP to the simulator (`GRAPH_URL`), files come from a
//! preopened folder, stdout is captured in memory.
//!
//! The adapter is also called on its own, for what the entity read does not use (a POST body, a
//! gzip answer, a refused connection).
//!
//! Skips, with a note on stderr, when the composed wasm is not built and `CI` is unset; fails in
//! CI. Only entity streams are read: insights would make the connector wait for report jobs
//! through `wasi:clocks`, which a stock host serves from the real clock.

mod common;

use graph_sim::{SimConfig, Simulator};
use host_test::demo::{SimHarness, catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::{Message, Runtime, default_component_path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What `scripts/build-command.sh` writes into the target folder.
const COMMAND_FILE: &str = "source-facebook-marketing-command.wasm";

/// The entity streams the read test selects: the account node, filtered edges, a newest-first
/// edge and a full-refresh one.
const ENTITY_STREAMS: [&str; 6] = ["ad_account", "campaigns", "ad_sets", "ads", "ad_creatives", "images"];

fn command_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SFM_COMMAND") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/wasi_command-<hash> -> target/
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(3) {
            let candidate = dir.join(COMMAND_FILE);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join(COMMAND_FILE)
}

/// The adapter beside the composed command, as scripts/build-command.sh leaves it.
fn adapter_path() -> PathBuf {
    let target = command_path().parent().map(Path::to_path_buf).unwrap_or_default();
    target.join("wasm32-wasip2").join("release").join("http_adapter.wasm")
}

fn compile(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.exists() {
        return None;
    }
    Some(Component::from_file(engine, path).unwrap_or_else(|e| panic!("cannot compile {}: {e:#}", path.display())))
}

/// The composed command and the adapter, compiled once per test binary; `None` when not built.
fn compiled() -> Option<&'static Compiled> {
    static COMPILED: OnceLock<Option<Compiled>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let engine = Engine::default();
            let command = compile(&engine, &command_path())?;
            let adapter = compile(&engine, &adapter_path())?;
            Some(Compiled { engine, command, adapter })
        })
        .as_ref()
}

struct Compiled {
    engine: Engine,
    command: Component,
    adapter: Component,
}

/// The compiled components, or `None` after saying why the test is skipped. In CI a missing
/// component fails the test: scripts/test.sh builds them.
fn compiled_or_skip(test: &str) -> Option<&'static Compiled> {
    let compiled = compiled();
    if compiled.is_none() {
        let missing: Vec<String> =
            [command_path(), adapter_path()].iter().filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
        let missing = missing.join(" and ");
        assert!(
            std::env::var_os("CI").is_none(),
            "{missing} missing in CI; scripts/test.sh builds it with scripts/build-command.sh"
        );
        eprintln!("skipping {test}: {missing} not built; run scripts/build-command.sh");
    }
    compiled
}

/// The connector in host-test's own runtime, for reads to compare with.
fn runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::load(&default_component_path()).expect("the component is built (scripts/build-command.sh builds it)")
    })
    .clone()
}

/// What a stock host keeps per command: WASI, wasi:http, and their resource table.
struct CommandHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for CommandHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CommandHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

/// How one run of the command ended.
struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
            .collect()
    }

    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["type"] == kind).collect()
    }

    fn error_traces(&self) -> Vec<Value> {
        self.of_type("TRACE").into_iter().filter(|l| l["trace"]["type"] == "ERROR").collect()
    }
}

/// A store and linker as a stock wasi:http host makes them: wasmtime's WASI and wasi:http.
fn stock_host(engine: &Engine, wasi: &mut WasiCtxBuilder) -> (Store<CommandHost>, Linker<CommandHost>) {
    let mut linker: Linker<CommandHost> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi linker");
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).expect("wasi:http linker");
    let host = CommandHost { wasi: wasi.build(), http: WasiHttpCtx::new(), table: ResourceTable::new() };
    (Store::new(engine, host), linker)
}

/// Runs the command with `args`, `dir` preopened as `.`, and `GRAPH_URL` if given.
fn run(compiled: &Compiled, args: &[&str], dir: &Path, graph_url: Option<&str>) -> Outcome {
    // 64 MiB: far above what the entity read prints; a full pipe would fail the write.
    let stdout = MemoryOutputPipe::new(64 << 20);
    let stderr = MemoryOutputPipe::new(4 << 20);
    let mut wasi = WasiCtxBuilder::new();
    let argv: Vec<&str> = std::iter::once("source-facebook-marketing").chain(args.iter().copied()).collect();
    wasi.args(&argv).stdout(stdout.clone()).stderr(stderr.clone());
    wasi.preopened_dir(dir, ".", FsPerms::ReadOnly).expect("preopen the test folder");
    if let Some(url) = graph_url {
        wasi.env("GRAPH_URL", url);
    }
    let (mut store, linker) = stock_host(&compiled.engine, &mut wasi);
    let command = Command::instantiate(&mut store, &compiled.command, &linker).expect("instantiate the command");
    let result = command.wasi_cli_run().call_run(&mut store);
    let text = |pipe: &MemoryOutputPipe| String::from_utf8(pipe.contents().to_vec()).expect("output is UTF-8");
    let status = match result {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => *code,
            None => panic!("the command trapped: {e:?}\nstderr:\n{}", text(&stderr)),
        },
    };
    Outcome { status, stdout: text(&stdout), stderr: text(&stderr) }
}

/// The calm simulator with jobs that finish at once (a served clock does not follow the
/// guest's sleeps), its world placed at real now: a stock host gives the guest the real clock,
/// so the config's start date is then what it would be against Graph today.
fn sim_config() -> SimConfig {
    let mut cfg = SimConfig::preset("calm").expect("calm is a preset");
    cfg.job_duration_ms = 0;
    cfg.start_time_ms = chrono::Utc::now().timestamp_millis();
    cfg
}

/// The simulator served over loopback HTTP in a thread, until dropped.
struct Served {
    url: String,
    stopper: host_test::http1::Stopper,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(cfg: SimConfig) -> Served {
        let server = host_test::server::Server::bind(0).expect("listen on loopback");
        let port = server.port();
        let stopper = server.stopper();
        let sim = Arc::new(Mutex::new(Simulator::new(cfg)));
        let thread = std::thread::spawn(move || {
            host_test::server::serve(&server, sim, Duration::ZERO, None, false).expect("serve the simulator");
        });
        Served { url: format!("http://127.0.0.1:{port}"), stopper, thread: Some(thread) }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A folder holding `files` (name, content), preopened by the command as `.`.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write a test file");
    }
    dir
}

/// The simulator's whole history as a config, so that every object it made is in range.
fn config_for(sim: &Simulator) -> String {
    sample_config(sim, i64::from(sim.config().history_days)).to_string()
}

/// Record ids per stream, sorted.
fn ids<'a>(records: impl Iterator<Item = (String, &'a Value)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (stream, data) in records {
        let id = data["id"].as_str().unwrap_or_else(|| panic!("a {stream} record without id: {data}"));
        out.entry(stream).or_default().push(id.to_string());
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[test]
fn spec_prints_the_one_spec_line_host_test_prints() {
    let Some(compiled) = compiled_or_skip("spec") else { return };
    let dir = folder(&[]);
    let out = run(compiled, &["spec"], dir.path(), None);
    assert_eq!(out.status, 0, "stderr:\n{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout:\n{}", out.stdout);
    let harness = SimHarness::new(runtime(), sim_config());
    let in_process = harness.guest().expect("instantiate").spec().expect("spec");
    assert_eq!(lines[0], to_line(&in_process[0]));
    assert!(out.lines()[0]["spec"]["connectionSpecification"]["properties"]["account_ids"].is_object());
}

#[test]
fn check_succeeds_for_the_simulators_accounts() {
    let Some(compiled) = compiled_or_skip("check") else { return };
    let cfg = sim_config();
    let config = config_for(&Simulator::new(cfg.clone()));
    assert!(config.contains("\"sim-token\""), "{config}");
    let served = Served::start(cfg);
    let dir = folder(&[("config.json", &config)]);
    let out = run(compiled, &["check", "--config", "config.json"], dir.path(), Some(&served.url));
    let statuses = out.of_type("CONNECTION_STATUS");
    assert_eq!(statuses.len(), 1, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(statuses[0]["connectionStatus"]["status"], "SUCCEEDED", "{}", statuses[0]);
    assert_eq!(out.status, 0);
    assert!(!out.stdout.contains("sim-token"), "the token is redacted from stdout");
}

#[test]
fn discover_lists_the_thirty_builtin_streams() {
    let Some(compiled) = compiled_or_skip("discover") else { return };
    let cfg = sim_config();
    let config = config_for(&Simulator::new(cfg.clone()));
    let served = Served::start(cfg.clone());
    let dir = folder(&[("config.json", &config)]);
    let out = run(compiled, &["discover", "--config", "config.json"], dir.path(), Some(&served.url));
    assert_eq!(out.status, 0, "stderr:\n{}", out.stderr);
    let catalogs = out.of_type("CATALOG");
    assert_eq!(catalogs.len(), 1, "stdout:\n{}", out.stdout);
    let names = |catalog: &Value| -> Vec<String> {
        catalog["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = names(&catalogs[0]["catalog"]);
    assert_eq!(listed.len(), 31, "{listed:?}");
    let harness = SimHarness::new(runtime(), cfg);
    let in_process = harness.guest().expect("instantiate").discover(&config).expect("discover");
    let Some(Message::Catalog(expected)) = in_process.iter().find(|m| matches!(m, Message::Catalog(_))) else {
        panic!("in-process discover gave no catalog")
    };
    assert_eq!(listed, names(&serde_json::from_str(expected).unwrap()));
}

#[test]
fn read_of_entity_streams_equals_the_in_process_read() {
    let Some(compiled) = compiled_or_skip("read") else { return };
    let cfg = sim_config();
    let harness = SimHarness::new(runtime(), cfg.clone());
    let config = config_for(&harness.sim.lock().unwrap());
    let discovered = harness.guest().expect("instantiate").discover(&config).expect("discover");
    let catalog = catalog_from(&discovered, &ENTITY_STREAMS).expect("catalog").to_string();
    let mut local = Vec::new();
    harness
        .guest()
        .expect("instantiate")
        .read(&config, &catalog, None, |batch| {
            local.extend(batch);
            true
        })
        .expect("in-process read");
    assert!(!local.iter().any(is_error_trace), "the in-process read failed");
    let local_data: Vec<(String, Value)> = local
        .iter()
        .filter_map(|m| match m {
            Message::Record(r) => Some((r.stream.clone(), serde_json::from_str(&r.data).unwrap())),
            _ => None,
        })
        .collect();
    let expected = ids(local_data.iter().map(|(s, d)| (s.clone(), d)));

    // The same world, served over loopback to the command.
    let served = Served::start(cfg);
    let dir = folder(&[("config.json", &config), ("catalog.json", &catalog)]);
    let out =
        run(compiled, &["read", "--config", "config.json", "--catalog", "catalog.json"], dir.path(), Some(&served.url));
    assert!(out.error_traces().is_empty(), "error traces: {:?}\nstderr:\n{}", out.error_traces(), out.stderr);
    assert_eq!(out.status, 0, "stderr:\n{}", out.stderr);
    let records = out.of_type("RECORD");
    let read = ids(records.iter().map(|l| (l["record"]["stream"].as_str().unwrap().to_string(), &l["record"]["data"])));
    for stream in ENTITY_STREAMS {
        assert!(read.get(stream).is_some_and(|v| !v.is_empty()), "no {stream} records; read: {:?}", read.keys());
    }
    assert_eq!(read, expected);
    assert!(!out.of_type("STATE").is_empty(), "the read checkpointed no state");
    assert!(out.stderr.contains(&format!("read {} records", records.len())), "stderr:\n{}", out.stderr);
}

/// The time box from the command (config `max_duration_seconds`), on the real clock the stock
/// host serves: a read of 1 s stops before its report jobs are first polled (5 s after they are
/// created), as a success with the STATEs last; reads given the states before them go on until
/// the sync ends, with the records and final state of one read without a time box.
#[test]
fn a_time_boxed_read_stops_as_a_success_and_the_next_goes_on_from_its_state() {
    let Some(compiled) = compiled_or_skip("time-boxed read") else { return };
    let cfg = sim_config();
    let sim = Simulator::new(cfg.clone());
    let mut config: Value = sample_config(&sim, 2);
    let harness = SimHarness::new(runtime(), cfg.clone());
    let discovered = harness.guest().expect("instantiate").discover(&config.to_string()).expect("discover");
    let catalog = catalog_from(&discovered, &["campaigns", "ads_insights"]).expect("catalog").to_string();
    let read = |served: &Served, config: &Value, state: Option<&str>| {
        let mut files = vec![("config.json", config.to_string()), ("catalog.json", catalog.clone())];
        let mut args = vec!["read", "--config", "config.json", "--catalog", "catalog.json"];
        if let Some(state) = state {
            files.push(("state.json", state.to_string()));
            args.extend(["--state", "state.json"]);
        }
        let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
        let dir = folder(&files);
        let out = run(compiled, &args, dir.path(), Some(&served.url));
        assert_eq!(out.status, 0, "stderr:\n{}", out.stderr);
        assert!(out.error_traces().is_empty(), "{:?}", out.error_traces());
        out
    };
    let records_and_states = |lines: &[Value], records: &mut Vec<String>, states: &mut BTreeMap<String, Value>| {
        for l in lines {
            if l["type"] == "RECORD" {
                records.push(format!("{}|{}", l["record"]["stream"], l["record"]["data"]));
            } else if l["type"] == "STATE" {
                let s = &l["state"]["stream"];
                states.insert(s["stream_descriptor"]["name"].as_str().unwrap().to_string(), s["stream_state"].clone());
            }
        }
    };
    let whole = read(&Served::start(cfg.clone()), &config, None);
    let (mut want, mut want_states) = (Vec::new(), BTreeMap::new());
    records_and_states(&whole.lines(), &mut want, &mut want_states);

    config["max_duration_seconds"] = Value::from(1);
    let served = Served::start(cfg);
    let (mut got, mut states) = (Vec::new(), BTreeMap::new());
    for reads in 1.. {
        let state = (!states.is_empty()).then(|| {
            let msgs: Vec<Value> = states
                .iter()
                .map(|(n, s)| serde_json::json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": n}, "stream_state": s}}))
                .collect();
            Value::Array(msgs).to_string()
        });
        let out = read(&served, &config, state.as_deref());
        let lines = out.lines();
        records_and_states(&lines, &mut got, &mut states);
        let last = lines.last().expect("a line");
        if !last["log"]["message"].as_str().is_some_and(|m| m.contains("time budget reached")) {
            assert!(reads >= 2, "a 1 s budget stopped the first read");
            break;
        }
        assert_eq!(lines[lines.len() - 2]["type"], "STATE", "the STATEs come last");
        assert!(reads < 10, "no end after {reads} reads");
    }
    states.retain(|_, s| s != &serde_json::json!({}));
    assert_eq!(states, want_states, "the final state");
    let distinct = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(distinct(&got), distinct(&want), "the records");
    assert!(want.iter().any(|r| r.starts_with("\"ads_insights\"")), "report rows were read");
}

#[test]
fn bad_arguments_print_the_usage_and_fail() {
    let Some(compiled) = compiled_or_skip("bad arguments") else { return };
    let dir = folder(&[]);
    let out = run(compiled, &["read", "--config", "config.json"], dir.path(), None);
    // wasi:cli 0.2's `exit` carries success or failure only: the command's 2 reaches the host as 1.
    assert_ne!(out.status, 0);
    assert!(out.stdout.is_empty(), "stdout:\n{}", out.stdout);
    assert!(out.stderr.contains("read needs --catalog FILE") && out.stderr.contains("usage:"), "{}", out.stderr);
}

#[test]
fn a_config_outside_the_preopened_folder_ends_with_an_error_trace() {
    let Some(compiled) = compiled_or_skip("missing config") else { return };
    let dir = folder(&[]);
    let out = run(compiled, &["check", "--config", "absent.json"], dir.path(), None);
    assert_eq!(out.status, 1);
    let traces = out.error_traces();
    assert_eq!(traces.len(), 1, "stdout:\n{}", out.stdout);
    assert_eq!(traces[0]["trace"]["error"]["failure_type"], "config_error");
    assert!(traces[0]["trace"]["error"]["message"].as_str().unwrap().contains("absent.json"));
}

wasmtime::component::bindgen!({ path: "../wit", world: "http-adapter" });

use exports::airbyte::source_facebook_marketing::host::{Body, FetchError, Method, Outgoing, Request, Response};

/// The bytes of a body the adapter hands back (it always hands back bytes: a `wasi:http` body
/// is not known to be text).
fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Bytes(b) => b,
        Body::Text(t) => panic!("the adapter answered text, not bytes: {t:?}"),
    }
}

/// Calls the adapter's `http-fetch` for one request, with `GRAPH_URL` set to `graph_url`.
fn adapter_fetch(compiled: &Compiled, graph_url: &str, request: &Request) -> Result<Response, FetchError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.env("GRAPH_URL", graph_url).inherit_stderr();
    let (mut store, linker) = stock_host(&compiled.engine, &mut wasi);
    let adapter = HttpAdapter::instantiate(&mut store, &compiled.adapter, &linker).expect("instantiate the adapter");
    let start = [Outgoing { id: 7, request: request.clone() }];
    let mut done =
        adapter.airbyte_source_facebook_marketing_host().call_http_fetch(&mut store, &start, None).expect("no trap");
    assert_eq!(done.len(), 1, "one request in flight: its completion");
    assert_eq!(done[0].id, 7);
    done.remove(0).outcome
}

#[test]
fn adapter_hands_back_a_fast_answer_while_a_slow_one_started_first_is_still_on_its_way() {
    let Some(compiled) = compiled_or_skip("adapter concurrency") else { return };
    let server = common::loopback_server(0).expect("listen on loopback");
    let port = server.server_addr().to_ip().expect("an IP listener").port();
    // The slow request is answered only once the test has the fast answer in hand: one request
    // at a time, the slow one would wait for an answer that never comes and time out.
    let (got_fast, answer_slow) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let (a, b) = (server.recv().expect("a request"), server.recv().expect("another request"));
        let (slow, fast) = if a.url().contains("slow") { (a, b) } else { (b, a) };
        fast.respond(tiny_http::Response::from_string("{\"fast\":true}")).expect("respond");
        answer_slow.recv().expect("the test saw the fast answer");
        slow.respond(tiny_http::Response::from_string("{\"slow\":true}")).expect("respond");
    });
    let get = |id: u64, path: &str| Outgoing {
        id,
        request: Request {
            method: Method::Get,
            url: format!("https://graph.facebook.com/v25.0/{path}"),
            headers: vec![],
            body: None,
            timeout_ms: 10_000,
            max_response_bytes: 1 << 20,
        },
    };
    let mut wasi = WasiCtxBuilder::new();
    wasi.env("GRAPH_URL", format!("http://127.0.0.1:{port}")).inherit_stderr();
    let (mut store, linker) = stock_host(&compiled.engine, &mut wasi);
    let adapter = HttpAdapter::instantiate(&mut store, &compiled.adapter, &linker).expect("instantiate the adapter");
    let host = adapter.airbyte_source_facebook_marketing_host();
    let first = host.call_http_fetch(&mut store, &[get(1, "slow"), get(2, "fast")], None).expect("no trap");
    let ids: Vec<u64> = first.iter().map(|c| c.id).collect();
    assert_eq!(ids, [2], "the fast answer alone, the slow one still on its way");
    assert_eq!(body_bytes(&first[0].outcome.as_ref().expect("an answer").body), b"{\"fast\":true}");
    // With the slow one still unanswered, a short wait comes back empty.
    let waited = host.call_http_fetch(&mut store, &[], Some(50)).expect("no trap");
    assert!(waited.is_empty(), "{waited:?}");
    got_fast.send(()).expect("the server thread");
    let second = host.call_http_fetch(&mut store, &[], None).expect("no trap");
    thread.join().expect("the server thread");
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].id, body_bytes(&second[0].outcome.as_ref().expect("an answer").body)),
        (1, &b"{\"slow\":true}"[..])
    );
}

/// What the server received.
struct Received {
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

#[test]
fn adapter_posts_the_body_to_the_graph_url_and_inflates_a_gzip_answer() {
    let Some(compiled) = compiled_or_skip("adapter post") else { return };
    let server = common::loopback_server(0).expect("listen on loopback");
    let port = server.server_addr().to_ip().expect("an IP listener").port();
    let answer = br#"{"data":[{"id":"1"}]}"#;
    let thread = std::thread::spawn(move || {
        let mut request = server.recv().expect("one request");
        let mut body = Vec::new();
        std::io::Read::read_to_end(request.as_reader(), &mut body).expect("request body");
        let received = Received {
            method: request.method().to_string(),
            url: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
                .collect(),
            body,
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, answer).expect("gzip");
        let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header");
        let response = tiny_http::Response::from_data(gz.finish().expect("gzip"))
            .with_status_code(207)
            .with_header(header("Content-Encoding", "gzip"))
            .with_header(header("X-App-Usage", r#"{"call_count":3}"#));
        request.respond(response).expect("respond");
        received
    });
    let form = b"batch=%5B%5D&include_headers=false".to_vec();
    let response = adapter_fetch(
        compiled,
        &format!("http://127.0.0.1:{port}/"),
        &Request {
            method: Method::Post,
            url: "https://graph.facebook.com/v25.0/?access_token=t".into(),
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: Some(form.clone()),
            timeout_ms: 10_000,
            max_response_bytes: 64 << 20,
        },
    )
    .expect("a response");
    let received = thread.join().expect("the server thread");
    assert_eq!((received.method.as_str(), received.url.as_str()), ("POST", "/v25.0/?access_token=t"));
    assert_eq!(received.body, form);
    assert_eq!(received.headers.get("content-length"), Some(&form.len().to_string()));
    assert_eq!(received.headers.get("content-type").map(String::as_str), Some("application/x-www-form-urlencoded"));
    assert_eq!(received.headers.get("accept-encoding").map(String::as_str), Some("gzip"));
    assert_eq!(received.headers.get("host"), Some(&format!("127.0.0.1:{port}")));
    assert_eq!(response.status, 207);
    assert_eq!(body_bytes(&response.body), answer);
    let headers: BTreeMap<_, _> = response.headers.into_iter().collect();
    assert_eq!(headers.get("x-app-usage").map(String::as_str), Some(r#"{"call_count":3}"#));
    assert!(!headers.contains_key("content-encoding"), "{headers:?}");
}

#[test]
fn adapter_reports_a_refused_connection_as_connection_refused() {
    let Some(compiled) = compiled_or_skip("adapter refused") else { return };
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let error = adapter_fetch(
        compiled,
        &format!("http://127.0.0.1:{port}"),
        &Request {
            method: Method::Get,
            url: "https://graph.facebook.com/v25.0/me".into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: 10_000,
            max_response_bytes: 64 << 20,
        },
    )
    .expect_err("nothing listens");
    assert!(matches!(error, FetchError::ConnectionRefused), "{error:?}");
}

/// A GET of the graph root through the adapter, to the server on `port`.
fn adapter_get(
    compiled: &Compiled,
    port: u16,
    timeout_ms: u32,
    max_response_bytes: u64,
) -> Result<Response, FetchError> {
    adapter_fetch(
        compiled,
        &format!("http://127.0.0.1:{port}"),
        &Request {
            method: Method::Get,
            url: "https://graph.facebook.com/v25.0/act_1/ads".into(),
            headers: Vec::new(),
            body: None,
            timeout_ms,
            max_response_bytes,
        },
    )
}

/// Answers one request on loopback with `respond`; returns the port.
fn answer_once(respond: impl FnOnce(tiny_http::Request) + Send + 'static) -> u16 {
    let server = common::loopback_server(0).expect("listen on loopback");
    let port = server.server_addr().to_ip().expect("an IP listener").port();
    std::thread::spawn(move || {
        if let Ok(request) = server.recv() {
            respond(request);
        }
    });
    port
}

#[test]
fn adapter_stops_reading_a_body_past_the_cap_plain_or_inflated() {
    let Some(compiled) = compiled_or_skip("adapter size cap") else { return };
    // Two MiB without a length (chunked): read up to the cap, then refused.
    let port = answer_once(|r| {
        let body = std::io::Cursor::new(vec![b' '; 2 << 20]);
        let _ = r.respond(tiny_http::Response::new(200.into(), Vec::new(), body, None, None));
    });
    let error = adapter_get(compiled, port, 10_000, 1 << 20).expect_err("past the cap");
    assert!(matches!(error, FetchError::ResponseTooLarge(n) if n == 1 << 20), "{error:?}");
    // 40 KiB of gzip that inflates to 4 MiB: the cap is on what it inflates to.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b' '; 4 << 20]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    let port = answer_once(move |r| {
        let header = tiny_http::Header::from_bytes(&b"Content-Encoding"[..], &b"gzip"[..]).expect("header");
        let _ = r.respond(tiny_http::Response::from_data(bomb).with_header(header));
    });
    let error = adapter_get(compiled, port, 10_000, 1 << 20).expect_err("inflated past the cap");
    assert!(matches!(error, FetchError::ResponseTooLarge(n) if n == 1 << 20), "{error:?}");
}

#[test]
fn adapter_ends_a_body_that_trickles_in_at_the_request_timeout() {
    let Some(compiled) = compiled_or_skip("adapter deadline") else { return };
    // One byte every 100 ms for 5 s: each read is quick, the whole body is not.
    struct Trickle(usize);
    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 || buf.is_empty() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(100));
            self.0 -= 1;
            buf[0] = b' ';
            Ok(1)
        }
    }
    let port = answer_once(|r| {
        let _ = r.respond(tiny_http::Response::new(200.into(), Vec::new(), Trickle(50), Some(50), None));
    });
    let started = std::time::Instant::now();
    let error = adapter_get(compiled, port, 1_000, 1 << 20).expect_err("the whole body is late");
    assert!(matches!(error, FetchError::Timeout), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "ended by the 1 s deadline: {:?}", started.elapsed());
}

#[test]
fn adapter_hands_a_redirect_back_as_it_came_and_never_follows_it() {
    let Some(compiled) = compiled_or_skip("adapter redirect") else { return };
    let elsewhere = std::net::TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let location = format!("http://127.0.0.2:{}/v25.0/act_1/ads", elsewhere.local_addr().expect("addr").port());
    elsewhere.set_nonblocking(true).expect("nonblocking");
    let to = location.clone();
    let port = answer_once(move |r| {
        let header = tiny_http::Header::from_bytes(&b"Location"[..], to.as_bytes()).expect("header");
        let _ = r.respond(tiny_http::Response::from_string("{\"data\":[]}").with_status_code(302).with_header(header));
    });
    let response = adapter_get(compiled, port, 10_000, 1 << 20).expect("the 302 itself");
    assert_eq!(response.status, 302);
    let headers: BTreeMap<_, _> = response.headers.into_iter().collect();
    assert_eq!(headers.get("location"), Some(&location));
    assert!(elsewhere.accept().is_err(), "nothing reached the other origin");
}
