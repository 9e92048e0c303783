//! `host-test`: a wasmtime host for the source-facebook-marketing component, an Airbyte-style
//! CLI around it, and the glue to the Graph API simulator (in-process or over loopback HTTP).

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
