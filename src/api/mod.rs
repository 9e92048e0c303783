//! The API layer: classifying Graph's answers, backing off, throttling, and the client machine
//! that puts them together for every call; plus paging and batching on top of it.

pub mod backoff;
pub mod batch;
pub mod classify;
pub mod client;
pub mod paginator;
pub mod throttle;
