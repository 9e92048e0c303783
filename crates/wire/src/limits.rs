//! How many requests the connector may have in flight: the component bounds itself by these,
//! and hosts size their worker pools by them.

/// 256: the most `max_concurrent_requests` may ask for, and so the most requests a host is
/// ever asked to perform at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// 32: requests in flight at once when the config does not say (`max_concurrent_requests`).
/// Graph limits calls by count and cost per hour, not by connection; 32 round trips of 0.3 to
/// 3 s keep a sync of tens of accounts close to its report jobs' time.
pub const DEFAULT_CONCURRENT_REQUESTS: usize = 32;
