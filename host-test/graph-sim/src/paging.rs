//! Cursor paging: opaque `after` cursors, `paging.next` URLs and injected empty middle pages.
//!
//! A cursor is base64 of `salt:offset:flag`. The salt is derived from the seed and the listing
//! (path), so a cursor from another listing, a garbled one or one pointing past the end is
//! rejected with `(#2642) Invalid cursors values`. The flag marks "the empty page before this
//! offset was already served", which lets [`crate::Faults::empty_middle_pages`] insert an empty page
//! that still carries `next` without ever losing or repeating a row.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::params::Params;
use crate::rng::{hash_str, mix};

/// Graph's default page size on every edge.
pub const DEFAULT_LIMIT: usize = 25;

/// Host used in absolute `paging.next` URLs.
pub const GRAPH_HOST: &str = sfm_wire::origin::GRAPH_ORIGIN;

/// What a page needs to know about its listing.
#[derive(Debug, Clone)]
pub struct Listing<'a> {
    /// Seed of the simulator.
    pub seed: u64,
    /// Version echoed in `next`.
    pub version: &'a str,
    /// Path without version, e.g. `act_1/campaigns`.
    pub path: &'a str,
    /// The request's parameters (echoed in `next`).
    pub params: &'a Params,
    /// Serve an empty page before some middle pages.
    pub empty_middle_pages: bool,
}

impl Listing<'_> {
    fn salt(&self) -> u64 {
        mix(self.seed, &[hash_str(self.path)])
    }

    fn cursor(&self, offset: usize, flag: u8) -> String {
        URL_SAFE_NO_PAD.encode(format!("{:016x}:{offset}:{flag}", self.salt()))
    }

    /// Decodes an `after` cursor into (offset, flag).
    fn decode(&self, cursor: &str, total: usize) -> Result<(usize, u8), ApiError> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).map_err(|_| ApiError::invalid_cursor())?;
        let text = String::from_utf8(bytes).map_err(|_| ApiError::invalid_cursor())?;
        let mut parts = text.split(':');
        let salt = parts.next().and_then(|s| u64::from_str_radix(s, 16).ok());
        let offset = parts.next().and_then(|s| s.parse::<usize>().ok());
        let flag = parts.next().and_then(|s| s.parse::<u8>().ok());
        match (salt, offset, flag) {
            (Some(s), Some(o), Some(f)) if s == self.salt() && o <= total => Ok((o, f)),
            _ => Err(ApiError::invalid_cursor()),
        }
    }

    /// The requested page size.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.params.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(l) => match l.trim().parse::<usize>() {
                Ok(0) => Ok(DEFAULT_LIMIT),
                Ok(n) => Ok(n),
                Err(_) => Err(ApiError::invalid_param("param limit must be a non-negative integer")),
            },
        }
    }

    fn next_url(&self, after: &str) -> String {
        let mut p = self.params.without("after");
        if !p.has("limit") {
            p.set("limit", &DEFAULT_LIMIT.to_string());
        }
        p.pairs.push(("after".into(), after.to_string()));
        format!("{GRAPH_HOST}/{}/{}?{}", self.version, self.path, p.encode())
    }

    fn previous_url(&self, before: &str) -> String {
        let mut p = self.params.without("after");
        if !p.has("limit") {
            p.set("limit", &DEFAULT_LIMIT.to_string());
        }
        p.pairs.push(("before".into(), before.to_string()));
        format!("{GRAPH_HOST}/{}/{}?{}", self.version, self.path, p.encode())
    }

    /// Builds one page over `total` items, rendering only the ones on the page.
    pub fn page(&self, total: usize, mut render: impl FnMut(usize) -> Value) -> Result<Value, ApiError> {
        let limit = self.limit()?;
        let (offset, flag) = match self.params.get("after") {
            Some(c) if !c.is_empty() => self.decode(c, total)?,
            _ => (0, 0),
        };
        let mut body = Map::new();
        if self.empty_middle_pages
            && flag == 0
            && offset > 0
            && offset < total
            && mix(self.salt(), &[offset as u64]).is_multiple_of(2)
        {
            let c = self.cursor(offset, 1);
            body.insert("data".into(), json!([]));
            body.insert("paging".into(), json!({"cursors": {"before": c, "after": c}, "next": self.next_url(&c)}));
            return Ok(self.with_summary(body, total));
        }
        let end = (offset + limit).min(total);
        let data: Vec<Value> = (offset..end).map(&mut render).collect();
        let empty = data.is_empty();
        body.insert("data".into(), Value::Array(data));
        if !(empty && offset == 0) {
            let mut paging = Map::new();
            paging.insert("cursors".into(), json!({"before": self.cursor(offset, 0), "after": self.cursor(end, 0)}));
            if end < total {
                paging.insert("next".into(), json!(self.next_url(&self.cursor(end, 0))));
            }
            // Graph links back from every page but the first: the last page has `cursors` and
            // `previous`, and no `next` (the recorded corpus, 22 keboola pages).
            if offset > 0 {
                paging.insert("previous".into(), json!(self.previous_url(&self.cursor(offset, 0))));
            }
            body.insert("paging".into(), Value::Object(paging));
        }
        Ok(self.with_summary(body, total))
    }

    fn with_summary(&self, mut body: Map<String, Value>, total: usize) -> Value {
        if self.params.flag("summary") {
            body.insert("summary".into(), json!({"total_count": total}));
        }
        Value::Object(body)
    }
}
