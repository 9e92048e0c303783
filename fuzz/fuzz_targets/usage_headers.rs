//! `parse_usage`, `parse_insights_throttle` and `Throttle` on header values: usage templates with
//! number tokens spliced in raw, JSON values, and arbitrary strings, under the usage header names.
#![no_main]

use arbitrary::Unstructured;
use fuzz_support::{NOW, byte, count, one_in, usage_header};
use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::api::throttle::{Throttle, parse_insights_throttle, parse_usage, pause_for};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut throttle = Throttle::default();
    let mut now = NOW;
    for _ in 0..=count(&mut u, 3) {
        let headers: Vec<(String, String)> = (0..=count(&mut u, 3)).map(|_| usage_header(&mut u)).collect();
        if let Some(usage) = parse_usage(&headers) {
            let _ = pause_for(usage);
        }
        let _ = parse_insights_throttle(&headers);
        throttle.observe(&headers, now);
        if one_in(&mut u, 2) {
            let _ = throttle.on_quota_block(&headers, now);
        } else {
            throttle.on_success();
        }
        let _ = throttle.paused_until(now);
        let _ = throttle.insights_load();
        now = now.plus(Duration::from_secs(u64::from(byte(&mut u)) * 10));
    }
});
