//! The commands that need no API: `spec` and `discover`; and where Graph calls go.

use crate::config::Config;
use crate::protocol::Message;
use crate::streams;
use crate::time::Timestamp;
use serde_json::{Value, json};

/// The Graph API's origin. Hosts may route it elsewhere (a proxy, a simulator).
pub use sfm_wire::origin::GRAPH_ORIGIN;

/// `https://graph.facebook.com/<version>/<path>`.
pub fn graph_url(version: &str, path: &str) -> String {
    format!("{GRAPH_ORIGIN}/{version}/{path}")
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
        Err(e) => vec![Message::error(now, &e)],
    }
}
