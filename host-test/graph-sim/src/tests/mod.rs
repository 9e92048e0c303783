//! Scenario tests: the simulator driven through `handle`, as the connector and harness drive it.

mod batch;
mod entities;
mod insights;
mod jobs;
mod limits;
mod paging;
mod presets;

use serde_json::Value;

use crate::{SimConfig, SimRequest, SimResponse, Simulator};

/// The default token.
pub const TOKEN: &str = "sim-token";

/// A simulator of a preset (panics on an unknown name: tests only).
pub fn sim(preset: &str) -> Simulator {
    Simulator::new(SimConfig::preset(preset).expect("known preset"))
}

/// GET with the token appended as a query parameter.
pub fn get(s: &mut Simulator, url: &str) -> SimResponse {
    let sep = if url.contains('?') { '&' } else { '?' };
    s.handle(&SimRequest::get(format!("https://graph.facebook.com/v25.0/{url}{sep}access_token={TOKEN}")))
        .expect("no transport fault in this test")
}

/// GET of an absolute URL as given.
pub fn get_abs(s: &mut Simulator, url: &str) -> SimResponse {
    s.handle(&SimRequest::get(url)).expect("no transport fault in this test")
}

/// Form POST with the token in the body.
pub fn post(s: &mut Simulator, url: &str, form: &str) -> SimResponse {
    let body = format!("{form}&access_token={TOKEN}");
    s.handle(&SimRequest::post_form(format!("https://graph.facebook.com/v25.0/{url}"), body))
        .expect("no transport fault in this test")
}

/// Follows `paging.next` from a first page and returns every row; retries injected faults.
pub fn page_all(s: &mut Simulator, first_url: &str) -> Vec<Value> {
    let mut url = {
        let sep = if first_url.contains('?') { '&' } else { '?' };
        format!("https://graph.facebook.com/v25.0/{first_url}{sep}access_token={TOKEN}")
    };
    let mut rows = Vec::new();
    for _ in 0..10_000 {
        let resp = match s.handle(&SimRequest::get(url.clone())) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let body = resp.json();
        if resp.status != 200 || body.is_null() {
            assert!(resp.status >= 500 || body.is_null() || resp.status == 400, "unexpected {}", resp.status);
            let code = body["error"]["code"].as_i64().unwrap_or(0);
            assert!(body.is_null() || resp.status >= 500 || code == 1 || code == 2, "permanent error {body}");
            continue;
        }
        rows.extend(body["data"].as_array().cloned().unwrap_or_default());
        match body["paging"]["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => return rows,
        }
    }
    panic!("paging did not end")
}

/// Parses a JSON header.
pub fn header_json(r: &SimResponse, name: &str) -> Value {
    r.header(name).and_then(|h| serde_json::from_str(h).ok()).unwrap_or(Value::Null)
}

/// The first account's node id.
pub fn act(s: &Simulator) -> String {
    format!("act_{}", s.account_ids()[0])
}
