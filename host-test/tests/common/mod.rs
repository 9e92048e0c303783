//! What the host-test integration tests share.

#![allow(dead_code)]

use host_test::runtime::{Runtime, default_component_path};
use std::sync::OnceLock;

/// The built component, compiled once per test binary (and cached to disk by `Runtime::load`).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let path = default_component_path();
        Runtime::load(&path).unwrap_or_else(|e| {
            panic!(
                "cannot load the component at {}: {e:#}\nbuild it first: cargo build --release --target wasm32-wasip2 -p source-facebook-marketing",
                path.display()
            )
        })
    })
}

/// A request's headers as the simulator takes them (names in lower case).
pub fn headers_of(request: &tiny_http::Request) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_ascii_lowercase(), h.value.as_str().to_string()))
        .collect()
}

/// What a loopback server of a test received, as a request to the simulator (its body read).
pub fn sim_request(request: &mut tiny_http::Request) -> graph_sim::SimRequest {
    let mut body = Vec::new();
    let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
    graph_sim::SimRequest {
        method: request.method().as_str().to_string(),
        url: format!("http://127.0.0.1{}", request.url()),
        headers: headers_of(request),
        body,
    }
}

/// The configured catalog of `streams` from `discover`'s stdout: incremental where offered (on
/// the default cursor), full refresh elsewhere, appended.
pub fn configured_catalog(discover_stdout: &str, streams: &[&str]) -> serde_json::Value {
    use serde_json::{Value, json};
    let catalog = discover_stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["type"] == "CATALOG")
        .expect("a catalog");
    let configured: Vec<Value> = catalog["catalog"]["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter(|s| streams.contains(&s["name"].as_str().unwrap_or("")))
        .map(|s| {
            let inc = s["supported_sync_modes"].as_array().is_some_and(|m| m.contains(&json!("incremental")));
            let mut c = json!({"stream": s, "sync_mode": if inc { "incremental" } else { "full_refresh" }, "destination_sync_mode": "append"});
            if inc {
                c["cursor_field"] = s["default_cursor_field"].clone();
            }
            c
        })
        .collect();
    assert_eq!(configured.len(), streams.len(), "every stream asked for was discovered");
    json!({"streams": configured})
}

/// A tiny_http server on 127.0.0.1 (`port` 0: any free port) whose connections send without
/// delay, for tests that answer requests by hand (few connections; the simulator itself is
/// served by `host_test::http1`, see there why).
///
/// tiny_http writes a response's head and body in separate writes once the body passes its
/// 1 KiB buffer; with Nagle's algorithm on, the body then waits for the client's delayed ACK
/// of the head (40 ms on Linux) on every kept-alive connection. Accepted sockets inherit
/// `TCP_NODELAY` from the listening one.
pub fn loopback_server(port: u16) -> anyhow::Result<tiny_http::Server> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    set_nodelay(&listener);
    tiny_http::Server::from_listener(listener, None)
        .map_err(|e| anyhow::anyhow!("cannot serve on 127.0.0.1:{port}: {e}"))
}

#[cfg(unix)]
fn set_nodelay(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and a pointer to a c_int with its size.
    let _ = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(not(unix))]
fn set_nodelay(_: &std::net::TcpListener) {}
