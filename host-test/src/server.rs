//! `host-test simulate`: the simulator over real HTTP on 127.0.0.1.

use anyhow::{Context, Result};
use clap::Args;
use graph_sim::{SimConfig, SimRequest, Simulator, TransportFault};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args, Clone, Debug)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the chosen port is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A fault preset: calm, flaky, throttled, failing_jobs, stuck_jobs, huge_account, token_expired.
    #[arg(long, default_value = "calm")]
    pub preset: String,
    /// Real time each request takes (virtual time always advances by the preset's latency).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Number of ad accounts.
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Ads per ad set.
    #[arg(long)]
    pub ads_per_adset: Option<usize>,
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
}

impl SimulateArgs {
    pub fn sim_config(&self) -> Result<SimConfig> {
        let mut cfg = SimConfig::preset(&self.preset).with_context(|| {
            format!("--preset {}: no such preset; use one of {}", self.preset, SimConfig::preset_names().join(", "))
        })?;
        cfg.seed = self.seed;
        if let Some(n) = self.accounts {
            cfg.accounts = n;
        }
        if let Some(n) = self.ads_per_adset {
            cfg.ads_per_adset = n;
        }
        if let Some(ms) = self.job_duration_ms {
            cfg.job_duration_ms = ms;
        }
        match self.clock.as_str() {
            // The world starts now, so a client on real time sees today's data.
            "wall" => cfg.start_time_ms = chrono::Utc::now().timestamp_millis(),
            "virtual" => {}
            other => anyhow::bail!("--clock {other}: use wall or virtual"),
        }
        Ok(cfg)
    }
}

/// Serves `sim` on `server` until `max_requests` (if any) have been answered. With
/// `wall_clock`, the simulator's clock first catches up with the real time that passed.
pub fn serve(
    server: &tiny_http::Server,
    sim: Arc<Mutex<Simulator>>,
    latency: Duration,
    max_requests: Option<u64>,
    wall_clock: bool,
) -> Result<()> {
    let mut last = std::time::Instant::now();
    for (served, mut request) in server.incoming_requests().enumerate() {
        if wall_clock {
            let elapsed = last.elapsed();
            last = std::time::Instant::now();
            if let Ok(mut s) = sim.lock() {
                s.advance(elapsed.as_millis() as u64);
            }
        }
        let mut body = Vec::new();
        request.as_reader().read_to_end(&mut body)?;
        let sim_req = SimRequest {
            method: request.method().as_str().to_string(),
            url: format!("http://127.0.0.1{}", request.url()),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
                .collect(),
            body,
        };
        let outcome = sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"))?.handle(&sim_req);
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        match outcome {
            Ok(resp) => {
                let mut r = tiny_http::Response::from_data(resp.body).with_status_code(resp.status);
                for (k, v) in resp.headers {
                    if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                        r.add_header(h);
                    }
                }
                let _ = request.respond(r);
            }
            // A transport fault: drop the connection without an answer.
            Err(TransportFault::Timeout | TransportFault::ConnectionReset | TransportFault::ConnectionRefused) => {
                drop(request)
            }
        }
        if max_requests.is_some_and(|m| served as u64 + 1 >= m) {
            break;
        }
    }
    Ok(())
}

pub fn run(args: &SimulateArgs) -> Result<ExitCode> {
    let sim = Arc::new(Mutex::new(Simulator::new(args.sim_config()?)));
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(args.port);
    eprintln!(
        "simulating the Graph API on http://127.0.0.1:{port} (preset {}, seed {}); token: {}",
        args.preset,
        args.seed,
        sim.lock().map(|s| s.config().access_token.clone()).unwrap_or_default()
    );
    serve(&server, sim, Duration::from_millis(args.latency_ms), args.max_requests, args.clock == "wall")?;
    Ok(ExitCode::SUCCESS)
}
