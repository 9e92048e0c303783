//! `source-facebook-marketing` as an Airbyte source command for standard WASI hosts.
//!
//! Built for `wasm32-wasip2`, this is a `wasi:cli` command that imports the connector's
//! `source` interface; `wac plug` fills that import with the connector (itself plugged with
//! `adapters/http-adapter`), so `wasmtime run -S http` runs the whole source. Protocol messages
//! go to stdout, one JSON object per line and nothing else; logs go to stderr.
//!
//! Natively only the argument parsing and line formatting build, for their tests.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod args;
#[cfg(target_arch = "wasm32")]
mod run;

#[cfg(target_arch = "wasm32")]
fn main() -> std::process::ExitCode {
    run::main()
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    eprintln!("sfm-cli is a wasi:cli command: build it with --target wasm32-wasip2 (scripts/build-command.sh)");
    std::process::ExitCode::from(2)
}
