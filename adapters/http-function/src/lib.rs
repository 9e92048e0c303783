//! `source-facebook-marketing` as a `wasi:http/proxy` function, for serverless and edge hosts
//! (`wasmtime serve`, Spin, wasmCloud, Fastly, jco in Node.js).
//!
//! Built for `wasm32-wasip2`, this crate exports `wasi:http/incoming-handler` and imports the
//! connector's `source`; `wac plug` fills that with the connector (itself plugged with
//! `adapters/http-adapter`, which makes its Graph calls through `wasi:http/outgoing-handler`).
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /spec` | none | the SPEC line |
//! | `POST /check` | `{"config": {...}}` | the CONNECTION_STATUS line |
//! | `POST /discover` | `{"config": {...}}` | the CATALOG line |
//! | `POST /read[?max_duration_seconds=N]` | `{"config": {...}, "catalog": {...}, "state": [...]}` | the sync's lines, streamed |
//!
//! Answers are `application/x-ndjson`, one Airbyte message per line, the bytes `host-test` writes
//! to stdout. A request the function cannot take (wrong method or path, a body that is not the
//! JSON object above, a config the connector refuses before reading) gets a 4xx with
//! `{"error": "..."}`. Once a read has begun, its status is 200 and a failed sync ends its
//! stream with the error TRACE, as the command line does. Secrets of the config are redacted
//! from every line and never logged.
//!
//! This file holds the pure pieces (routing, request parsing), built and tested natively;
//! `component.rs`, built for wasm32 only, performs the WASI calls.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod component;

use serde_json::{Map, Value};

/// 16 MiB: the largest request body taken (a config, a catalog of every stream and the state of
/// many accounts fit in a few hundred KiB).
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The media type of the answers.
pub const NDJSON: &str = "application/x-ndjson";

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Spec,
    Check { config: String },
    Discover { config: String },
    Read { config: String, catalog: String, state: Option<String> },
}

/// A request the function refuses: the status and the message of its `{"error": ...}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into() }
    }

    /// The JSON body of the refusal.
    pub fn body(&self) -> String {
        let mut m = Map::new();
        m.insert("error".into(), Value::from(self.message.as_str()));
        Value::Object(m).to_string()
    }
}

/// The endpoint a method and path name, before the body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Spec,
    Check,
    Discover,
    Read,
}

/// Routes `method` and `path_with_query` (`/read?max_duration_seconds=600`).
pub fn route(method: &str, path_with_query: &str) -> Result<Endpoint, Refusal> {
    let path = path_with_query.split('?').next().unwrap_or("").trim_end_matches('/');
    let endpoint = match path {
        "/spec" => Endpoint::Spec,
        "/check" => Endpoint::Check,
        "/discover" => Endpoint::Discover,
        "/read" => Endpoint::Read,
        _ => {
            return Err(Refusal::new(
                404,
                format!(
                    "no endpoint {path:?}; POST /spec, /check, /discover or /read (see the README, \"Serverless\")"
                ),
            ));
        }
    };
    if !method.eq_ignore_ascii_case("POST") {
        return Err(Refusal::new(405, format!("{path} takes POST, not {method}")));
    }
    Ok(endpoint)
}

/// The command a request's body (and query) asks for. `max_duration_seconds` in the query sets
/// the read's time box when the config has none (a platform knows its own deadline).
pub fn parse(endpoint: Endpoint, path_with_query: &str, body: &[u8]) -> Result<Command, Refusal> {
    if endpoint == Endpoint::Spec {
        return Ok(Command::Spec);
    }
    let text = std::str::from_utf8(body).map_err(|e| Refusal::new(400, format!("the body is not UTF-8 text: {e}")))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Refusal::new(400, format!("the body is not JSON ({e}); send {}", shape(endpoint))))?;
    let Value::Object(mut fields) = value else {
        return Err(Refusal::new(400, format!("the body is not a JSON object; send {}", shape(endpoint))));
    };
    let mut config = match fields.remove("config") {
        Some(Value::Object(c)) => c,
        Some(_) => return Err(Refusal::new(400, "\"config\" is not a JSON object")),
        None => return Err(Refusal::new(400, format!("the body has no \"config\"; send {}", shape(endpoint)))),
    };
    match endpoint {
        Endpoint::Spec => Ok(Command::Spec),
        Endpoint::Check => Ok(Command::Check { config: Value::Object(config).to_string() }),
        Endpoint::Discover => Ok(Command::Discover { config: Value::Object(config).to_string() }),
        Endpoint::Read => {
            let catalog = match fields.remove("catalog") {
                Some(c @ Value::Object(_)) => c.to_string(),
                Some(_) => return Err(Refusal::new(400, "\"catalog\" is not a JSON object (a configured catalog)")),
                None => {
                    return Err(Refusal::new(400, format!("the body has no \"catalog\"; send {}", shape(endpoint))));
                }
            };
            let state = match fields.remove("state") {
                None | Some(Value::Null) => None,
                Some(s @ (Value::Array(_) | Value::Object(_))) => Some(s.to_string()),
                Some(_) => {
                    return Err(Refusal::new(
                        400,
                        "\"state\" is neither a list of state messages nor an object; pass the STATE messages the last read emitted",
                    ));
                }
            };
            if let Some(seconds) = query_param(path_with_query, "max_duration_seconds") {
                let n: u64 = seconds.parse().map_err(|_| {
                    Refusal::new(400, format!("max_duration_seconds={seconds:?} is not a whole number of seconds"))
                })?;
                config.entry("max_duration_seconds").or_insert(Value::from(n));
            }
            Ok(Command::Read { config: Value::Object(config).to_string(), catalog, state })
        }
    }
}

fn shape(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Read => "{\"config\": {...}, \"catalog\": {...}, \"state\": [...]}",
        _ => "{\"config\": {...}}",
    }
}

fn query_param<'a>(path_with_query: &'a str, name: &str) -> Option<&'a str> {
    let query = path_with_query.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// The message of a config error TRACE line, when `line` is one: the connector refused the
/// config (or catalog, or state) before reading anything, which is the request's fault.
pub fn config_error(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    let error = v.get("trace")?.get("error")?;
    (error.get("failure_type")?.as_str()? == "config_error")
        .then(|| error.get("message")?.as_str().map(str::to_string))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_four_endpoints_and_refuses_the_rest_by_name() {
        assert_eq!(route("POST", "/read?max_duration_seconds=60"), Ok(Endpoint::Read));
        assert_eq!(route("post", "/spec/"), Ok(Endpoint::Spec));
        let e = route("GET", "/check").unwrap_err();
        assert_eq!(e.status, 405);
        assert!(e.message.contains("POST"), "{}", e.message);
        let e = route("POST", "/sync").unwrap_err();
        assert_eq!(e.status, 404);
        assert!(e.message.contains("/read"), "{}", e.message);
        assert_eq!(serde_json::from_str::<Value>(&e.body()).unwrap()["error"], e.message);
    }

    #[test]
    fn a_read_takes_config_catalog_and_state_and_the_query_sets_the_time_box() {
        let body = br#"{"config": {"account_ids": ["1"]}, "catalog": {"streams": []}, "state": [{"type": "STREAM"}]}"#;
        let Command::Read { config, catalog, state } =
            parse(Endpoint::Read, "/read?max_duration_seconds=540", body).unwrap()
        else {
            panic!()
        };
        let config: Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["max_duration_seconds"], 540);
        assert_eq!(catalog, r#"{"streams":[]}"#);
        assert!(state.unwrap().contains("STREAM"));
        // The config's own time box wins.
        let body = br#"{"config": {"max_duration_seconds": 30}, "catalog": {}}"#;
        let Command::Read { config, state, .. } =
            parse(Endpoint::Read, "/read?max_duration_seconds=540", body).unwrap()
        else {
            panic!()
        };
        assert!(config.contains(r#""max_duration_seconds":30"#));
        assert_eq!(state, None);
    }

    #[test]
    fn a_body_that_is_not_the_shape_asked_for_is_a_400_naming_what_is_wrong() {
        for (endpoint, body, says) in [
            (Endpoint::Check, &b"not json"[..], "not JSON"),
            (Endpoint::Check, b"[1]", "not a JSON object"),
            (Endpoint::Discover, b"{}", "no \"config\""),
            (Endpoint::Check, br#"{"config": "x"}"#, "\"config\" is not"),
            (Endpoint::Read, br#"{"config": {}}"#, "no \"catalog\""),
            (Endpoint::Read, br#"{"config": {}, "catalog": []}"#, "\"catalog\" is not"),
            (Endpoint::Read, br#"{"config": {}, "catalog": {}, "state": 3}"#, "\"state\" is neither"),
            (Endpoint::Check, b"\xff", "not UTF-8"),
        ] {
            let e = parse(endpoint, "/x", body).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(says), "{says}: {}", e.message);
        }
        let e =
            parse(Endpoint::Read, "/read?max_duration_seconds=soon", br#"{"config": {}, "catalog": {}}"#).unwrap_err();
        assert!(e.message.contains("whole number"), "{}", e.message);
        assert_eq!(parse(Endpoint::Spec, "/spec", b"").unwrap(), Command::Spec);
    }

    #[test]
    fn a_config_error_trace_is_told_from_other_lines() {
        let refused = r#"{"type":"TRACE","trace":{"type":"ERROR","error":{"failure_type":"config_error","message":"config: account_ids is missing"}}}"#;
        assert_eq!(config_error(refused).as_deref(), Some("config: account_ids is missing"));
        let failed =
            r#"{"type":"TRACE","trace":{"type":"ERROR","error":{"failure_type":"system_error","message":"x"}}}"#;
        assert_eq!(config_error(failed), None);
        assert_eq!(config_error(r#"{"type":"RECORD"}"#), None);
    }
}
