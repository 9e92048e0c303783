//! Protocol lines of the guest's messages: [`sfm_host::output`].

pub use sfm_host::output::*;
