//! Insights streams through async report jobs (filled in by the insights machinery).

use super::Cx;
use crate::api::client::{CallId, CallOutcome};
use crate::catalog::Selected;
use crate::config::Config;
use crate::driver::TimeoutReason;
use crate::error::ConnectorError;
use crate::time::Timestamp;
use serde_json::Value;

pub struct InsightsReader {
    failures: Vec<ConnectorError>,
    done: bool,
    pub records: u64,
}

impl InsightsReader {
    pub fn new(_selected: &Selected, _state: Option<&Value>, _config: &Config, _now: Timestamp) -> Self {
        InsightsReader { failures: Vec::new(), done: false, records: 0 }
    }

    pub fn start(&mut self, _cx: &mut Cx) {
        self.failures.push(ConnectorError::contract("insights streams are not implemented yet"));
        self.done = true;
    }

    pub fn on_outcome(&mut self, _call: CallId, _outcome: CallOutcome, _cx: &mut Cx) {}

    pub fn on_timeout(&mut self, _cx: &mut Cx) {}

    pub fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
        None
    }

    pub fn finished(&self) -> Option<&[ConnectorError]> {
        self.done.then_some(self.failures.as_slice())
    }
}
