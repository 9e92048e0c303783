use super::*;
use crate::{Faults, RequestKind};

fn batch_body(ops: &[String], extra: &str) -> String {
    let arr = format!("[{}]", ops.join(","));
    let enc: String = form_urlencoded::byte_serialize(arr.as_bytes()).collect();
    format!("batch={enc}{extra}")
}

fn op(url: &str) -> String {
    format!("{{\"method\":\"GET\",\"relative_url\":\"{url}\"}}")
}

#[test]
fn batch_answers_each_operation_in_order_with_string_bodies_and_headers() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let ops = vec![op(&format!("{a}/?fields=name")), op("999/"), op(&format!("v25.0/{a}/campaigns?limit=1"))];
    let r = s.handle(&SimRequest::post_form(
        "https://graph.facebook.com/v25.0/",
        batch_body(&ops, &format!("&access_token={TOKEN}")),
    ));
    let b = r.expect("answer").json();
    let arr = b.as_array().cloned().unwrap_or_default();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0]["code"].as_u64(), Some(200));
    let inner: Value = serde_json::from_str(arr[0]["body"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(inner["id"].as_str(), Some(a.as_str()));
    assert_eq!(arr[1]["code"].as_u64(), Some(400), "a failed op keeps its own status");
    let names: Vec<&str> =
        arr[0]["headers"].as_array().map(|h| h.iter().filter_map(|x| x["name"].as_str()).collect()).unwrap_or_default();
    assert!(names.contains(&"x-business-use-case-usage"), "{names:?}");
    assert_eq!(s.counters().batch_operations, 3);
    assert_eq!(s.counters().of(&RequestKind::BatchOp), 3);
    assert_eq!(s.call_log().iter().filter(|e| e.in_batch).count(), 3);
}

#[test]
fn a_batch_of_51_operations_is_rejected() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let ops: Vec<String> = (0..51).map(|_| op(&format!("{a}/"))).collect();
    let r = post(&mut s, "", &batch_body(&ops, ""));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"].as_str(),
        Some("Too many requests in batch message. Maximum batch size is 50")
    );
    let ops: Vec<String> = (0..50).map(|_| op(&format!("{a}/"))).collect();
    assert_eq!(post(&mut s, "", &batch_body(&ops, "")).status, 200);
}

#[test]
fn include_headers_false_drops_per_operation_headers() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let r = post(&mut s, "", &batch_body(&[op(&format!("{a}/"))], "&include_headers=false"));
    assert!(r.json()[0].get("headers").is_none());
}

#[test]
fn flaky_batches_contain_nulls_and_960s_that_succeed_when_resent() {
    let cfg = SimConfig {
        faults: Faults { batch_null: 0.2, batch_aborted_960: 0.2, ..Faults::default() },
        ..SimConfig::default()
    };
    let mut s = Simulator::new(cfg);
    let a = act(&s);
    let ops: Vec<String> = (0..40).map(|_| op(&format!("{a}/?fields=name"))).collect();
    let b = post(&mut s, "", &batch_body(&ops, "")).json();
    let arr = b.as_array().cloned().unwrap_or_default();
    let nulls = arr.iter().filter(|e| e.is_null()).count();
    let aborted: Vec<usize> =
        (0..arr.len()).filter(|&i| arr[i]["body"].as_str().is_some_and(|x| x.contains("\"code\":960"))).collect();
    assert!(nulls > 0 && !aborted.is_empty(), "nulls {nulls}, aborted {}", aborted.len());
    assert!(aborted.iter().all(|&i| arr[i]["code"].as_u64() == Some(500)));
    let mut pending: Vec<String> =
        (0..arr.len()).filter(|&i| arr[i].is_null() || aborted.contains(&i)).map(|i| ops[i].clone()).collect();
    for _ in 0..50 {
        if pending.is_empty() {
            break;
        }
        let b = post(&mut s, "", &batch_body(&pending, "")).json();
        let arr = b.as_array().cloned().unwrap_or_default();
        pending =
            (0..arr.len()).filter(|&i| arr[i]["code"].as_u64() != Some(200)).map(|i| pending[i].clone()).collect();
    }
    assert!(pending.is_empty());
}
