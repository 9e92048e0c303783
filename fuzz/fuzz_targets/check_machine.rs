//! The check machine against an adversarial Graph API: a fixed valid config (two accounts; the
//! variant with a custom insight adds the breakdowns probe), then the crate's driver with every
//! fetch answered from the input (see `FuzzIo`).
#![no_main]

use arbitrary::Unstructured;
use fuzz_support::{FuzzIo, NOW, byte, config_json, drive};
use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::check::CheckMachine;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let config = config_json(byte(&mut u));
    let seed = u64::from(byte(&mut u));
    let machine = CheckMachine::new(&config.to_string(), seed, NOW);
    let mut io = FuzzIo::new(u);
    drive(machine, &mut io);
});
