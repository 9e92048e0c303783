//! `catalog::parse` on arbitrary text against a valid config (the one with a custom insight, so
//! custom streams are offered too).
#![no_main]

use fuzz_support::{NOW, config_json};
use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::catalog;
use source_facebook_marketing::config::Config;
use std::sync::LazyLock;

static CONFIG: LazyLock<Config> =
    LazyLock::new(|| Config::from_value(config_json(1), NOW).expect("the fixed fuzz config is valid"));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = catalog::parse(&text, &CONFIG);
});
