//! `host-test simulate`: the simulator over real HTTP on 127.0.0.1.
//!
//! Besides the Graph API, the server answers two paths of its own, which never reach the
//! simulator's request path, so they change neither its counters nor its clock (with
//! `--clock wall`, the truth path first lets the clock catch up with real time, as any Graph
//! request does, so that it answers for now):
//!
//! - `GET /__sim/counters`: the simulator's request counters as JSON, for benchmarks;
//! - `POST /__sim/truth`: the ground truth of a first sync at the simulator's current time (see
//!   [`crate::truth`]), for checking a client that runs the connector out of process. The body
//!   is `{"config": {...}, "catalog": {...}, "read_start_ms": N}` (`read_start_ms`, when the
//!   read started, defaults to now); the answer is `{"now_ms": N, "read_start_ms": N,
//!   "streams": {"<stream>": ["<primary key>", ...]}}`, keys as [`crate::truth::record_key`]
//!   writes them. A config option the truth does not model is a 400 naming it. A config
//!   without `account_ids` reads the accounts `/me/adaccounts` lists as active that the token
//!   may read;
//! - `POST /__sim/revoke`: takes the token's access to an ad account away, or gives it back,
//!   from now on (a client removing an agency's access). The body is `{"account": "<id>",
//!   "revoked": true|false}`; the answer is `{"revoked": [ids]}`.

pub use crate::http1::Server;
use crate::http1::{Incoming, Reply};
use anyhow::{Context, Result};
use clap::Args;
use graph_sim::{Counters, SimConfig, SimRequest, Simulator, TransportFault};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args, Clone, Debug)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the chosen port is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Real time each request takes. With `--clock virtual` the simulated clock advances by the
    /// preset's latency per request; with `--clock wall` it follows real time only.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Stop after this many requests (for tests and scripts).
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// `wall`: the simulator's clock follows real time (jobs take real seconds; for real
    /// clients). `virtual`: it moves only by the preset's latency per request (for tests).
    #[arg(long, default_value = "wall")]
    pub clock: String,
    /// How long a report job runs, in simulated milliseconds.
    #[arg(long)]
    pub job_duration_ms: Option<u64>,
    /// Where the simulated clock starts, UTC ms (default: now with `--clock wall`, the preset's
    /// fixed instant with `--clock virtual`). Two servers given the same start and seed serve
    /// the same world, however far apart they are started.
    #[arg(long, value_name = "MS")]
    pub start_time_ms: Option<i64>,
    /// Base URL written into `paging.next` links instead of https://graph.facebook.com, for
    /// clients that follow them as they are (e.g. `http://127.0.0.1:8080`).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

/// The simulated world: a preset, a seed and sizes; shared by `simulate` and `demo`.
#[derive(Args, Clone, Debug)]
pub struct WorldArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A fault preset: calm, flaky, throttled, failing_jobs, stuck_jobs, huge_account, token_expired.
    #[arg(long, default_value = "calm")]
    pub preset: String,
    /// Number of ad accounts (default: the preset's).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Campaigns per account (default: the preset's).
    #[arg(long)]
    pub campaigns_per_account: Option<usize>,
    /// Ad sets per campaign (default: the preset's).
    #[arg(long)]
    pub adsets_per_campaign: Option<usize>,
    /// Ads per ad set (default: the preset's).
    #[arg(long)]
    pub ads_per_adset: Option<usize>,
    /// The access token the simulator accepts (default: `sim-token`).
    #[arg(long)]
    pub access_token: Option<String>,
}

impl WorldArgs {
    /// The preset's config with this seed and these sizes.
    pub fn sim_config(&self) -> Result<SimConfig> {
        let mut cfg = SimConfig::preset(&self.preset).with_context(|| {
            format!("--preset {}: no such preset; use one of {}", self.preset, SimConfig::preset_names().join(", "))
        })?;
        cfg.seed = self.seed;
        if let Some(t) = &self.access_token {
            cfg.access_token = t.clone();
        }
        for (slot, arg) in [
            (&mut cfg.accounts, self.accounts),
            (&mut cfg.campaigns_per_account, self.campaigns_per_account),
            (&mut cfg.adsets_per_campaign, self.adsets_per_campaign),
            (&mut cfg.ads_per_adset, self.ads_per_adset),
        ] {
            if let Some(n) = arg {
                *slot = n;
            }
        }
        Ok(cfg)
    }
}

impl SimulateArgs {
    pub fn sim_config(&self) -> Result<SimConfig> {
        let mut cfg = self.world.sim_config()?;
        if let Some(ms) = self.job_duration_ms {
            cfg.job_duration_ms = ms;
        }
        match self.clock.as_str() {
            // The world starts now, so a client on real time sees today's data. The clock then
            // follows real time alone: a virtual latency on top would let the clock run ahead by
            // 50 ms per request, so a client making more requests would see jobs end sooner.
            "wall" => {
                cfg.start_time_ms = chrono::Utc::now().timestamp_millis();
                cfg.latency_ms = 0;
            }
            "virtual" => {}
            other => anyhow::bail!("--clock {other}: use wall or virtual"),
        }
        if let Some(ms) = self.start_time_ms {
            cfg.start_time_ms = ms;
        }
        Ok(cfg)
    }
}

/// Serves `sim` on `server` until `max_requests` (if any) have been answered. With
/// `wall_clock`, the simulator's clock first catches up with the real time that passed.
pub fn serve(
    server: &Server,
    sim: Arc<Mutex<Simulator>>,
    latency: Duration,
    max_requests: Option<u64>,
    wall_clock: bool,
) -> Result<()> {
    serve_with(server, sim, &ServeOptions { latency, max_requests, wall_clock, public_url: None })
}

/// How [`serve_with`] serves.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Real time each answer waits before it is sent.
    pub latency: Duration,
    /// Stop after this many Graph requests (the `/__sim/` paths are not counted).
    pub max_requests: Option<u64>,
    /// The simulator's clock catches up with real time before each request.
    pub wall_clock: bool,
    /// Replaces [`GRAPH_HOST`] in answers, so absolute `paging.next` links come back here.
    pub public_url: Option<String>,
}

/// Host the simulator writes into absolute `paging.next` links.
const GRAPH_HOST: &str = sfm_wire::origin::GRAPH_ORIGIN;

/// Path of the read-only counters endpoint.
const COUNTERS_PATH: &str = "/__sim/counters";

/// Path of the ground-truth endpoint.
const TRUTH_PATH: &str = "/__sim/truth";

/// Path of the endpoint that takes access to an account away or gives it back.
const REVOKE_PATH: &str = "/__sim/revoke";

/// Applies `POST /__sim/revoke` with `body` to `sim`.
fn revoke_json(sim: &mut Simulator, body: &[u8]) -> Result<Value> {
    let req: Value = serde_json::from_slice(body).context("the body is not JSON")?;
    let id = req["account"].as_str().context("account: expected the ad account id as a string")?;
    let id = id.strip_prefix("act_").unwrap_or(id);
    anyhow::ensure!(sim.account_ids().iter().any(|a| a == id), "account: {id} is not an account of this world");
    let revoked = req["revoked"].as_bool().context("revoked: expected true or false")?;
    sim.set_revoked(id, revoked);
    Ok(json!({"revoked": sim.config().faults.revoked_accounts}))
}

/// The answer to `POST /__sim/truth` with `body`, at `sim`'s current time.
fn truth_json(sim: &Simulator, body: &[u8]) -> Result<Value> {
    let req: Value = serde_json::from_slice(body).context("the body is not JSON")?;
    let now_ms = sim.now_ms();
    let read_start_ms = match req.get("read_start_ms") {
        None | Some(Value::Null) => now_ms,
        Some(v) => v.as_i64().context("read_start_ms: expected integer milliseconds")?,
    };
    let streams = crate::truth::sync_truth(sim, &req["config"], &req["catalog"], read_start_ms)?;
    Ok(json!({"now_ms": now_ms, "read_start_ms": read_start_ms, "streams": streams}))
}

/// A JSON answer.
fn json_reply(status: u16, body: &Value) -> Reply {
    Reply::Answer {
        status,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: body.to_string().into_bytes(),
    }
}

/// The counters as JSON; `http_requests` counts Graph requests as they arrived over HTTP
/// (batch operations are inside their batch request there, and counted by kind besides).
fn counters_json(c: &Counters, http_requests: u64) -> Value {
    let by_kind: serde_json::Map<String, Value> = c.requests.iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    json!({
        "http_requests": http_requests,
        "requests": by_kind,
        "batch_operations": c.batch_operations,
        "jobs_created": c.jobs_created,
        "jobs_failed": c.jobs_failed,
        "jobs_skipped": c.jobs_skipped,
        "jobs_stuck": c.jobs_stuck,
        "throttled_responses": c.throttled_responses,
        "faults": c.faults,
    })
}

/// What the threads serving one server share.
struct Shared {
    sim: Arc<Mutex<Simulator>>,
    /// When the simulator's clock last caught up with real time (`wall_clock`).
    last: Mutex<std::time::Instant>,
    /// Graph requests answered (or dropped, for a transport fault) so far.
    served: std::sync::atomic::AtomicU64,
    latency: Duration,
    wall_clock: bool,
    public_url: Option<Vec<u8>>,
}

/// Serves `sim` on `server` as `opts` say, until `max_requests` (if any) have been answered.
/// Requests are served concurrently, each connection on a thread of its own: the simulator
/// itself answers one at a time, and each answer then waits out `latency` on its connection's
/// thread, so a client with several requests in flight sees their latencies overlap as they
/// would with Graph.
pub fn serve_with(server: &Server, sim: Arc<Mutex<Simulator>>, opts: &ServeOptions) -> Result<()> {
    let shared = Shared {
        sim,
        last: Mutex::new(std::time::Instant::now()),
        served: std::sync::atomic::AtomicU64::new(0),
        latency: opts.latency,
        wall_clock: opts.wall_clock,
        public_url: opts.public_url.as_deref().map(|u| u.trim_end_matches('/').as_bytes().to_vec()),
    };
    let stopper = server.stopper();
    let max_requests = opts.max_requests;
    server
        .serve(|request| {
            let graph = !request.path().starts_with("/__sim/");
            let reply = serve_one(&shared, request).unwrap_or_else(|e| {
                eprintln!("simulate: {e:#}");
                json_reply(500, &json!({"error": format!("{e:#}")}))
            });
            if graph && max_requests.is_some_and(|m| shared.served.load(std::sync::atomic::Ordering::SeqCst) >= m) {
                stopper.stop();
            }
            reply
        })
        .context("serving the simulator")
}

/// Answers one request (on its connection's thread).
fn serve_one(shared: &Shared, request: Incoming) -> Result<Reply> {
    let lock = || shared.sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"));
    let path = request.path().to_string();
    if request.method == "GET" && path == COUNTERS_PATH {
        let served = shared.served.load(std::sync::atomic::Ordering::SeqCst);
        return Ok(json_reply(200, &counters_json(lock()?.counters(), served)));
    }
    let mut sim = lock()?;
    if shared.wall_clock
        && let Ok(mut last) = shared.last.lock()
    {
        sim.advance(last.elapsed().as_millis() as u64);
        *last = std::time::Instant::now();
    }
    if request.method == "POST" && path == TRUTH_PATH {
        let answer = truth_json(&sim, &request.body);
        drop(sim);
        return Ok(match answer {
            Ok(v) => json_reply(200, &v),
            Err(e) => json_reply(400, &json!({"error": format!("{e:#}")})),
        });
    }
    if request.method == "POST" && path == REVOKE_PATH {
        let answer = revoke_json(&mut sim, &request.body);
        drop(sim);
        return Ok(match answer {
            Ok(v) => json_reply(200, &v),
            Err(e) => json_reply(400, &json!({"error": format!("{e:#}")})),
        });
    }
    let sim_req = SimRequest {
        method: request.method,
        url: format!("http://127.0.0.1{}", request.target),
        headers: request.headers,
        body: request.body,
    };
    let outcome = sim.handle(&sim_req);
    drop(sim);
    shared.served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if !shared.latency.is_zero() {
        std::thread::sleep(shared.latency);
    }
    Ok(match outcome {
        Ok(resp) => {
            let body = match &shared.public_url {
                Some(to) => graph_sim::replace_bytes(resp.body, GRAPH_HOST.as_bytes(), to),
                None => resp.body,
            };
            Reply::Answer { status: resp.status, headers: resp.headers, body }
        }
        // A transport fault: drop the connection without an answer.
        Err(TransportFault::Timeout | TransportFault::ConnectionReset | TransportFault::ConnectionRefused) => {
            Reply::Drop
        }
    })
}

pub fn run(args: &SimulateArgs) -> Result<ExitCode> {
    let sim = Arc::new(Mutex::new(Simulator::new(args.sim_config()?)));
    let server =
        Server::bind(args.port).map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server.port();
    eprintln!(
        "simulating the Graph API on http://127.0.0.1:{port} (preset {}, seed {}); token: {}",
        args.world.preset,
        args.world.seed,
        sim.lock().map(|s| s.config().access_token.clone()).unwrap_or_default()
    );
    let opts = ServeOptions {
        latency: Duration::from_millis(args.latency_ms),
        max_requests: args.max_requests,
        wall_clock: args.clock == "wall",
        public_url: args.public_url.clone(),
    };
    serve_with(&server, sim, &opts)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_answers_at_the_simulators_clock_and_names_unmodelled_options() {
        let sim = Simulator::new(SimConfig::default());
        let catalog = json!({"streams": [{"stream": {"name": "campaigns", "source_defined_primary_key": [["id"]]}}]});
        let body = json!({"config": {"account_ids": sim.account_ids()}, "catalog": catalog});
        let answer = truth_json(&sim, body.to_string().as_bytes()).unwrap();
        assert_eq!(answer["now_ms"], json!(sim.now_ms()));
        assert_eq!(answer["read_start_ms"], json!(sim.now_ms()));
        assert!(answer["streams"]["campaigns"].as_array().is_some_and(|k| !k.is_empty()), "{answer}");

        let bad = json!({"config": {"account_ids": ["1"], "end_date": "2026-06-01"}, "catalog": catalog});
        let err = truth_json(&sim, bad.to_string().as_bytes()).unwrap_err();
        assert!(format!("{err:#}").contains("end_date"), "{err:#}");
        assert!(truth_json(&sim, b"not json").is_err());
    }
}
