//! `check`: validates the config, then proves each ad account readable with the token (or,
//! without `account_ids`, lists the accounts the token reaches and says which would be read)
//! and each custom insight's breakdowns acceptable to Meta.

use crate::accounts::{self, Discovery};
use crate::api::classify::GraphError;
use crate::api::client::{Api, Call, CallFailure, CallId, CallKind, CallOutcome};
use crate::commands::graph_url;
use crate::config::Config;
use crate::driver::{Action, Machine, TimeoutReason};
use crate::error::ConnectorError;
use crate::http::{FetchError, Request, RequestId, Response, encode_query};
use crate::machine::Core;
use crate::model::NEVER_REQUESTED_INSIGHT_FIELDS;
use crate::protocol::{LogLevel, Message};
use crate::read::fields::{Refused, custom_refusal};
use crate::time::Timestamp;
use serde_json::{Value, json};

/// One probe of the API.
#[derive(Clone, Debug)]
enum Probe {
    /// The accounts the token reaches (a config without `account_ids`).
    Accounts,
    Account {
        account: crate::model::AccountId,
    },
    Breakdowns {
        insight: usize,
        today_only: bool,
    },
}

/// The check machine. See [`Machine`] for the calling contract.
pub struct CheckMachine {
    core: Core,
    phase: Phase,
}

/// Whether the config was usable, and then which probes are left.
enum Phase {
    /// The config was refused: the FAILED status is in the outbox.
    Refused,
    Probing {
        config: Box<Config>,
        /// Probes still to make, the next one last.
        probes: Vec<Probe>,
        /// The probe in flight.
        awaiting: Option<(CallId, Probe)>,
        /// The account listing, while it runs.
        discovery: Option<Box<Discovery>>,
    },
}

impl CheckMachine {
    pub fn new(config_text: &str, seed: u64, now: Timestamp) -> Self {
        match Config::parse(config_text, now) {
            Ok(config) => {
                let mut probes: Vec<Probe> =
                    config.account_ids.iter().map(|a| Probe::Account { account: a.clone() }).collect();
                probes.extend(
                    (0..config.custom_insights.len()).map(|i| Probe::Breakdowns { insight: i, today_only: false }),
                );
                if config.discovers_accounts {
                    probes.insert(0, Probe::Accounts);
                }
                probes.reverse();
                // Rate-limit pauses are off: a check must answer within minutes.
                let api = Api::new(config.access_token.clone(), seed, now, false)
                    .with_max_response_bytes(config.max_response_bytes);
                let phase = Phase::Probing { config: Box::new(config), probes, awaiting: None, discovery: None };
                let mut m = CheckMachine { core: Core::new(api), phase };
                m.next_probe();
                m
            }
            Err(e) => {
                let mut core = Core::new(Api::new(String::new(), seed, now, false));
                core.emit(Message::ConnectionStatus { succeeded: false, message: Some(e.message().to_string()) });
                core.finish();
                CheckMachine { core, phase: Phase::Refused }
            }
        }
    }

    fn next_probe(&mut self) {
        let Phase::Probing { config, probes, awaiting, discovery } = &mut self.phase else { return };
        let Some(probe) = probes.pop() else {
            self.core.emit(Message::ConnectionStatus { succeeded: true, message: None });
            self.core.finish();
            return;
        };
        let url = match &probe {
            Probe::Accounts => {
                let listing = Discovery::start(&config.api_version, &mut self.core.api);
                *awaiting = Some((listing.awaiting(), probe));
                *discovery = Some(Box::new(listing));
                return;
            }
            Probe::Account { account } => format!(
                "{}?{}",
                graph_url(&config.api_version, &format!("act_{account}")),
                encode_query(&[("fields", "id,account_id,name,timezone_name,account_status")])
            ),
            Probe::Breakdowns { insight, today_only } => {
                let c = &config.custom_insights[*insight];
                // The insight's own fields, so that one Meta no longer serves fails here, in the
                // words the sync would use; one row is enough to know.
                let mut fields = vec!["account_id".to_string()];
                fields
                    .extend(c.fields.iter().filter(|f| !NEVER_REQUESTED_INSIGHT_FIELDS.contains(&f.as_str())).cloned());
                let mut params = vec![
                    ("fields", Value::from(fields).to_string()),
                    ("limit", "1".to_string()),
                    ("level", c.level.as_str().to_string()),
                    ("breakdowns", Value::from(c.breakdowns.clone()).to_string()),
                    ("action_breakdowns", Value::from(c.action_breakdowns.clone()).to_string()),
                ];
                if *today_only {
                    let today = self.core.api.now().date_utc().to_string();
                    params.push(("time_range", json!({"since": today, "until": today}).to_string()));
                }
                format!(
                    "{}?{}",
                    graph_url(&config.api_version, &format!("act_{}/insights", config.account_ids[0])),
                    encode_query(&params)
                )
            }
        };
        let kind = if matches!(probe, Probe::Account { .. }) { CallKind::Account } else { CallKind::InsightsSync };
        let call = self.core.api.submit(Call::graph(Request::get(url), kind));
        *awaiting = Some((call, probe));
    }

    fn pump(&mut self) -> Result<(), ConnectorError> {
        while let Some((call, outcome)) = self.core.api.poll_completion() {
            let Phase::Probing { awaiting, .. } = &mut self.phase else { return Ok(()) };
            match awaiting.take() {
                Some((expected, probe)) if expected == call => self.on_outcome(call, probe, outcome),
                _ => {
                    return Err(ConnectorError::contract(
                        "an answer reached the check for a probe it was not waiting for; this is a bug, please report it",
                        format!("call {}", call.0),
                    ));
                }
            }
        }
        Ok(())
    }

    fn on_outcome(&mut self, call: CallId, probe: Probe, outcome: CallOutcome) {
        let Phase::Probing { config, probes, awaiting, discovery } = &mut self.phase else { return };
        match (probe, outcome) {
            (Probe::Accounts, outcome) => {
                let Some(listing) = discovery.as_mut() else { return };
                match listing.on_outcome(call, outcome, &mut self.core.api) {
                    Ok(None) => *awaiting = Some((listing.awaiting(), Probe::Accounts)),
                    Ok(Some(found)) => {
                        *discovery = None;
                        self.core.emit(Message::log(LogLevel::Info, found.summary()));
                        match found.to_read() {
                            Ok(accounts) => {
                                config.account_ids = accounts;
                                self.next_probe();
                            }
                            Err(e) => self.fail(e, None),
                        }
                    }
                    Err(e) => self.fail(e.error.context(accounts::LISTING), e.graph.as_deref()),
                }
            }
            (_, Ok(_)) => self.next_probe(),
            (Probe::Account { account }, Err(e)) => {
                self.fail(e.error.context(&format!("account_ids: ad account {account}")), e.graph.as_deref())
            }
            (Probe::Breakdowns { insight, .. }, Err(e)) if Refused::of(&e.failure).is_some() => {
                let c = &config.custom_insights[insight];
                let refused = match Refused::of(&e.failure) {
                    // Graph named nothing: the insight's breakdowns are what it refused.
                    Some(r) if r.names().is_empty() => r.named(c.breakdowns.clone()),
                    Some(r) => r,
                    None => return,
                };
                let message = custom_refusal(&c.name, &refused, &config.api_version);
                self.fail(ConnectorError::config(message), e.graph.as_deref())
            }
            (Probe::Breakdowns { insight, today_only }, Err(e)) => {
                let name = config.custom_insights[insight].name.clone();
                let reduce = e.failure == CallFailure::ReduceData;
                if reduce && !today_only {
                    probes.push(Probe::Breakdowns { insight, today_only: true });
                    self.next_probe();
                } else if reduce {
                    self.core.emit(Message::log(
                        LogLevel::Warn,
                        format!("custom insight '{name}': meta could not answer a one-day probe; its breakdowns were not verified"),
                    ));
                    self.next_probe();
                } else {
                    self.fail(e.error.context(&format!("custom_insights '{name}'")), e.graph.as_deref())
                }
            }
        }
    }

    fn fail(&mut self, e: ConnectorError, graph: Option<&GraphError>) {
        let detail = graph.map(|g| format!(" (facebook: {})", g.message)).unwrap_or_default();
        self.core
            .emit(Message::ConnectionStatus { succeeded: false, message: Some(format!("{}{detail}", e.message())) });
        self.core.finish();
    }
}

impl Machine for CheckMachine {
    fn handle_response(&mut self, id: RequestId, response: Response, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_response(id, response, now)?;
        self.pump()
    }

    fn handle_fetch_error(&mut self, id: RequestId, error: FetchError, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_fetch_error(id, error, now)?;
        self.pump()
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.core.api.handle_timeout(now);
        if let Err(e) = self.pump() {
            self.core.fail(&e);
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.core.poll_action()
    }

    fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
        self.core.api.poll_timeout()
    }
}
