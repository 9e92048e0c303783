//! `state::parse` on arbitrary text, then `state::per_account` on every stream's state with one
//! and with two accounts, under both cursor keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::state;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(states) = state::parse(&text) else { return };
    let one = ["111".to_string()];
    let two = ["111".to_string(), "222".to_string()];
    for value in states.values() {
        for accounts in [&one[..], &two[..]] {
            for key in ["updated_time", "date_start"] {
                let _ = state::per_account(Some(value), accounts, key);
            }
        }
    }
});
