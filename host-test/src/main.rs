//! `host-test`: runs the source-facebook-marketing component like an Airbyte source.
//!
//! Protocol messages go to stdout, one JSON object per line, and nothing else does; logs and
//! progress go to stderr. A connector-reported failure exits 1, a host failure 2.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use graph_sim::{SimConfig, Simulator};
use host_test::backend::{Backend, NetBackend, SimBackend};
use host_test::output::{Redactor, config_secrets, host_error_line, is_error_trace, to_line, write_line};
use host_test::runtime::{Allowlist, Limits, Message};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(
    name = "host-test",
    version,
    about = "Run the Meta Marketing API source component like an Airbyte source",
    after_help = "Examples:\n  host-test spec\n  host-test check --config secrets/config.json\n  host-test read --config config.json --catalog catalog.json --state state.json > messages.jsonl\n  host-test demo\n  host-test soak --seeds 1..=100\n  host-test simulate --port 8080 --preset flaky"
)]
struct Cli {
    /// The component to run (default: $SFM_COMPONENT, a source_facebook_marketing.wasm beside
    /// this executable, the build's target/wasm32-wasip2/release/, or the one built into it).
    #[arg(long, global = true)]
    component: Option<PathBuf>,
    /// Where Graph API calls go instead of https://graph.facebook.com (a proxy or `host-test simulate`).
    #[arg(long, global = true)]
    graph_url: Option<String>,
    /// Serve Graph calls from the in-process simulator with this preset (no network, virtual time).
    #[arg(long, global = true, value_name = "PRESET")]
    simulator: Option<String>,
    /// Seed of the in-process simulator.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Memory cap of the guest, in MiB.
    #[arg(long, global = true, default_value_t = 512)]
    memory_mb: usize,
    /// Seconds the guest may compute without calling the host before it is stopped.
    #[arg(long, global = true, default_value_t = 60)]
    cpu_budget_secs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the connector specification (one SPEC message).
    #[command(after_help = "Example:\n  host-test spec | jq .spec.connectionSpecification.required")]
    Spec,
    /// Validate a config and try the API with it (one CONNECTION_STATUS message).
    #[command(
        after_help = "Examples:\n  host-test check --config secrets/config.json\n  host-test --simulator calm check --config config.json   # against the in-process simulator"
    )]
    Check(ConfigArg),
    /// List the streams a config offers (one CATALOG message).
    #[command(
        after_help = "Example:\n  host-test discover --config secrets/config.json | jq -r '.catalog.streams[].name'"
    )]
    Discover(ConfigArg),
    /// Run a sync. Progress and a closing summary go to stderr.
    #[command(
        after_help = "Examples:\n  host-test read --config config.json --catalog catalog.json > messages.jsonl\n  host-test read --config config.json --catalog catalog.json --state state.json --output messages.jsonl\n  host-test --graph-url http://127.0.0.1:8080 read --config config.json --catalog catalog.json"
    )]
    Read(ReadArgs),
    /// Run a recorded sync again from its recording alone (no network, the recorded clock);
    /// the output must be byte-identical, else the first divergence is named (exit 1).
    #[command(
        after_help = "Examples:\n  host-test read --config config.json --catalog catalog.json --record sync.rec.jsonl\n  host-test replay sync.rec.jsonl --output replayed.jsonl"
    )]
    Replay(ReplayArgs),
    /// Serve the Graph API simulator over HTTP on 127.0.0.1.
    #[command(
        after_help = "Examples:\n  host-test simulate --port 8080 --preset flaky\n  curl 'http://127.0.0.1:8080/v25.0/act_1000000000000001/campaigns?fields=id,name&access_token=sim-token'"
    )]
    Simulate(host_test::server::SimulateArgs),
    /// A full sync of a sample config against the in-process simulator, with a summary.
    #[command(
        after_help = "Examples:\n  host-test demo\n  host-test demo --preset huge_account --days 7 --output out/huge.jsonl"
    )]
    Demo(host_test::demo::DemoArgs),
    /// Seeded syncs with random faults, each also stopped and resumed, checked against ground truth.
    #[command(
        after_help = "Examples:\n  host-test soak --seeds 1..=1000\n  host-test soak --seeds 17..=17 --verbose   # reproduce one seed"
    )]
    Soak(host_test::soak::SoakArgs),
    /// Split a sync's state by ad account for shards, or merge the shards' states back.
    #[command(
        subcommand,
        after_help = "Examples:\n  host-test state split state.json --accounts 111,222 > shard-1.json\n  host-test state merge shard-1.json shard-2.json shard-3.json > state.json"
    )]
    State(StateCommand),
}

#[derive(Subcommand)]
enum StateCommand {
    /// The state of a shard that reads ACCOUNTS: their entries and every stream-level key
    /// (a list of STREAM state messages on stdout).
    Split {
        /// The state to split (any form `read --state` takes).
        state: PathBuf,
        /// The shard's ad account ids, comma-separated (repeatable).
        #[arg(long, required = true, value_delimiter = ',')]
        accounts: Vec<String>,
        /// Write the state to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// The states of shards as one; an account found in several keeps the later cursor, and
    /// each such choice is said on stderr.
    Merge {
        /// The shards' states, in order (a later one wins a tie).
        #[arg(required = true)]
        states: Vec<PathBuf>,
        /// Write the state to this file instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ConfigArg {
    /// The connector config (JSON file).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
struct ReadArgs {
    #[arg(long)]
    config: PathBuf,
    /// The configured catalog (JSON file).
    #[arg(long)]
    catalog: PathBuf,
    /// The state the last sync left (JSON file).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write messages to this file instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Also record the sync to this JSONL file (config redacted, every request without the
    /// token, every answer, sleep and clock reading), for `host-test replay`.
    #[arg(long)]
    record: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    /// A recording made with `host-test read --record`.
    recording: PathBuf,
    /// Write messages to this file instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// `host-test state split|merge`: a bad state is exit 1 with the reason on stderr.
fn state_command(command: &StateCommand) -> Result<ExitCode> {
    use sfm_host::state;
    let parse = |path: &PathBuf| -> Result<state::Streams> {
        state::parse(&read_file(path, "state")?).with_context(|| format!("{}", path.display()))
    };
    let result = match command {
        StateCommand::Split { state: path, accounts, output } => {
            parse(path).and_then(|s| state::split(&s, accounts)).map(|v| (v, output))
        }
        StateCommand::Merge { states, output } => {
            states.iter().map(|p| Ok((p.display().to_string(), parse(p)?))).collect::<Result<Vec<_>>>().map(|named| {
                let merged = state::merge(&named);
                for note in &merged.notes {
                    eprintln!("{note}");
                }
                (merged.state, output)
            })
        }
    };
    let (value, output) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let text = format!("{value}\n");
    match output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn read_file(path: &PathBuf, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} file {}", path.display()))
}

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // The reader of stdout went away (`host-test spec | head`): stop quietly, as a Unix
        // tool killed by SIGPIPE does, with its exit status.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(e) => {
            let line = host_error_line("system_error", &format!("host-test failed: {e:#}"), &format!("{e:?}"));
            println!("{line}");
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Simulate(args) => return host_test::server::run(args),
        Command::Demo(args) => return host_test::demo::run(cli.component.as_deref(), args),
        Command::Soak(args) => return host_test::soak::run(cli.component.as_deref(), args),
        Command::Replay(args) => return replay(&cli, args),
        Command::State(command) => return state_command(command),
        _ => {}
    }
    let runtime = host_test::runtime::locate(cli.component.as_deref())?;
    let limits = Limits {
        memory_bytes: cli.memory_mb << 20,
        cpu_budget: std::time::Duration::from_secs(cli.cpu_budget_secs),
        request_timeout: None,
    };
    let config_text = match &cli.command {
        Command::Check(a) | Command::Discover(a) => Some(read_file(&a.config, "config")?),
        Command::Read(a) => Some(read_file(&a.config, "config")?),
        _ => None,
    };
    let redactor = Redactor::new(config_text.as_deref().map(config_secrets).unwrap_or_default());
    let allow = Allowlist::for_config(config_text.as_deref(), cli.graph_url.as_deref())
        .map_err(|e| anyhow::anyhow!("--graph-url {e}"))?;
    let mut backend: Box<dyn Backend> = match &cli.simulator {
        Some(preset) => {
            let mut cfg = SimConfig::preset(preset).with_context(|| {
                format!("--simulator {preset}: no such preset; use one of {}", SimConfig::preset_names().join(", "))
            })?;
            cfg.seed = cli.seed;
            Box::new(SimBackend::new(Arc::new(Mutex::new(Simulator::new(cfg)))))
        }
        None => Box::new(NetBackend::new()),
    };
    // The catalog and state of a read, read once for the sync and its recording.
    let read_inputs = match &cli.command {
        Command::Read(a) => {
            Some((read_file(&a.catalog, "catalog")?, a.state.as_ref().map(|p| read_file(p, "state")).transpose()?))
        }
        _ => None,
    };
    let recorder = match &cli.command {
        Command::Read(ReadArgs { record: Some(path), .. }) => {
            let (catalog, state) = read_inputs.as_ref().context("read inputs")?;
            let parse = |text: &str, what: &str| -> Result<serde_json::Value> {
                serde_json::from_str(text).with_context(|| format!("the {what} is not JSON"))
            };
            let header = host_test::record::Header {
                version: host_test::record::VERSION,
                component_sha256: host_test::runtime::component_sha256(cli.component.as_deref()),
                config: parse(&redactor.redact(config_text.clone().unwrap_or_default()), "config")?,
                catalog: parse(catalog, "catalog")?,
                state: state.as_deref().map(|s| parse(s, "state")).transpose()?,
                seed: cli.seed,
                simulator: cli.simulator.clone(),
                graph_url: cli.graph_url.clone(),
                recorded_at_ms: backend.clock().now_ms(),
            };
            let rec = host_test::record::Recorder::create(path, header, redactor.clone())?;
            backend = Box::new(host_test::record::RecordingBackend::new(backend, rec.clone()));
            Some(rec)
        }
        _ => None,
    };
    let mut guest = runtime.instantiate(backend, allow, cli.graph_url.clone(), &limits)?;
    let mut out: Box<dyn Write> = match &cli.command {
        Command::Read(ReadArgs { output: Some(path), .. }) => Box::new(std::io::BufWriter::with_capacity(
            OUTPUT_BUFFER,
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        _ => Box::new(std::io::BufWriter::with_capacity(OUTPUT_BUFFER, std::io::stdout().lock())),
    };
    let mut failed = false;
    let view = std::cell::RefCell::new(host_test::progress::ProgressView::default());
    let mut emit = |batch: Vec<Message>, out: &mut dyn Write| -> Result<()> {
        for m in &batch {
            failed |= is_error_trace(m);
            if let Message::Log(l) = m {
                view.borrow_mut().clear();
                eprintln!("{}", redactor.redact(l.message.clone()));
            }
            match &recorder {
                Some(rec) => {
                    let line = redactor.redact(to_line(m));
                    if let Ok(mut r) = rec.lock() {
                        r.output(&line);
                    }
                    writeln!(out, "{line}")?;
                }
                None => write_line(m, &redactor, out)?,
            }
        }
        Ok(())
    };
    let result = match &cli.command {
        Command::Spec => guest.spec().and_then(|b| emit(b, &mut out)),
        Command::Check(_) => guest.check(config_text.as_deref().unwrap_or_default()).and_then(|b| emit(b, &mut out)),
        Command::Discover(_) => {
            guest.discover(config_text.as_deref().unwrap_or_default()).and_then(|b| emit(b, &mut out))
        }
        Command::Read(_) => {
            let (catalog, state) = read_inputs.as_ref().context("read inputs")?;
            let mut write_err = None;
            let r = guest.read_with_progress(
                config_text.as_deref().unwrap_or_default(),
                catalog,
                state.as_deref(),
                |batch| match emit(batch, &mut out) {
                    Ok(()) => true,
                    Err(e) => {
                        write_err = Some(e);
                        false
                    }
                },
                |p| view.borrow_mut().update(p),
            );
            view.borrow_mut().finish();
            eprintln!("guest memory: peak {:.1} MiB", guest.memory_peak() as f64 / (1024.0 * 1024.0));
            r.and(write_err.map_or(Ok(()), Err))
        }
        Command::Simulate(_) | Command::Demo(_) | Command::Soak(_) | Command::Replay(_) | Command::State(_) => Ok(()),
    };
    if let Some(rec) = &recorder
        && let Ok(mut r) = rec.lock()
    {
        r.finish()?;
    }
    if let Err(e) = result {
        if is_broken_pipe(&e) {
            return Ok(ExitCode::from(BROKEN_PIPE_EXIT));
        }
        let msg = redactor.redact(format!("the connector stopped abnormally: {e:#}"));
        writeln!(out, "{}", host_error_line("system_error", &msg, &redactor.redact(format!("{e:?}"))))?;
        out.flush()?;
        eprintln!("error: {msg}");
        return Ok(ExitCode::from(2));
    }
    out.flush()?;
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `host-test replay FILE`: the recorded sync again, answered from the file alone.
fn replay(cli: &Cli, args: &ReplayArgs) -> Result<ExitCode> {
    use host_test::record::{Recording, Replay, ReplayBackend, inputs};
    let recording = Recording::load(&args.recording)?;
    let (config, catalog, state) = inputs(&recording)?;
    let runtime = host_test::runtime::locate(cli.component.as_deref())?;
    let recorded_hash = recording.header.component_sha256.clone().unwrap_or_default();
    let hash = host_test::runtime::component_sha256(cli.component.as_deref());
    if !recorded_hash.is_empty() && hash.as_deref() != Some(recorded_hash.as_str()) {
        eprintln!(
            "replay: recorded with component {recorded_hash:.12}, replaying with {:.12}",
            hash.unwrap_or_default()
        );
    }
    let allow = Allowlist { hosts: recording.hosts(), suffixes: Vec::new() };
    let graph_url = recording.header.graph_url.clone();
    let replay = Replay::new(&recording);
    let mut guest =
        runtime.instantiate(Box::new(ReplayBackend::new(replay.clone())), allow, graph_url, &Limits::default())?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut write_err = None;
    let result = guest.read(&config, &catalog, state.as_deref(), |batch| {
        for m in &batch {
            let line = to_line(m);
            let matched = host_test::record::lock(&replay).check_output(&line);
            if !matched {
                return false;
            }
            if let Err(e) = writeln!(out, "{line}") {
                write_err = Some(e);
                return false;
            }
        }
        true
    });
    out.flush()?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    let r = host_test::record::lock(&replay);
    if let Some(d) = r.divergence() {
        eprintln!("replay: {d}");
        return Ok(ExitCode::from(1));
    }
    result.map_err(|e| anyhow::anyhow!("the connector stopped abnormally during the replay: {e:#}"))?;
    eprintln!("replay: byte-identical: {} output lines, {} recorded exchanges answered", r.written, r.used);
    Ok(ExitCode::SUCCESS)
}

/// One glibc malloc arena for the process, and answer bodies given back to the system as soon
/// as they are freed.
///
/// - The epoch ticker thread would otherwise get an arena of its own, about 1 MiB of resident
///   memory for a thread that only sleeps and ticks; the guest runs on the main thread, so
///   nothing contends for the one arena.
/// - glibc serves a block past its mmap threshold from a mapping of its own and unmaps it when
///   freed, but raises the threshold to the size of every such block freed (up to 32 MiB): after
///   the first answer bodies, later ones came from the heap, which fragmented and never shrank
///   (a 24 MiB heap on `bench/run.sh large`). A fixed threshold of 128 KiB keeps every body
///   (and the guest's messages) out of the heap: 1.3 MiB of heap instead.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// 64 KiB: the output's buffer. A record is kilobytes, so std's 8 KiB wrote most records on
/// their own, in writes that ended mid-page (the kernel zeroes and copies a partial page each).
const OUTPUT_BUFFER: usize = 64 << 10;

/// 128 + SIGPIPE: what a shell reports for a program stopped by a closed pipe.
const BROKEN_PIPE_EXIT: u8 = 141;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
