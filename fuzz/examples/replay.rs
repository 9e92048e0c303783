//! Replays a `read_machine` or `check_machine` input natively and prints what happened: each
//! fetch with the answer it got, each sleep, and each message, so a finding can be read.
//!
//!   cargo run --example replay -- read_machine fuzz/artifacts/read_machine/crash-...
//!
//! Set REPLAY_QUIET=1 to print only the totals.

use arbitrary::Unstructured;
use fuzz_support::{FuzzIo, NOW, byte, catalog_text, config_json, state_text};
use source_facebook_marketing::check::CheckMachine;
use source_facebook_marketing::driver::{BatchLimit, Completion, Driver, Io, Machine, TimeoutReason};
use source_facebook_marketing::http::{Request, RequestId};
use source_facebook_marketing::time::Timestamp;
use std::time::Duration;

struct Traced<'a> {
    io: FuzzIo<'a>,
    quiet: bool,
    fetches: usize,
}

impl Io for Traced<'_> {
    fn exchange(&mut self, start: Vec<(RequestId, Request)>, wait: Option<Duration>) -> Vec<Completion> {
        if !self.quiet {
            for (id, request) in &start {
                println!("START {id} {} {}", request.method, request.url);
            }
        }
        let done = self.io.exchange(start, wait);
        self.fetches += done.len();
        if !self.quiet {
            if done.is_empty() {
                println!("WAITED {wait:?}");
            }
            for (id, outcome) in &done {
                let answer = match outcome {
                    Ok(r) => format!("{} {:?} {}", r.status, r.headers, String::from_utf8_lossy(&r.body)),
                    Err(e) => format!("error: {e}"),
                };
                println!("DONE {id}\n  -> {}", clip(&answer, 600));
            }
        }
        done
    }

    fn sleep(&mut self, duration: Duration, reason: TimeoutReason) {
        if !self.quiet {
            println!("SLEEP {duration:?} ({})", reason.as_str());
        }
        self.io.sleep(duration, reason)
    }

    fn now(&mut self) -> Timestamp {
        self.io.now()
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}...", s.chars().take(n).collect::<String>()) }
}

fn run<M: Machine>(machine: M, io: &mut Traced) {
    let mut driver = Driver::new(machine);
    let mut messages = 0;
    while let Some(batch) = driver.next_batch(io, BatchLimit { messages: 16, bytes: 64 * 1024 }) {
        for m in batch {
            messages += 1;
            if !io.quiet {
                println!("MSG {}", clip(&m.to_json_line(), 600));
            }
        }
    }
    let now = io.now();
    println!("{} fetches, {messages} messages, clock at {now}", io.fetches);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, path] = &args[..] else {
        eprintln!("usage: replay read_machine|check_machine FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("readable input file");
    let quiet = std::env::var_os("REPLAY_QUIET").is_some();
    let mut u = Unstructured::new(&data);
    match target.as_str() {
        "read_machine" => {
            let variant = byte(&mut u);
            let config = config_json(variant);
            let catalog = catalog_text(variant, byte(&mut u), byte(&mut u), byte(&mut u));
            let state = state_text(&mut u);
            let seed = u64::from(byte(&mut u));
            println!("CONFIG {config}\nSTATE {state:?}");
            let m = source_facebook_marketing::read::ReadMachine::new(
                &config.to_string(),
                &catalog,
                state.as_deref(),
                seed,
                NOW,
            );
            run(m, &mut Traced { io: FuzzIo::new(u), quiet, fetches: 0 });
        }
        "check_machine" => {
            let config = config_json(byte(&mut u));
            let seed = u64::from(byte(&mut u));
            let m = CheckMachine::new(&config.to_string(), seed, NOW);
            run(m, &mut Traced { io: FuzzIo::new(u), quiet, fetches: 0 });
        }
        other => {
            eprintln!("replay knows read_machine and check_machine, not {other}");
            std::process::exit(2);
        }
    }
}
