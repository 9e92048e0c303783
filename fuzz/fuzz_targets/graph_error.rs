//! `GraphError::parse` and `classify_response` on an arbitrary body; the first two bytes are the
//! HTTP status. A parsed error is also classified as a batch element and summarised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::api::classify::{GraphError, classify_graph_error, classify_response};

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => (0, data),
    };
    let _ = classify_response(status, body);
    if let Some(g) = GraphError::parse(body) {
        let _ = g.summary();
        let _ = classify_graph_error(status, &g);
    }
});
