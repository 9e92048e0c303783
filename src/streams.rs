//! The stream registry: every stream a config offers, how it is read, its primary key and
//! cursor, and its schema. Names, keys and cursors are Airbyte's (the tables in [`crate::model`]),
//! so a switch needs no resync.

use crate::config::{Config, CustomInsight};
pub use crate::model::{
    ActionBreakdowns, BUILTIN_INSIGHTS, BuiltinInsight, DEFAULT_ACTION_BREAKDOWNS, ENTITY_STREAMS, EntityStream,
    Incremental, Level, OBJECT_BREAKDOWNS, StatusFilter, TimeIncrement,
};
use crate::schema::{self, Node, Properties};
use serde_json::{Value, json};

/// Every attribute of an insights stream the reader and discovery need.
#[derive(Clone, Debug, PartialEq)]
pub struct InsightStream {
    pub name: String,
    pub level: Level,
    pub breakdowns: Vec<String>,
    pub action_breakdowns: Vec<String>,
    /// Fields requested (before catalog selection); empty means every schema field.
    pub fields: Vec<String>,
    pub time_increment: TimeIncrement,
    pub custom: Option<CustomInsight>,
    /// Built-in streams filter on every ad status so deleted ads' stats are included.
    pub status_filtered: bool,
}

/// A stream of either family.
// A handful are built per command; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Stream {
    Entity(&'static EntityStream),
    Insight(InsightStream),
}

impl Stream {
    pub fn name(&self) -> &str {
        match self {
            Stream::Entity(e) => e.name,
            Stream::Insight(i) => &i.name,
        }
    }

    /// The primary key as Airbyte declares it: a list of field paths.
    pub fn primary_key(&self) -> Vec<Vec<String>> {
        match self {
            Stream::Entity(e) if e.has_primary_key => vec![vec!["id".to_string()]],
            Stream::Entity(_) => Vec::new(),
            Stream::Insight(i) => i.primary_key().into_iter().map(|k| vec![k]).collect(),
        }
    }

    pub fn cursor_field(&self) -> Option<&str> {
        match self {
            Stream::Entity(e) => e.cursor,
            Stream::Insight(_) => Some("date_start"),
        }
    }

    pub fn properties(&self) -> Properties {
        match self {
            Stream::Entity(e) => schema::properties(e.name).clone(),
            Stream::Insight(i) => i.properties(),
        }
    }

    /// The AirbyteStream entry of the catalog.
    pub fn catalog_entry(&self) -> Value {
        let incremental = self.cursor_field().is_some();
        let mut entry = json!({
            "name": self.name(),
            "json_schema": schema::document(&self.properties()),
            "supported_sync_modes": if incremental { json!(["full_refresh", "incremental"]) } else { json!(["full_refresh"]) },
            "source_defined_primary_key": self.primary_key(),
            "is_resumable": incremental,
        });
        if let (Some(cursor), Some(obj)) = (self.cursor_field(), entry.as_object_mut()) {
            obj.insert("source_defined_cursor".into(), Value::Bool(true));
            obj.insert("default_cursor_field".into(), json!([cursor]));
        }
        entry
    }
}

impl InsightStream {
    /// `date_start, account_id, <level id>` then the breakdowns (object breakdowns by `*_id`).
    pub fn primary_key(&self) -> Vec<String> {
        let mut pk = vec!["date_start".to_string(), "account_id".to_string()];
        if let Some(id) = self.level.id_field() {
            pk.push(id.to_string());
        }
        for b in &self.breakdowns {
            if OBJECT_BREAKDOWNS.contains(&b.as_str()) {
                pk.push(format!("{b}_id"));
            } else {
                pk.push(b.clone());
            }
        }
        pk
    }

    pub fn properties(&self) -> Properties {
        let base = schema::properties("ads_insights");
        let mut props: Properties = if self.fields.is_empty() {
            base.clone()
        } else {
            let custom = schema::properties("ads_insights_custom_fields");
            let mut p = Properties::new();
            for f in &self.fields {
                if let Some(node) = base.get(f).or_else(|| custom.get(f)) {
                    p.insert(f.clone(), node.clone());
                }
            }
            for key in ["date_start", "date_stop", "account_id"] {
                if let Some(node) = base.get(key) {
                    p.insert(key.to_string(), node.clone());
                }
            }
            if let Some(id) = self.level.id_field() {
                p.insert(id.to_string(), Node::String { format: None });
            }
            p
        };
        let breakdown_props = schema::properties("ads_insights_breakdowns");
        for b in &self.breakdowns {
            if let Some(node) = breakdown_props.get(b) {
                props.insert(b.clone(), node.clone());
            }
            let id = format!("{b}_id");
            if OBJECT_BREAKDOWNS.contains(&b.as_str())
                && let Some(node) = breakdown_props.get(&id)
            {
                props.insert(id, node.clone());
            }
        }
        let action_props = schema::properties("ads_insights_action_breakdowns");
        for b in &self.action_breakdowns {
            if let Some(node) = action_props.get(b) {
                props.insert(b.clone(), node.clone());
            }
        }
        props
    }
}

/// Every stream the config makes available, in catalog order.
pub fn all_streams(config: &Config) -> Vec<Stream> {
    let mut out: Vec<Stream> = ENTITY_STREAMS.iter().map(Stream::Entity).collect();
    for b in BUILTIN_INSIGHTS {
        let action_breakdowns = match b.action_breakdowns {
            ActionBreakdowns::FromConfig => config.default_ads_insights_action_breakdowns.clone(),
            ActionBreakdowns::DefaultThree => DEFAULT_ACTION_BREAKDOWNS.iter().map(|s| s.to_string()).collect(),
            ActionBreakdowns::Fixed(list) => list.iter().map(|s| s.to_string()).collect(),
        };
        out.push(Stream::Insight(InsightStream {
            name: b.name.to_string(),
            level: Level::Ad,
            breakdowns: b.breakdowns.iter().map(|s| s.to_string()).collect(),
            action_breakdowns,
            fields: Vec::new(),
            time_increment: TimeIncrement::Days(1),
            custom: None,
            status_filtered: true,
        }));
    }
    for c in &config.custom_insights {
        let action_breakdowns = if c.action_breakdowns.is_empty() && !config.action_breakdowns_allow_empty {
            DEFAULT_ACTION_BREAKDOWNS.iter().map(|s| s.to_string()).collect()
        } else {
            c.action_breakdowns.clone()
        };
        out.push(Stream::Insight(InsightStream {
            name: c.stream_name(),
            level: c.level,
            breakdowns: c.breakdowns.clone(),
            action_breakdowns,
            fields: c.fields.clone(),
            time_increment: c.time_increment,
            custom: Some(c.clone()),
            status_filtered: false,
        }));
    }
    out
}
