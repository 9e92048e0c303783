//! `parse_status` on arbitrary JSON: the input as JSON text when it parses, else a report-run
//! status built from the input (so the interesting keys are present).
#![no_main]

use arbitrary::Unstructured;
use fuzz_support::{job_status_body, json_value};
use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::read::insights::job::{RunStatus, parse_status};

fuzz_target!(|data: &[u8]| {
    let value = match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v) => v,
        Err(_) => {
            let mut u = Unstructured::new(data);
            if data.first().is_some_and(|b| b & 1 == 0) { job_status_body(&mut u) } else { json_value(&mut u, 3) }
        }
    };
    if let Some(RunStatus::Failed(reason)) = parse_status(&value) {
        let _ = reason.is_too_large();
        let _ = reason.describe();
    }
});
