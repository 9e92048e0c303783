//! The commands that need no API: `spec` and `discover`, plus the pieces every command shares.

use crate::api::client::Api;
use crate::config::Config;
use crate::driver::Action;
use crate::error::ConnectorError;
use crate::protocol::Message;
use crate::streams;
use crate::time::Timestamp;
use serde_json::{Value, json};
use std::collections::VecDeque;

/// The Graph API's origin. Hosts may route it elsewhere (a proxy, a simulator).
pub const GRAPH_ROOT: &str = "https://graph.facebook.com";

/// `https://graph.facebook.com/<version>/<path>`.
pub fn graph_url(version: &str, path: &str) -> String {
    format!("{GRAPH_ROOT}/{version}/{path}")
}

/// The SPEC message.
pub fn spec() -> Vec<Message> {
    vec![Message::Spec(crate::spec::spec().to_string())]
}

/// The CATALOG message for `config`, or an error trace.
pub fn discover(config_text: &str, now: Timestamp) -> Vec<Message> {
    match Config::parse(config_text, now) {
        Ok(config) => {
            let streams: Vec<Value> = streams::all_streams(&config).iter().map(|s| s.catalog_entry()).collect();
            vec![Message::Catalog(json!({ "streams": streams }).to_string())]
        }
        Err(e) => vec![Message::error_trace(now, e.failure, &e.message, &e.internal)],
    }
}

/// An API client plus an outbox: what every API-driven machine polls its actions from.
pub struct Core {
    pub api: Api,
    pub outbox: VecDeque<Message>,
    finished: bool,
    done_sent: bool,
}

impl Core {
    pub fn new(api: Api) -> Self {
        Core { api, outbox: VecDeque::new(), finished: false, done_sent: false }
    }

    pub fn emit(&mut self, m: Message) {
        self.outbox.push_back(m);
    }

    /// Marks the machine finished: `Done` follows once the outbox is empty.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Messages first, then fetches, then `Done` (once).
    pub fn poll_action(&mut self) -> Option<Action> {
        while let Some(log) = self.api.poll_log() {
            self.outbox.push_back(log);
        }
        if let Some(m) = self.outbox.pop_front() {
            return Some(Action::Emit(m));
        }
        if self.finished {
            if self.done_sent {
                return None;
            }
            self.done_sent = true;
            return Some(Action::Done);
        }
        self.api.poll_transmit().map(|(id, request)| Action::Fetch { id, request })
    }

    /// Ends with an error trace.
    pub fn fail(&mut self, e: &ConnectorError) {
        let now = self.api.now();
        self.emit(Message::error_trace(now, e.failure, &e.message, &e.internal));
        self.finish();
    }
}
