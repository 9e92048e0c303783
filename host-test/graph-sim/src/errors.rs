//! Graph error envelopes (graph-api.md §6.1) and constructors for every error the simulator emits.
//!
//! Each constructor reproduces the documented code, subcode, HTTP status and message so that the
//! connector's classification is tested against the real vocabulary. `fbtrace_id` is filled in by
//! the simulator when the error is rendered, because it derives from the request sequence.

use serde_json::{Map, Value, json};

/// One Graph error, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status of the response.
    pub http: u16,
    /// Graph `code`.
    pub code: i64,
    /// Graph `error_subcode`, when the real API sends one.
    pub subcode: Option<i64>,
    /// Graph `type`.
    pub kind: &'static str,
    /// Graph `message`.
    pub message: String,
    /// `is_transient`, when the real API sends it.
    pub transient: Option<bool>,
    /// `error_user_title`.
    pub user_title: Option<String>,
    /// `error_user_msg`.
    pub user_msg: Option<String>,
    /// Whether this is a token problem (`WWW-Authenticate` says `invalid_token`).
    pub token: bool,
}

impl ApiError {
    /// A plain `OAuthException` with the given HTTP status, code and message.
    pub fn new(http: u16, code: i64, message: impl Into<String>) -> Self {
        ApiError {
            http,
            code,
            subcode: None,
            kind: "OAuthException",
            message: message.into(),
            transient: None,
            user_title: None,
            user_msg: None,
            token: false,
        }
    }

    /// Sets the subcode.
    pub fn sub(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// Sets `is_transient`.
    pub fn transient(mut self, t: bool) -> Self {
        self.transient = Some(t);
        self
    }

    /// Sets `error_user_title` and `error_user_msg`.
    pub fn user(mut self, title: &str, msg: &str) -> Self {
        self.user_title = Some(title.to_string());
        self.user_msg = Some(msg.to_string());
        self
    }

    /// Sets the Graph `type`.
    pub fn typed(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// The `{"error":{...}}` body.
    pub fn body(&self, fbtrace_id: &str) -> Value {
        let mut e = Map::new();
        e.insert("message".into(), json!(self.message));
        e.insert("type".into(), json!(self.kind));
        e.insert("code".into(), json!(self.code));
        if let Some(s) = self.subcode {
            e.insert("error_subcode".into(), json!(s));
        }
        if let Some(t) = self.transient {
            e.insert("is_transient".into(), json!(t));
        }
        if let Some(t) = &self.user_title {
            e.insert("error_user_title".into(), json!(t));
        }
        if let Some(m) = &self.user_msg {
            e.insert("error_user_msg".into(), json!(m));
        }
        e.insert("fbtrace_id".into(), json!(fbtrace_id));
        json!({ "error": Value::Object(e) })
    }

    /// The `WWW-Authenticate` header value Graph sends with errors.
    pub fn www_authenticate(&self) -> String {
        let what = if self.token { "invalid_token" } else { "invalid_request" };
        format!("OAuth \"Facebook Platform\" \"{what}\" \"{}\"", self.message.replace('"', "'"))
    }

    // ----- constructors, one per documented error -----

    /// `(#100) Tried accessing nonexisting field (x) on node type (T)`.
    pub fn nonexisting_field(field: &str, node_type: &str) -> Self {
        ApiError::new(
            400,
            100,
            format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"),
        )
    }

    /// Meta's refusal of removed fields, in `form`; `version` as the request named it.
    pub fn removed_fields(fields: &[&str], node_type: &str, form: crate::RefusalForm, version: &str) -> Self {
        let (verb, list) = (if fields.len() == 1 { "is" } else { "are" }, fields.join(", "));
        let message = match form {
            crate::RefusalForm::Nonexisting => {
                format!("(#100) Tried accessing nonexisting field ({}) on node type ({node_type})", fields[0])
            }
            crate::RefusalForm::NotValidAfterVersion => {
                format!("(#100) {list} {verb} not valid for fields param after {}", version.to_ascii_uppercase())
            }
            crate::RefusalForm::NotValidPleaseCheck => format!(
                "(#100) {list} {verb} not valid for fields param. please check https://developers.facebook.com/docs/marketing-api/reference/ for all valid values"
            ),
        };
        ApiError::new(400, 100, message)
    }

    /// Meta's refusal of a removed breakdown or action breakdown (`param`).
    pub fn removed_param(names: &[&str], param: &str) -> Self {
        let verb = if names.len() == 1 { "is" } else { "are" };
        ApiError::invalid_param(format!(
            "{} {verb} not valid for {param} param. please check https://developers.facebook.com/docs/marketing-api/insights/breakdowns/ for all valid values",
            names.join(", ")
        ))
    }

    /// `(#100)` invalid parameter with a custom message.
    /// `(#200)`: the account's owner took the token's access away (HTTP 403).
    pub fn account_permission() -> Self {
        ApiError::new(403, 200, "(#200) Ad account owner has NOT grant ads_management or ads_read permission")
    }

    pub fn invalid_param(msg: impl Into<String>) -> Self {
        ApiError::new(400, 100, format!("(#100) {}", msg.into()))
    }

    /// Object not found / unsupported request (100/33).
    pub fn unsupported_get(id: &str) -> Self {
        ApiError::new(
            400,
            100,
            format!(
                "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
        )
        .sub(33)
        .typed("GraphMethodException")
    }

    /// Unsupported POST (100/33).
    pub fn unsupported_post(path: &str) -> Self {
        ApiError::new(
            400,
            100,
            format!("Unsupported post request. Object with ID '{path}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
        )
        .sub(33)
        .typed("GraphMethodException")
    }

    /// Unknown path component (2500).
    pub fn unknown_path(part: &str) -> Self {
        ApiError::new(400, 2500, format!("Unknown path components: /{part}"))
    }

    /// Filtering on an unsupported field or operator (100/1487390).
    pub fn filtering_unsupported(field: &str, op: &str) -> Self {
        ApiError::invalid_param(format!(
            "Filtering field '{field}' with operation '{}' is not supported",
            op.to_ascii_lowercase()
        ))
        .sub(1_487_390)
    }

    /// Missing access token.
    pub fn token_missing() -> Self {
        let mut e = ApiError::new(400, 190, "An access token is required to request this resource.");
        e.token = true;
        e
    }

    /// Unparseable token (HTTP 401).
    pub fn token_garbage() -> Self {
        let mut e = ApiError::new(401, 190, "Invalid OAuth access token - Cannot parse access token");
        e.token = true;
        e
    }

    /// Well-formed but wrong token (190/460).
    pub fn token_invalid() -> Self {
        let mut e = ApiError::new(
            400,
            190,
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
        )
        .sub(460);
        e.token = true;
        e
    }

    /// Expired token (190/463).
    pub fn token_expired(now_human: &str) -> Self {
        let mut e = ApiError::new(
            400,
            190,
            format!("Error validating access token: Session has expired on Monday, 15-Jun-26 03:00:00 PDT. The current time is {now_human}."),
        )
        .sub(463);
        e.token = true;
        e
    }

    /// Deprecated version (2635).
    pub fn deprecated_version(latest: &str) -> Self {
        ApiError::new(
            400,
            2635,
            format!(
                "(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: {latest}."
            ),
        )
    }

    /// Stale or garbled cursor (2642).
    pub fn invalid_cursor() -> Self {
        ApiError::new(400, 2642, "(#2642) Invalid cursors values")
    }

    /// Page too large: HTTP 500 code 1.
    pub fn reduce_data() -> Self {
        ApiError::new(500, 1, "Please reduce the amount of data you're asking for, then retry your request")
    }

    /// Sync insights too many rows (100/1487534).
    pub fn too_many_rows() -> Self {
        ApiError::new(400, 100, "Invalid parameter")
            .sub(1_487_534)
            .user(
                "Too Much Data Requested",
                "The report data you're trying to fetch has too many rows. Please narrow the date range, reduce the number of ids or fields, or query a lower level.",
            )
    }

    /// Report results read before completion (2601/1815107).
    pub fn report_not_ready() -> Self {
        ApiError::new(400, 2601, "Error accessing adreport job.")
            .sub(1_815_107)
            .transient(true)
            .user(
                "Loading Async Ads Report Failed",
                "Sorry, the report cannot be loaded successfully. Please check if your job status is completed instead of failed or running before fetching the data.",
            )
    }

    /// Start date beyond 37 months (3018).
    pub fn beyond_37_months() -> Self {
        ApiError::new(
            400,
            3018,
            "(#3018) The start date of the time range cannot be beyond 37 months from the current date",
        )
    }

    /// Invalid breakdown combination (2/1504041).
    pub fn invalid_breakdowns(detail: &str) -> Self {
        ApiError::new(400, 2, format!("(#2) Invalid Breakdowns: {detail}")).sub(1_504_041).transient(false).user(
            "Invalid Breakdowns",
            "The breakdowns requested cannot be combined. Please check the breakdown combinations supported.",
        )
    }

    /// Batch with more than 50 operations.
    pub fn batch_too_large() -> Self {
        ApiError::new(400, 100, "Too many requests in batch message. Maximum batch size is 50")
            .typed("GraphBatchException")
    }

    /// Batch operation aborted (960), delivered inside the batch with code 500.
    pub fn batch_aborted() -> Self {
        ApiError::new(
            500,
            960,
            "Request aborted. This could happen if a dependent request failed or the entire request timed out.",
        )
        .typed("FacebookApiException")
    }
}
