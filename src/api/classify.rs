//! Sorts every Graph answer into what to do about it (graph-api.md section 6), once: no code
//! outside this module compares Graph's codes or reads its messages (a failed report job's
//! subcode included: [`is_report_too_large`]).
//!
//! Meta says to branch on codes, not messages. The only message checks are the ones Meta gives
//! no code for: "reduce the amount of data" (code 1, shared with other errors) and the names of
//! refused fields (code 100, shared with every invalid parameter).

use crate::error::ConnectorError;
use crate::http::FetchError;
use serde_json::Value;

/// The `error` object of a Graph error body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphError {
    pub message: String,
    pub kind: String,
    pub code: i64,
    pub subcode: Option<i64>,
    pub is_transient: bool,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    /// Parses `{"error": {...}}`; `None` if the body is not a Graph error.
    pub fn parse(body: &[u8]) -> Option<GraphError> {
        let v: Value = serde_json::from_slice(body).ok()?;
        GraphError::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Option<GraphError> {
        let e = v.get("error")?;
        let code = e.get("code").and_then(as_i64)?;
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        Some(GraphError {
            message: text("message").unwrap_or_default(),
            kind: text("type").unwrap_or_default(),
            code,
            subcode: e.get("error_subcode").and_then(as_i64),
            is_transient: e.get("is_transient").and_then(Value::as_bool).unwrap_or(false),
            user_title: text("error_user_title"),
            user_msg: text("error_user_msg"),
            fbtrace_id: text("fbtrace_id"),
        })
    }

    /// A one-line summary for internal messages.
    pub fn summary(&self) -> String {
        let mut s = format!("graph error {}", self.code);
        if let Some(sc) = self.subcode {
            s.push_str(&format!("/{sc}"));
        }
        s.push_str(&format!(": {}", self.message));
        if let Some(t) = &self.user_title {
            s.push_str(&format!(" ({t}"));
            if let Some(m) = &self.user_msg {
                s.push_str(&format!(": {m}"));
            }
            s.push(')');
        }
        if let Some(f) = &self.fbtrace_id {
            s.push_str(&format!(" [fbtrace_id {f}]"));
        }
        s
    }

    fn is_reduce_data(&self) -> bool {
        self.message.to_ascii_lowercase().contains("reduce the amount of data")
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Codes that mean "wait for quota" (graph-api.md section 6.2, class W).
const RATE_LIMIT_CODES: &[i64] =
    &[4, 17, 32, 341, 368, 613, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80009, 80014];

/// Graph's (code, subcode) for a creative whose `object_story_spec` it cannot render.
const STORY_SPEC_ERRORS: [(i64, i64); 2] = [(100, 2_446_211), (100, 1_443_048)];

/// Why a call failed for good: the causes callers branch on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFailure {
    /// The paging cursor went stale: restart the listing.
    StaleCursor,
    /// A report was read before it was ready: poll its status again.
    ReportNotReady,
    /// Graph asks for less data and the request has no page size left to halve.
    ReduceData,
    /// The access token is invalid, expired or revoked: no call of the sync can succeed.
    Token,
    /// The token lacks a permission for this object or field.
    PermissionDenied,
    /// Graph does not know (or no longer serves) these fields of the request, by name.
    UnknownFields(Vec<String>),
    /// Graph refuses these breakdowns of an insights request, by name (none when it names
    /// only their position).
    RefusedBreakdowns(Vec<String>),
    /// Graph refuses these action breakdowns of an insights request, by name.
    RefusedActionBreakdowns(Vec<String>),
    /// The API version the connector asks for is no longer served: no call can succeed.
    Version,
    /// The answer passed the response-size cap even at the smallest page size.
    TooLarge,
    /// Graph cannot render a creative's `object_story_spec`.
    StorySpec,
    /// Any other invalid parameter or object (code 100).
    InvalidParameter,
    /// A failure that may pass kept happening until the retries ran out.
    Exhausted,
    /// The answer was a redirect, which the connector never follows.
    Redirect,
    /// The answer's body is not valid JSON, the same way each time it was asked for.
    Malformed,
    /// Anything else that retrying does not fix.
    Other,
}

/// A failure retrying cannot fix: its cause, and the error to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub cause: CallFailure,
    pub error: ConnectorError,
}

/// What to do with an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Try again after a backoff.
    Transient(String),
    /// A rate limit: wait and try again. A quota block names its own wait and does not use
    /// the retry budget.
    RateLimited {
        quota_block: bool,
    },
    /// The answer is too large: retry with half the page size, if there is one to halve.
    ReduceData,
    /// The paging cursor is no longer valid: restart the listing.
    StaleCursor,
    /// A report was read before it was ready: poll its status again.
    ReportNotReady,
    /// Retrying will not help.
    Permanent(Refusal),
}

/// Classifies an HTTP answer.
pub fn classify_response(status: u16, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Success;
    }
    match GraphError::parse(body) {
        Some(g) => classify_graph_error(status, &g),
        None if status >= 500 || status == 429 || status == 408 => {
            Verdict::Transient(format!("http {status} without a graph error body"))
        }
        None => Verdict::Permanent(Refusal {
            cause: CallFailure::Other,
            error: ConnectorError::misbehaving(
                format!(
                    "the graph api answered http {status} with a body that is not a graph error; try again later and report it if it persists"
                ),
                format!("http {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])),
            ),
        }),
    }
}

/// Classifies a Graph error, whatever carried it (a response or a batch element).
pub fn classify_graph_error(status: u16, g: &GraphError) -> Verdict {
    let detail = g.summary();
    let code = g.code;
    let sub = g.subcode;
    if code == 1 && g.is_reduce_data() {
        return Verdict::ReduceData;
    }
    if code == 2642 {
        return Verdict::StaleCursor;
    }
    if code == 2601 && sub == Some(1815107) {
        return Verdict::ReportNotReady;
    }
    if code == 2 && matches!(sub, Some(1504041) | Some(1504042)) {
        let what = if sub == Some(1504041) { "breakdowns" } else { "custom metrics" };
        return refused(
            CallFailure::InvalidParameter,
            ConnectorError::rejected(
                format!(
                    "meta rejected the combination of {what} requested; change the breakdowns or fields of the insights stream"
                ),
                detail,
            ),
        );
    }
    if RATE_LIMIT_CODES.contains(&code) {
        // An ad account over its quota, or the insights backend over its load: both clear only
        // with time, so they wait as Graph advises instead of spending the short backoff ladder.
        let quota_block =
            (code == 17 && sub == Some(2446079)) || (code == 4 && matches!(sub, Some(1504022) | Some(1504039)));
        return Verdict::RateLimited { quota_block };
    }
    // Code 1 is "an unknown error", usually passing; but on a 400 with a subcode, an explicit
    // `is_transient: false` and Meta's own words for the user, it names a condition that
    // retrying cannot change (1/2853001 "profile is not linked to delegate page" on advideos:
    // the recorded corpus; it was retried five times, then reported as transient).
    if code == 1
        && status == 400
        && !g.is_transient
        && sub.is_some_and(|s| s != 99)
        && let Some(title) = &g.user_title
    {
        let words = match &g.user_msg {
            Some(m) => format!("{title}: {m}"),
            None => title.clone(),
        };
        return refused(
            CallFailure::Other,
            ConnectorError::rejected(
                format!("meta refused the request ({words}); check the account's setup or the token's access to it"),
                detail,
            ),
        );
    }
    if g.is_transient || code == 1 || code == 2 || code == 104 || code == 960 || sub == Some(99) {
        return Verdict::Transient(detail);
    }
    if status == 400 && g.message.contains("Cannot include") && g.message.contains("in summary param") {
        return Verdict::Transient(detail);
    }
    if let Some(r) = permanent(g) {
        return Verdict::Permanent(r);
    }
    if status >= 500 {
        return Verdict::Transient(detail);
    }
    let cause = match refused_names(&g.message) {
        Some((Param::Fields, names)) if code == 100 => CallFailure::UnknownFields(names),
        Some((Param::Breakdowns, names)) if code == 100 => CallFailure::RefusedBreakdowns(names),
        Some((Param::ActionBreakdowns, names)) if code == 100 => CallFailure::RefusedActionBreakdowns(names),
        _ if code == 100 => CallFailure::InvalidParameter,
        _ => CallFailure::Other,
    };
    refused(
        cause,
        ConnectorError::misbehaving(
            format!(
                "the graph api refused a request with error {}{}: {}{}",
                code,
                sub.map(|s| format!(" (subcode {s})")).unwrap_or_default(),
                g.message,
                g.user_msg.as_ref().map(|m| format!(". facebook says: {m}")).unwrap_or_default()
            ),
            detail,
        ),
    )
}

fn refused(cause: CallFailure, error: ConnectorError) -> Verdict {
    Verdict::Permanent(Refusal { cause, error })
}

/// Errors the user must fix (or that name what Graph refused), in plain words.
fn permanent(g: &GraphError) -> Option<Refusal> {
    let detail = g.summary();
    let rejected = |cause: CallFailure, msg: &str| Refusal { cause, error: ConnectorError::rejected(msg, &detail) };
    let r = match (g.code, g.subcode) {
        (190, Some(463)) | (190, Some(467)) => rejected(
            CallFailure::Token,
            "the access token has expired or was invalidated; generate a new token and update credentials.access_token",
        ),
        (190, Some(460)) => {
            rejected(CallFailure::Token, "the access token was invalidated by a password change; generate a new token")
        }
        (190, Some(458)) => rejected(
            CallFailure::Token,
            "the app behind the access token is no longer authorised; re-authorise it and generate a new token",
        ),
        (190, _) | (102, _) => rejected(
            CallFailure::Token,
            "the access token is not valid; check credentials.access_token (a whole token, no spaces) or generate a new one",
        ),
        (10, _) | (200..=299, _) => rejected(
            CallFailure::PermissionDenied,
            "the access token lacks a permission this read needs; grant ads_read (and business_management for ad account details) to the token's user or system user",
        ),
        (100, Some(33)) => rejected(
            CallFailure::InvalidParameter,
            "the object does not exist or the token cannot see it; check account_ids and that the token's user has access to each ad account",
        ),
        (100, Some(3191001)) => rejected(
            CallFailure::PermissionDenied,
            "the token is not allowed to read insights of this account; grant ads_read on it",
        ),
        (100, Some(1487534)) => rejected(
            CallFailure::InvalidParameter,
            "meta refused the report as too large even after splitting; shorten the date range or remove breakdowns",
        ),
        (code, Some(sub)) if STORY_SPEC_ERRORS.contains(&(code, sub)) => Refusal {
            cause: CallFailure::StorySpec,
            error: ConnectorError::misbehaving("meta could not render the creative's object_story_spec", &detail),
        },
        (2635, _) => rejected(
            CallFailure::Version,
            "meta no longer serves this graph api version; remove api_version from the config (the connector's default is current) or set a current version",
        ),
        (3018, _) => rejected(
            CallFailure::Other,
            "the start date is more than 37 months ago, which meta no longer serves; move start_date forward",
        ),
        (2500, _) => Refusal {
            cause: CallFailure::Other,
            error: ConnectorError::contract(
                "meta could not parse a request (error 2500); this is a connector bug, please report it",
                &detail,
            ),
        },
        _ if g.message.contains("Missing permissions") => rejected(
            CallFailure::PermissionDenied,
            "missing permissions; check the ad account id and the token's permissions on it",
        ),
        _ => return None,
    };
    Some(r)
}

/// Which request parameter a refusal names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Fields,
    Breakdowns,
    ActionBreakdowns,
}

/// The names a code-100 message says Graph refuses, and in which parameter. Meta's forms:
///
/// - `(#100) Tried accessing nonexisting field (cost_per_conversion_lead) on node type (AdsInsights)`;
/// - `(#100) age_targeting, gender_targeting, labels are not valid for fields param after V19.0`;
/// - `(#100) store_visit_actions, cost_per_store_visit_action are not valid for fields param. please check ...`;
/// - `(#100) placement is not valid for breakdowns param. please check ...` (and `action_breakdowns`);
/// - `(#100) breakdowns[0] must be one of the following values: age, country, ...` (names only
///   the position: no names).
///
/// `None` when the message is none of these.
pub fn refused_names(message: &str) -> Option<(Param, Vec<String>)> {
    const NONEXISTING: &str = "nonexisting field (";
    if let Some(at) = message.find(NONEXISTING) {
        let start = at + NONEXISTING.len();
        let end = start + message[start..].find(')')?;
        return names(&message[start..end]).map(|n| (Param::Fields, n));
    }
    for (param, marker) in [
        (Param::ActionBreakdowns, " action_breakdowns param"),
        (Param::Breakdowns, " breakdowns param"),
        (Param::Fields, " fields param"),
    ] {
        let Some(at) = message.find(marker) else { continue };
        let before = &message[..at];
        let list = before.strip_suffix(" are not valid for").or_else(|| before.strip_suffix(" is not valid for"))?;
        // The list follows Graph's `(#100) ` prefix.
        let list = list.rsplit_once(") ").map_or(list, |(_, l)| l);
        return names(list).map(|n| (param, n));
    }
    for (param, marker) in [(Param::ActionBreakdowns, "action_breakdowns["), (Param::Breakdowns, "breakdowns[")] {
        if message.contains(marker) && message.contains("must be one of the following values") {
            return Some((param, Vec::new()));
        }
    }
    None
}

/// A comma list of names (`a, b and c` too), each like an API identifier; `None` if any is not.
fn names(list: &str) -> Option<Vec<String>> {
    let names: Vec<String> = list
        .split(',')
        .flat_map(|part| part.split(" and "))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let identifier = |s: &String| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':'));
    (!names.is_empty() && names.iter().all(identifier)).then_some(names)
}

/// Classifies a transport failure.
pub fn classify_fetch_error(e: &FetchError) -> Verdict {
    if e.is_retryable() {
        Verdict::Transient(e.to_string())
    } else {
        refused(
            CallFailure::Other,
            ConnectorError::rejected(
                format!("{e}; allow the destination in the host's sandbox or check --graph-url"),
                e.to_string(),
            ),
        )
    }
}

/// Whether a failed report job's subcode is Graph's "Report Too Large" (-3/1504045), which no
/// retry of the same report shape gets past.
pub fn is_report_too_large(subcode: Option<i64>) -> bool {
    subcode == Some(1504045)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureType;
    use serde_json::json;

    fn err(code: i64, sub: Option<i64>, msg: &str) -> GraphError {
        GraphError { code, subcode: sub, message: msg.into(), ..Default::default() }
    }

    fn refusal(v: Verdict) -> Refusal {
        match v {
            Verdict::Permanent(r) => r,
            other => panic!("not permanent: {other:?}"),
        }
    }

    #[test]
    fn expired_token_is_a_config_error_in_plain_words() {
        let r = refusal(classify_graph_error(400, &err(190, Some(463), "Error validating access token")));
        assert_eq!(r.cause, CallFailure::Token);
        assert_eq!(r.error.failure_type(), FailureType::Config);
        assert!(r.error.message().contains("expired"));
    }

    #[test]
    fn rate_limit_codes_wait_and_quota_block_is_told_apart() {
        assert_eq!(
            classify_graph_error(400, &err(80000, Some(2446079), "x")),
            Verdict::RateLimited { quota_block: false }
        );
        assert_eq!(classify_graph_error(400, &err(17, Some(2446079), "x")), Verdict::RateLimited { quota_block: true });
        assert_eq!(
            classify_graph_error(400, &err(613, Some(1487742), "x")),
            Verdict::RateLimited { quota_block: false }
        );
    }

    #[test]
    fn reduce_data_and_unknown_errors_are_told_apart() {
        assert_eq!(
            classify_graph_error(
                500,
                &err(1, None, "Please reduce the amount of data you're asking for, then retry your request")
            ),
            Verdict::ReduceData
        );
        assert!(matches!(
            classify_graph_error(500, &err(1, Some(99), "An unknown error occurred")),
            Verdict::Transient(_)
        ));
    }

    #[test]
    fn report_not_ready_and_stale_cursor_have_their_own_verdicts() {
        assert_eq!(
            classify_graph_error(400, &err(2601, Some(1815107), "Error accessing adreport job.")),
            Verdict::ReportNotReady
        );
        assert_eq!(classify_graph_error(400, &err(2642, None, "(#2642) Invalid cursors values")), Verdict::StaleCursor);
    }

    #[test]
    fn bare_5xx_is_transient_and_odd_4xx_is_a_system_error() {
        assert!(matches!(classify_response(503, b"Service Unavailable"), Verdict::Transient(_)));
        let r = refusal(classify_response(404, b"<html>"));
        assert_eq!(r.error.failure_type(), FailureType::System);
    }

    #[test]
    fn unknown_graph_errors_carry_facebooks_own_words() {
        let body = json!({"error": {"message": "(#999) Odd", "type": "OAuthException", "code": 999, "error_user_msg": "Try X"}}).to_string();
        let r = refusal(classify_response(400, body.as_bytes()));
        assert_eq!(r.error.failure_type(), FailureType::System);
        assert!(r.error.message().contains("Try X"));
    }

    #[test]
    fn causes_callers_branch_on_are_named_by_the_classifier() {
        let cause = |code, sub, msg: &str| refusal(classify_graph_error(400, &err(code, sub, msg))).cause;
        assert_eq!(cause(200, None, "(#200) Requires business_management permission"), CallFailure::PermissionDenied);
        assert_eq!(cause(10, None, "(#10) Not allowed"), CallFailure::PermissionDenied);
        assert_eq!(cause(100, Some(2_446_211), "story spec"), CallFailure::StorySpec);
        assert_eq!(cause(100, Some(33), "Unsupported get request"), CallFailure::InvalidParameter);
        assert_eq!(
            cause(
                100,
                None,
                "(#100) Tried accessing nonexisting field (cost_per_conversion_lead) on node type (AdsInsights)"
            ),
            CallFailure::UnknownFields(vec!["cost_per_conversion_lead".into()])
        );
        assert_eq!(cause(100, None, "(#100) Invalid parameter"), CallFailure::InvalidParameter);
        assert_eq!(
            cause(
                100,
                None,
                "(#100) age_targeting, gender_targeting, labels are not valid for fields param after V19.0"
            ),
            CallFailure::UnknownFields(vec!["age_targeting".into(), "gender_targeting".into(), "labels".into()])
        );
        assert_eq!(
            cause(
                100,
                None,
                "(#100) social_impressions is not valid for fields param. please check https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all valid values"
            ),
            CallFailure::UnknownFields(vec!["social_impressions".into()])
        );
        assert_eq!(
            cause(
                100,
                None,
                "(#100) placement is not valid for breakdowns param. please check https://developers.facebook.com/docs/marketing-api/insights/breakdowns/ for all valid values"
            ),
            CallFailure::RefusedBreakdowns(vec!["placement".into()])
        );
        assert_eq!(
            cause(100, None, "(#100) action_device is not valid for action_breakdowns param. please check the docs"),
            CallFailure::RefusedActionBreakdowns(vec!["action_device".into()])
        );
        assert_eq!(
            cause(100, None, "(#100) breakdowns[0] must be one of the following values: age, country, gender"),
            CallFailure::RefusedBreakdowns(vec![])
        );
        assert_eq!(cause(100, None, "(#100) Invalid parameter"), CallFailure::InvalidParameter);
        assert_eq!(
            cause(2635, None, "(#2635) You are calling a deprecated version of the Ads API."),
            CallFailure::Version
        );
        let r = refusal(classify_graph_error(400, &err(2500, None, "Error parsing graph query")));
        assert_eq!(r.error.failure_type(), FailureType::System);
    }

    /// Regression (recorded corpus, airbyte `error_1_2853001_profile_not_linked_400.json`): a
    /// code-1 error Meta marks permanent and explains was retried as transient.
    #[test]
    fn a_code_1_error_meta_marks_permanent_and_explains_is_a_config_error_not_retried() {
        let g = GraphError {
            code: 1,
            subcode: Some(2853001),
            is_transient: false,
            message: "An unknown error occurred".into(),
            user_title: Some("profile is not linked to delegate page".into()),
            user_msg: Some("profile should always be linked to delegate page".into()),
            ..Default::default()
        };
        let r = refusal(classify_graph_error(400, &g));
        assert_eq!(r.error.failure_type(), FailureType::Config);
        assert!(r.error.message().contains("profile is not linked to delegate page"), "{}", r.error.message());
        // The same code on a 500, or marked transient, or without Meta's words, is retried.
        assert!(matches!(classify_graph_error(500, &g), Verdict::Transient(_)));
        assert!(matches!(
            classify_graph_error(400, &GraphError { is_transient: true, ..g.clone() }),
            Verdict::Transient(_)
        ));
        assert!(matches!(classify_graph_error(400, &GraphError { user_title: None, ..g }), Verdict::Transient(_)));
    }

    #[test]
    fn sandbox_denials_are_not_retried() {
        assert!(matches!(classify_fetch_error(&FetchError::DeniedByHost("x".into())), Verdict::Permanent(_)));
        assert!(matches!(classify_fetch_error(&FetchError::ConnectionReset), Verdict::Transient(_)));
    }
}
