//! The Meta Marketing API source connector: sans-IO state machines for `spec`, `check`,
//! `discover` and `read`, driven by one loop over a host's `http-fetch` and `sleep`.
//!
//! The core never does IO and never reads a clock: see [`driver`] for the contract. The wasm
//! bindings live in `component` and are compiled only for `wasm32`.

pub mod api;
pub mod catalog;
pub mod check;
pub mod commands;
pub mod config;
pub mod driver;
pub mod error;
pub mod http;
pub mod protocol;
pub mod read;
pub mod rng;
pub mod schema;
pub mod spec;
pub mod state;
pub mod streams;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod component;
