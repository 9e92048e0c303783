use super::*;
use crate::{Faults, TransportFault};

#[test]
fn every_preset_constructs_and_unknown_names_do_not() {
    for name in SimConfig::preset_names() {
        let s = Simulator::new(SimConfig::preset(name).expect("listed presets exist"));
        assert!(!s.account_ids().is_empty(), "{name}");
    }
    assert!(SimConfig::preset("nope").is_none());
    assert_eq!(SimConfig::preset("calm"), Some(SimConfig::default()));
}

#[test]
fn token_expired_answers_every_call_with_190_463() {
    let mut s = sim("token_expired");
    let a = act(&s);
    let r = get(&mut s, &a);
    let e = &r.json()["error"];
    assert_eq!((r.status, e["code"].as_i64(), e["error_subcode"].as_i64()), (400, Some(190), Some(463)));
}

#[test]
fn flaky_injects_every_fault_kind_and_retries_get_the_right_answer() {
    let mut s = sim("flaky");
    let mut calm = sim("calm");
    let a = act(&s);
    let want = get(&mut calm, &format!("{a}/campaigns?fields=id,name")).body;
    let mut transport = 0;
    for _ in 0..400 {
        match s.handle(&SimRequest::get(format!("/v25.0/{a}/campaigns?fields=id,name&access_token={TOKEN}"))) {
            Err(TransportFault::Timeout | TransportFault::ConnectionReset) => transport += 1,
            Err(TransportFault::ConnectionRefused) => panic!("never injected"),
            Ok(r) if r.status == 200 && serde_json::from_slice::<Value>(&r.body).is_ok() => assert_eq!(r.body, want),
            Ok(r) => assert!(r.status >= 500 || serde_json::from_slice::<Value>(&r.body).is_err(), "{}", r.status),
        }
    }
    assert!(transport > 0);
    let f = &s.counters().faults;
    for k in ["http_500", "transient_code", "malformed_body", "truncated_body", "timeout", "connection_reset"] {
        assert!(f.get(k).copied().unwrap_or(0) > 0, "{k} never injected: {f:?}");
    }
}

#[test]
fn two_simulators_with_the_same_seed_are_byte_identical() {
    let run = || {
        let mut s = Simulator::new(SimConfig {
            faults: Faults {
                http_500: 0.1,
                timeout: 0.1,
                batch_null: 0.2,
                empty_middle_pages: true,
                ..Faults::default()
            },
            ..SimConfig::default()
        });
        let a = act(&s);
        let mut bodies = Vec::new();
        for url in [
            format!("{a}/campaigns?limit=2"),
            format!("{a}/ads?fields=name,creative"),
            format!("{a}/adimages"),
            a.clone(),
        ] {
            for _ in 0..5 {
                let r = s.handle(&SimRequest::get(format!("/v25.0/{url}&access_token={TOKEN}").replacen(
                    &format!("{a}&"),
                    &format!("{a}?"),
                    1,
                )));
                bodies.push(r.map(|r| (r.status, r.headers, r.body)));
            }
        }
        let id = post(&mut s, &format!("{a}/insights"), super::jobs::DAY_FORM).body;
        bodies.push(Ok((0, Vec::new(), id)));
        (bodies, s.call_log().to_vec(), s.counters().clone())
    };
    assert_eq!(run(), run());
}

#[test]
fn different_seeds_make_different_worlds() {
    let mut a = Simulator::new(SimConfig { seed: 1, ..SimConfig::default() });
    let mut b = Simulator::new(SimConfig { seed: 2, ..SimConfig::default() });
    let node = act(&a);
    assert_ne!(
        get(&mut a, &format!("{node}/ads?fields=name,updated_time")).body,
        get(&mut b, &format!("{node}/ads?fields=name,updated_time")).body
    );
}
