//! `spec`, and `discover`, which needs the API only to say which accounts a config without
//! `account_ids` reaches; and where Graph calls go.

use crate::accounts::Discovery;
use crate::api::client::Api;
use crate::config::Config;
use crate::driver::{Action, Machine, TimeoutReason};
use crate::error::ConnectorError;
use crate::http::{FetchError, RequestId, Response};
use crate::machine::Core;
use crate::protocol::{LogLevel, Message};
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

/// The CATALOG message of `config`'s streams.
fn catalog(config: &Config) -> Message {
    let streams: Vec<Value> = streams::all_streams(config).iter().map(|s| s.catalog_entry()).collect();
    Message::Catalog(json!({ "streams": streams }).to_string())
}

/// The discover machine: the CATALOG, or an error trace for a bad config. The catalog does not
/// depend on the accounts; for a config without `account_ids` it first lists the accounts the
/// token reaches and says which a sync would read (a LOG line), so that a user sees them before
/// a sync. A listing that fails is a WARN, and the catalog still comes: `check` is where the
/// token is judged. See [`Machine`] for the calling contract.
pub struct DiscoverMachine {
    core: Core,
    /// The catalog and the running listing, for a config without `account_ids`.
    listing: Option<(Message, Discovery)>,
}

impl DiscoverMachine {
    pub fn new(config_text: &str, seed: u64, now: Timestamp) -> Self {
        match Config::parse(config_text, now) {
            Ok(config) if config.discovers_accounts => {
                let mut core = Core::new(
                    Api::new(config.access_token.clone(), seed, now, false)
                        .with_max_response_bytes(config.max_response_bytes),
                );
                let listing = Discovery::start(&config.api_version, &mut core.api);
                DiscoverMachine { core, listing: Some((catalog(&config), listing)) }
            }
            Ok(config) => Self::done(catalog(&config), seed, now),
            Err(e) => Self::done(Message::error(now, &e), seed, now),
        }
    }

    /// A machine with nothing to ask: `message`, then the end.
    fn done(message: Message, seed: u64, now: Timestamp) -> Self {
        let mut core = Core::new(Api::new(String::new(), seed, now, false));
        core.emit(message);
        core.finish();
        DiscoverMachine { core, listing: None }
    }

    fn pump(&mut self) {
        while let Some((call, outcome)) = self.core.api.poll_completion() {
            let Some((_, listing)) = &mut self.listing else { return };
            if call != listing.awaiting() {
                continue;
            }
            let said = match listing.on_outcome(call, outcome, &mut self.core.api) {
                Ok(None) => continue,
                Ok(Some(found)) => Message::log(LogLevel::Info, found.summary()),
                Err(e) => Message::log(
                    LogLevel::Warn,
                    format!(
                        "account discovery (/me/adaccounts) failed: {}; run check for the cause",
                        e.error.message()
                    ),
                ),
            };
            let Some((catalog, _)) = self.listing.take() else { return };
            self.core.emit(said);
            self.core.emit(catalog);
            self.core.finish();
        }
    }
}

impl Machine for DiscoverMachine {
    fn handle_response(&mut self, id: RequestId, response: Response, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_response(id, response, now)?;
        self.pump();
        Ok(())
    }

    fn handle_fetch_error(&mut self, id: RequestId, error: FetchError, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_fetch_error(id, error, now)?;
        self.pump();
        Ok(())
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.core.api.handle_timeout(now);
        self.pump();
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.core.poll_action()
    }

    fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
        self.core.api.poll_timeout()
    }
}
