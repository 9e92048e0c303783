//! `read`: one sync of the selected streams, several streams and accounts at once.
//!
//! The [`ReadMachine`] (in [`sync`]) owns the API client and drives each stream's reader, a
//! machine of the contract in [`reader`]: it hands the reader its inputs and does what the
//! reader hands back (submit a call, emit a message, poll a job). Up to
//! [`sync::MAX_ACTIVE_STREAMS`] streams are read at once, started in catalog order; the client
//! bounds the requests in flight, and the sync routes each outcome back to the stream whose call
//! it was, by the id it entered the call under.
//! Records of different streams interleave; each stream's STATE covers only what that stream
//! emitted before it. An insights stream starts only once no running stream is still learning
//! the accounts' time zones (ad_account, or another insights stream's look-ups), so that the
//! accounts are looked up once a sync. A stream that fails is reported INCOMPLETE and the sync
//! goes on with the others; an account that fails inside a stream leaves the other accounts'
//! state intact. A failed sync ends with one error trace naming what failed.

pub mod common;
pub mod creatives_from_ads;
pub mod cursor;
pub mod entity;
pub mod fields;
pub mod insights;
pub mod reader;
pub mod resume;
pub mod sync;
#[cfg(test)]
pub mod testing;
pub mod transcode;

pub use reader::AccountFacts;
pub use sync::{Progress, ReadMachine, StreamProgress};
