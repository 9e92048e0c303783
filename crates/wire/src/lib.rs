//! What the connector and every host of it agree on byte for byte, in one place: the Airbyte
//! protocol lines they print ([`lines`]), how secrets are kept out of what they print
//! ([`redact`]), the Graph origin that hosts may route elsewhere ([`origin`]), how many
//! requests may be in flight at once ([`limits`]), and the transport failures hosts report
//! ([`fetch`]).
//!
//! Used by the component itself, by `host-test` and `sfm-host`, and by the `wasi:cli` command,
//! the `wasi:http` function and the `wasi:http` adapter, so that none prints or routes differently. It depends on
//! `serde_json` alone, which the component already carries.

pub mod fetch;
pub mod limits;
pub mod lines;
pub mod origin;
pub mod redact;
