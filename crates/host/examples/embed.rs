//! A connector runtime in a few dozen lines: runs a sync of the component and writes the
//! Airbyte protocol messages to stdout.
//!
//!     embed COMPONENT.wasm CONFIG.json CATALOG.json [GRAPH_ORIGIN]
//!
//! GRAPH_ORIGIN (such as `http://127.0.0.1:8080` for `host-test simulate`) replaces
//! `https://graph.facebook.com`; only its host (or Graph's) may be reached.

use sfm_host::backend::NetBackend;
use sfm_host::output::to_line;
use sfm_host::runtime::{Allowlist, GRAPH_ORIGIN, Limits, Runtime, url_host};
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [component, config, catalog, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: embed COMPONENT.wasm CONFIG.json CATALOG.json [GRAPH_ORIGIN]");
    };
    let origin = rest.first().cloned();
    let host = url_host(origin.as_deref().unwrap_or(GRAPH_ORIGIN)).unwrap_or_default().to_string();

    let runtime = Runtime::load(component.as_ref())?;
    let allow = Allowlist { hosts: vec![host], suffixes: vec![] };
    let mut guest = runtime.instantiate(Box::new(NetBackend::new()), allow, origin, &Limits::default())?;

    let (config, catalog) = (std::fs::read_to_string(config)?, std::fs::read_to_string(catalog)?);
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    guest.read(&config, &catalog, None, |batch| {
        for message in &batch {
            if let Err(e) = writeln!(out, "{}", to_line(message)) {
                failed = Some(e);
                return false;
            }
        }
        true
    })?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
