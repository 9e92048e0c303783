//! Run the source-facebook-marketing WebAssembly component from Rust, as a wasmtime-based
//! connector runtime would.
//!
//! ```no_run
//! use sfm_host::backend::NetBackend;
//! use sfm_host::runtime::{Allowlist, Limits, Runtime};
//!
//! # fn main() -> anyhow::Result<()> {
//! // Compile once (cached per user, keyed by the component's hash), instantiate per command.
//! let runtime = Runtime::load("source_facebook_marketing.wasm".as_ref())?;
//! let allow = Allowlist { hosts: vec!["graph.facebook.com".into()], suffixes: vec![] };
//! let mut guest = runtime.instantiate(Box::new(NetBackend::new()), allow, None, &Limits::default())?;
//! let config = std::fs::read_to_string("config.json")?;
//! let catalog = std::fs::read_to_string("catalog.json")?;
//! guest.read(&config, &catalog, None, |batch| {
//!     for message in batch {
//!         // RECORD, STATE, LOG and TRACE messages, in order.
//!         let _ = message;
//!     }
//!     true // false stops the sync
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`runtime::Runtime`]: the engine and the compiled component; [`runtime::Runtime::load`]
//!   or [`runtime::Runtime::from_bytes`], then `instantiate` a [`runtime::Guest`] with a
//!   [`backend::Backend`], an [`runtime::Allowlist`] of hosts the guest may reach, an optional
//!   origin that replaces `https://graph.facebook.com` (a proxy, a simulator), and
//!   [`runtime::Limits`] (memory, compute between host calls, request timeout ceiling).
//! - [`runtime::Guest`]: `spec`, `check`, `discover`, `read` (batches of messages to a
//!   callback), `progress` while reading.
//! - [`output::to_line`]: a message as its Airbyte protocol line.
//! - [`backend::NetBackend`]: HTTPS with rustls and gzip, requests in flight on a pool of
//!   threads; or implement [`backend::Backend`] for another transport.

pub mod backend;
pub mod output;
pub mod runtime;
pub mod state;
