//! The Meta Marketing API source connector: sans-IO state machines for `spec`, `check`,
//! `discover` and `read`, driven by one loop over a host's `http-fetch` and `sleep`.
//!
//! The core never does IO and never reads a clock: see [`driver`] for the contract. The wasm
//! bindings live in `component` and are compiled only for `wasm32`.
//!
//! Where things are:
//! - the machines' contract and the one loop that runs them: [`driver::Machine`],
//!   [`driver::Driver`]; their shared front (client + outbox): [`machine::Core`];
//! - the commands: [`commands`] (`spec`, `discover`, [`commands::DiscoverMachine`]),
//!   [`check::CheckMachine`], [`read::ReadMachine`]; the accounts of a config without
//!   `account_ids`: [`accounts`];
//! - every Graph call: [`api::client::Api`] (retries, quota waits, page-size halving, usage
//!   headers), classified once by [`api::classify`]; paging ([`api::paginator::Paginator`]) and
//!   batches ([`api::batch::BatchSender`]) on top;
//! - the streams: [`model`] (Meta's and Airbyte's vocabulary), [`streams`] (the registry),
//!   [`schema`] (from `stream-fields.tsv`), [`config`], [`catalog`], [`state`];
//! - errors by blame: [`error::ConnectorError`]; time as an input: [`time::Timestamp`],
//!   [`timers::Timers`].

// No unwrap or expect in connector code: errors are data (STYLE.md). Tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts;
pub mod api;
pub mod catalog;
pub mod check;
pub mod commands;
pub mod config;
pub mod driver;
pub mod error;
pub mod http;
pub mod machine;
pub mod model;
pub mod protocol;
pub mod read;
pub mod rng;
pub mod scan;
pub mod schema;
pub mod spec;
pub mod state;
pub mod streams;
pub mod text;
pub mod time;
pub mod timers;

#[cfg(target_arch = "wasm32")]
mod component;
