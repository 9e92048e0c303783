//! `host-test`: the Airbyte-style CLI of the source-facebook-marketing component on `sfm-host`
//! (the wasmtime embedding, re-exported here as `backend`, `runtime` and `output`), record and
//! replay, and the glue to the Graph API simulator (in-process or over loopback HTTP): demo,
//! soak and ground truth.

pub mod backend;
pub mod demo;
pub mod http1;
pub mod output;
pub mod progress;
pub mod record;
pub mod runtime;
pub mod server;
pub mod soak;
pub mod truth;
