//! The read machine against an adversarial Graph API: a fixed valid config (two accounts, one
//! of three variants); a catalog of entity streams and insights whose order, sync modes and
//! field selections come from the input; a state drawn from the input; then the crate's driver
//! with every fetch answered from the rest of the input (see `FuzzIo`). Nothing may panic; a
//! machine that stalls ends with the driver's error trace.
#![no_main]

use arbitrary::Unstructured;
use fuzz_support::{FuzzIo, NOW, byte, catalog_text, config_json, drive, state_text};
use libfuzzer_sys::fuzz_target;
use source_facebook_marketing::read::ReadMachine;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let variant = byte(&mut u);
    let config = config_json(variant);
    let catalog = catalog_text(variant, byte(&mut u), byte(&mut u), byte(&mut u));
    let state = state_text(&mut u);
    let seed = u64::from(byte(&mut u));
    let machine = ReadMachine::new(&config.to_string(), &catalog, state.as_deref(), seed, NOW);
    let mut io = FuzzIo::new(u);
    drive(machine, &mut io);
});
