//! The Batch API: `POST /` with `batch=<JSON array of ≤50 operations>` (graph-api.md §3).
//!
//! Each operation is served like a top-level request (same auth, rate limits and routing) and
//! answered in order as `{"code","headers":[{"name","value"}],"body":"<JSON string>"}`.
//! Batch-only faults are drawn per operation from the fault stream *before* the operation runs,
//! so a `null` or 960 entry never has side effects and re-sending it is always safe.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::log::RequestKind;
use crate::params::Params;
use crate::sim::Simulator;

/// Graph's maximum number of operations in one batch.
pub const MAX_BATCH: usize = 50;

impl Simulator {
    /// Serves the operations of a batch and returns the reply array.
    pub(crate) fn batch(&mut self, params: &Params, token: Option<&str>) -> Result<Value, ApiError> {
        let raw = params.get("batch").ok_or_else(|| ApiError::invalid_param("The parameter batch is required"))?;
        let ops: Value =
            serde_json::from_str(raw).map_err(|_| ApiError::invalid_param("batch parameter must be a JSON array"))?;
        let ops = ops.as_array().ok_or_else(|| ApiError::invalid_param("batch parameter must be a JSON array"))?;
        if ops.len() > MAX_BATCH {
            return Err(ApiError::batch_too_large());
        }
        let include_headers = !matches!(params.get("include_headers"), Some("false" | "0"));
        let token = token.map(str::to_string);
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let n = i as u64 + 1;
            self.counters.batch_operations += 1;
            self.counters.request(&RequestKind::BatchOp);
            let method = op.get("method").and_then(Value::as_str).unwrap_or("GET").to_ascii_uppercase();
            let rel = op.get("relative_url").and_then(Value::as_str).unwrap_or("");
            let url = if rel.starts_with('/') { rel.to_string() } else { format!("/{rel}") };
            let body = op.get("body").and_then(Value::as_str).unwrap_or("");
            let r = self.faults.next_f64();
            let f = &self.cfg.faults;
            if r < f.batch_null {
                self.counters.fault("batch_null");
                self.log_op(&method, url_path(&url), RequestKind::BatchOp, 0);
                out.push(Value::Null);
                continue;
            }
            if r < f.batch_null + f.batch_aborted_960 {
                self.counters.fault("batch_aborted_960");
                self.log_op(&method, url_path(&url), RequestKind::BatchOp, 500);
                let e = ApiError::batch_aborted();
                let mut entry = json!({"code": 500, "body": e.body(&self.trace_id(n)).to_string()});
                if include_headers {
                    entry["headers"] = json!([{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}]);
                }
                out.push(entry);
                continue;
            }
            if rel.is_empty() {
                let e = ApiError::invalid_param("relative_url is required for each batch operation");
                self.log_op(&method, String::from("/"), RequestKind::Unknown, 400);
                out.push(json!({"code": 400, "headers": [], "body": e.body(&self.trace_id(n)).to_string()}));
                continue;
            }
            let (served, path) = self.serve_op(&method, &url, body, token.as_deref(), n);
            self.log_op(&method, path, served.kind.clone(), served.status);
            let mut entry = json!({
                "code": served.status,
                "body": String::from_utf8_lossy(&served.body).into_owned(),
            });
            if include_headers {
                let mut hs = vec![json!({"name": "Content-Type", "value": "text/javascript; charset=UTF-8"})];
                for (k, v) in served.headers {
                    hs.push(json!({"name": k, "value": v}));
                }
                entry["headers"] = Value::Array(hs);
            }
            out.push(entry);
        }
        Ok(Value::Array(out))
    }
}

/// The path part of a relative URL, for the log.
fn url_path(url: &str) -> String {
    url.split('?').next().unwrap_or("/").to_string()
}
