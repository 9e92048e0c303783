//! Sends many small GETs as Graph batch requests: at most 50 operations per call, one result
//! per operation, and bounded re-sends of operations that came back `null`, aborted (960),
//! throttled or transiently failed. No operation is dropped silently: each ends in a result.

use super::Calls;
use super::classify::{GraphError, Refusal, Verdict, classify_graph_error};
use super::client::{Call, CallError, CallFailure, CallId, CallOutcome, account_in_url};
use crate::error::ConnectorError;
use crate::http::{Request, encode_query};
use crate::model::AccountId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};

/// 50: the Graph API's batch limit.
pub const MAX_BATCH_OPS: usize = 50;
/// 5: rounds an operation may be re-sent after a `null`, an abort or a transient error.
pub const MAX_OP_ROUNDS: u32 = 5;

#[derive(Clone, Debug)]
struct Op {
    key: u64,
    relative_url: String,
    rounds: u32,
    /// The ad account whose quota the operation uses, if known.
    account: Option<AccountId>,
    /// How its last body failed to parse, if it did (the same failure twice ends it).
    malformed: Option<String>,
}

/// The batch sender.
#[derive(Debug)]
pub struct BatchSender {
    url: String,
    pending: VecDeque<Op>,
    in_flight: BTreeMap<CallId, Vec<Op>>,
    results: VecDeque<(u64, Result<Value, CallError>)>,
    /// Whether its calls go before calls that are not urgent.
    urgent: bool,
    /// Operations per call: [`MAX_BATCH_OPS`], halved each time a batch's answer passes the
    /// response-size cap (down to one, whose failure is that operation's alone).
    ops_per_call: usize,
    pub batches_sent: u64,
}

impl BatchSender {
    /// `url` is the versioned Graph root (`https://graph.facebook.com/v25.0/`). The client adds
    /// the token to each batch's form body.
    pub fn new(url: String) -> Self {
        BatchSender {
            url,
            pending: VecDeque::new(),
            in_flight: BTreeMap::new(),
            results: VecDeque::new(),
            urgent: false,
            ops_per_call: MAX_BATCH_OPS,
            batches_sent: 0,
        }
    }

    /// The same sender, whose calls go before calls that are not urgent (job status polls).
    pub fn urgent(mut self) -> Self {
        self.urgent = true;
        self
    }

    /// Queues a GET of `relative_url` (e.g. `123/?fields=id`); its result comes back under `key`.
    pub fn push(&mut self, key: u64, relative_url: String) {
        let account = account_in_url(&relative_url).map(AccountId::new);
        self.pending.push_back(Op { key, relative_url, rounds: 0, account, malformed: None });
    }

    /// As [`BatchSender::push`], for an operation that uses `account`'s quota.
    pub fn push_for(&mut self, key: u64, relative_url: String, account: &str) {
        self.pending.push_back(Op {
            key,
            relative_url,
            rounds: 0,
            account: Some(AccountId::new(account)),
            malformed: None,
        });
    }

    /// Submits every queued operation, 50 to a call; returns the calls made, for the owner to
    /// route their outcomes back here.
    pub fn flush(&mut self, api: &mut impl Calls) -> Vec<CallId> {
        let mut calls = Vec::new();
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.ops_per_call);
            let ops: Vec<Op> = self.pending.drain(..n).collect();
            let batch: Vec<Value> =
                ops.iter().map(|o| json!({"method": "GET", "relative_url": o.relative_url})).collect();
            let batch = Value::Array(batch).to_string();
            let body = encode_query(&[("batch", batch.as_str()), ("include_headers", "true")]);
            let mut request = Request::post_form(self.url.clone(), &[]);
            request.body = Some(body.into_bytes());
            let mut call = Call::batch(request);
            // A batch of one account's operations is that account's call.
            call.account = match ops.split_first() {
                Some((first, rest)) if rest.iter().all(|o| o.account == first.account) => first.account.clone(),
                _ => None,
            };
            call.urgent = self.urgent;
            let call = api.submit(call);
            self.batches_sent += 1;
            self.in_flight.insert(call, ops);
            calls.push(call);
        }
        calls
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty() && self.results.is_empty()
    }

    /// Takes the outcome of one batch call; re-queues what must be re-sent (call `flush`). A call
    /// this sender did not make is a contract error.
    pub fn on_outcome(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        api: &mut impl Calls,
    ) -> Result<(), ConnectorError> {
        let Some(ops) = self.in_flight.remove(&call) else {
            return Err(ConnectorError::contract(
                "a batch answer arrived for a call the batch sender did not make; this is a bug, please report it",
                format!("call {}", call.0),
            ));
        };
        let reply = match outcome {
            Ok(r) => r,
            Err(e) if e.failure == CallFailure::TooLarge && ops.len() > 1 => {
                // Too much for one answer: the same operations again, half as many to a call.
                self.ops_per_call = (ops.len() / 2).max(1);
                for op in ops.into_iter().rev() {
                    self.pending.push_front(op);
                }
                return Ok(());
            }
            Err(e) => {
                for op in ops {
                    self.results.push_back((op.key, Err(e.clone())));
                }
                return Ok(());
            }
        };
        let elements = match reply.json {
            Value::Array(a) if a.len() == ops.len() => a,
            other => {
                let e = ConnectorError::misbehaving(
                    "the graph api answered a batch with the wrong number of results; try again later",
                    format!("expected {} results, got {}", ops.len(), other.as_array().map_or(0, Vec::len)),
                );
                for op in ops {
                    self.fail(op.key, CallFailure::Other, e.clone(), None);
                }
                return Ok(());
            }
        };
        for (op, element) in ops.into_iter().zip(elements) {
            self.settle(op, element, api);
        }
        Ok(())
    }

    fn settle(&mut self, mut op: Op, element: Value, api: &mut impl Calls) {
        if element.is_null() {
            return self.resend(op, "the operation timed out inside the batch".into());
        }
        // A code that is no HTTP status reads as 0: not a success, so the body decides.
        let code = element.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(0);
        if let Some(headers) = element.get("headers").and_then(Value::as_array) {
            let pairs: Vec<(String, String)> = headers
                .iter()
                .filter_map(|h| {
                    Some((h.get("name")?.as_str()?.to_ascii_lowercase(), h.get("value")?.as_str()?.to_string()))
                })
                .collect();
            api.observe_headers(&pairs, op.account.as_deref());
        }
        // The body travels as a JSON string: its text is repaired as a whole answer's is.
        let body = element.get("body").and_then(Value::as_str).map(|b| {
            let b = crate::text::repair_json_str(b);
            serde_json::from_str::<Value>(&b).map_err(|e| crate::text::ParseFailure::of(b.as_bytes(), &e))
        });
        let body = match body {
            Some(Ok(body)) => body,
            Some(Err(failure)) if failure.repeats(op.malformed.as_deref()) => {
                let what = &failure.what;
                let error = ConnectorError::misbehaving(
                    format!(
                        "the graph api answered the batch operation GET {} twice with a body that is not valid JSON ({what}); retrying will not change it",
                        op.relative_url.split('?').next().unwrap_or("")
                    ),
                    String::new(),
                );
                return self.fail(op.key, CallFailure::Malformed, error, None);
            }
            Some(Err(failure)) => {
                let reason = format!("operation answered {code} with a body that is not valid JSON ({})", failure.what);
                op.malformed = Some(failure.what);
                return self.resend(op, reason);
            }
            None => return self.resend(op, format!("operation answered {code} without a body")),
        };
        if (200..300).contains(&code) && body.get("error").is_none() {
            self.results.push_back((op.key, Ok(body)));
            return;
        }
        let Some(graph) = GraphError::from_value(&body) else {
            return self.resend(op, format!("operation answered {code} without an error"));
        };
        match classify_graph_error(code, &graph) {
            Verdict::Transient(r) => self.resend(op, r),
            Verdict::RateLimited { .. } => self.resend(op, graph.summary()),
            Verdict::Permanent(Refusal { cause, error }) => self.fail(op.key, cause, error, Some(graph)),
            Verdict::ReportNotReady => {
                let error = ConnectorError::misbehaving("the report was read before it was ready", graph.summary());
                self.fail(op.key, CallFailure::ReportNotReady, error, Some(graph))
            }
            Verdict::ReduceData => {
                let error =
                    ConnectorError::misbehaving("a batch operation answered with too much data", graph.summary());
                self.fail(op.key, CallFailure::ReduceData, error, Some(graph))
            }
            Verdict::StaleCursor | Verdict::Success => {
                let error = ConnectorError::misbehaving("a batch operation failed", graph.summary());
                self.fail(op.key, CallFailure::Other, error, Some(graph))
            }
        }
    }

    fn fail(&mut self, key: u64, failure: CallFailure, error: ConnectorError, graph: Option<GraphError>) {
        self.results.push_back((key, Err(CallError { failure, error, graph: graph.map(Box::new) })));
    }

    fn resend(&mut self, mut op: Op, reason: String) {
        op.rounds += 1;
        if op.rounds >= MAX_OP_ROUNDS {
            let error = ConnectorError::exhausted(
                format!("a batch operation kept failing after {} rounds ({reason}); try again later", op.rounds),
                op.relative_url.split('?').next().unwrap_or("").to_string(),
            );
            self.fail(op.key, CallFailure::Exhausted, error, None);
        } else {
            self.pending.push_back(op);
        }
    }

    /// The next finished operation: its key and its parsed body or error.
    pub fn poll_result(&mut self) -> Option<(u64, Result<Value, CallError>)> {
        self.results.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::client::Api;
    use crate::http::{Response, split_query};
    use crate::time::Timestamp;

    fn sent_ops(req: &Request) -> Vec<Value> {
        let (_, form) = split_query(&format!("?{}", String::from_utf8_lossy(req.body.as_deref().unwrap())));
        let batch = &form.iter().find(|(k, _)| k == "batch").unwrap().1;
        serde_json::from_str::<Vec<Value>>(batch).unwrap()
    }

    #[test]
    fn fifty_five_operations_go_as_fifty_and_five() {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut b = BatchSender::new("https://g/v25.0/".into());
        for k in 0..55 {
            b.push(k, format!("{k}/"));
        }
        b.flush(&mut api);
        let (_, r1) = api.poll_transmit().unwrap();
        let (_, r2) = api.poll_transmit().unwrap();
        assert_eq!(sent_ops(&r1).len(), 50);
        assert_eq!(sent_ops(&r2).len(), 5);
    }

    #[test]
    fn null_and_aborted_operations_are_resent_and_others_settle() {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut b = BatchSender::new("https://g/v25.0/".into());
        for k in 0..3 {
            b.push(k, format!("{k}/"));
        }
        b.flush(&mut api);
        let (id, _) = api.poll_transmit().unwrap();
        let aborted =
            json!({"error": {"message": "Request aborted", "type": "FacebookApiException", "code": 960}}).to_string();
        let body = json!([{"code": 200, "body": "{\"id\":\"0\"}"}, null, {"code": 500, "body": aborted}]).to_string();
        api.handle_response(id, Response { status: 200, headers: vec![], body: body.into_bytes() }, Timestamp(0))
            .unwrap();
        let (call, out) = api.poll_completion().unwrap();
        b.on_outcome(call, out, &mut api).unwrap();
        assert_eq!(b.poll_result().unwrap().0, 0);
        assert!(b.poll_result().is_none());
        b.flush(&mut api);
        let (_, r) = api.poll_transmit().unwrap();
        assert_eq!(sent_ops(&r).len(), 2);
    }

    #[test]
    fn an_operation_that_never_answers_ends_in_an_error_not_a_loop() {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut b = BatchSender::new("https://g/v25.0/".into());
        b.push(7, "7/".into());
        for _ in 0..MAX_OP_ROUNDS {
            b.flush(&mut api);
            let (id, _) = api.poll_transmit().unwrap();
            api.handle_response(id, Response { status: 200, headers: vec![], body: b"[null]".to_vec() }, Timestamp(0))
                .unwrap();
            let (call, out) = api.poll_completion().unwrap();
            b.on_outcome(call, out, &mut api).unwrap();
        }
        let (key, res) = b.poll_result().unwrap();
        assert_eq!(key, 7);
        assert!(res.is_err());
    }
}
