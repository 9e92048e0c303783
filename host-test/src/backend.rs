//! The in-process simulator as a [`Backend`]: no sockets, virtual time, latencies of requests
//! in flight overlapping deterministically.

pub use sfm_host::backend::*;

use graph_sim::{SimRequest, SimResponse, Simulator, TransportFault};
use std::sync::{Arc, Mutex};

/// The simulator in-process: no sockets, virtual time.
pub struct SimBackend {
    pub sim: Arc<Mutex<Simulator>>,
    clock: Clock,
    /// The size cap of each request in flight, by id.
    caps: Vec<(u64, u64)>,
}

impl SimBackend {
    pub fn new(sim: Arc<Mutex<Simulator>>) -> Self {
        let now = sim.lock().map(|s| s.now_ms()).unwrap_or(0);
        SimBackend { sim, clock: Clock::virtual_at(now), caps: Vec::new() }
    }
}

impl Drop for SimBackend {
    /// A guest that stopped (or trapped) with requests on their way: they never arrive, and a
    /// later guest on the same simulator does not receive their answers.
    fn drop(&mut self) {
        if !self.caps.is_empty()
            && let Ok(mut sim) = self.sim.lock()
        {
            sim.abandon_in_flight();
        }
    }
}

/// A simulator answer as the host hands it over, held to the request's size cap.
pub fn sim_outcome(
    out: Result<SimResponse, TransportFault>,
    max_response_bytes: u64,
) -> Result<HostResponse, HostFetchError> {
    match out {
        Ok(r) if r.body.len() as u64 > max_response_bytes => Err(HostFetchError::TooLarge(max_response_bytes)),
        Ok(r) => Ok(HostResponse { status: r.status, headers: r.headers, body: r.body }),
        Err(TransportFault::Timeout) => Err(HostFetchError::Timeout),
        Err(TransportFault::ConnectionReset) => Err(HostFetchError::ConnectionReset),
        Err(TransportFault::ConnectionRefused) => Err(HostFetchError::ConnectionRefused),
    }
}

impl Backend for SimBackend {
    fn start(&mut self, id: u64, req: HostRequest) {
        if let Ok(mut sim) = self.sim.lock() {
            // The cap travels in the tag's place: the answer is held to it when it arrives.
            self.caps.push((id, req.max_response_bytes));
            sim.start(id, SimRequest { method: req.method, url: req.url, headers: req.headers, body: req.body });
        }
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        let Ok(mut sim) = self.sim.lock() else {
            return std::mem::take(&mut self.caps)
                .into_iter()
                .map(|(id, _)| (id, Err(HostFetchError::Other("simulator lock poisoned".into()))))
                .collect();
        };
        let done = sim.complete(wait_ms);
        self.clock.set(sim.now_ms());
        done.into_iter()
            .map(|(id, out)| {
                let cap = match self.caps.iter().position(|(i, _)| *i == id) {
                    Some(k) => self.caps.swap_remove(k).1,
                    None => u64::MAX,
                };
                (id, sim_outcome(out, cap))
            })
            .collect()
    }

    fn sleep(&mut self, ms: u64) {
        if let Ok(mut sim) = self.sim.lock() {
            sim.advance(ms);
            self.clock.set(sim.now_ms());
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}
