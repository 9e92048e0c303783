//! `Config::parse` on arbitrary text at a fixed instant; a config it accepts must also yield its
//! streams (custom insight names, cursors) without panicking. (Not the full catalog: building
//! every schema takes tens of milliseconds, which would starve the fuzzer.)
#![no_main]

use fuzz_support::NOW;
use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::config::Config;
use source_facebook_marketing::streams::all_streams;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = Config::parse(&text, NOW) {
        for stream in all_streams(&config) {
            let _ = (stream.name(), stream.cursor_field());
        }
    }
});
