//! The stream registry: every stream's name, how it is read, its primary key and cursor, and
//! its schema. Names, keys and cursors are Airbyte's, so a switch needs no resync.

use crate::config::{Config, CustomInsight, Level};
use crate::schema::{self, Node, Properties};
use serde_json::{Value, json};

/// How an entity stream finds what changed since the last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incremental {
    /// Full refresh only.
    None,
    /// Server-side `filtering` on `<prefix>.updated_time GREATER_THAN <epoch s>`.
    UpdatedTimeFilter,
    /// Newest-first listing read until a record older than the cursor ("reversed").
    NewestFirst,
    /// The `since=<epoch s>` query parameter (activities).
    SinceParam,
    /// The parent ad's `updated_time`, filtered server-side only when a state cursor exists
    /// (`ad_creatives_from_ads`: start_date does not apply, as in Airbyte).
    ParentAdUpdatedTime,
}

/// Which status list of the config filters an entity stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    None,
    Campaign,
    AdSet,
    Ad,
}

/// An entity stream: one Graph edge of the ad account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityStream {
    pub name: &'static str,
    /// The edge under `act_<id>/`; empty for the account node itself.
    pub edge: &'static str,
    /// The object prefix in `filtering` (`campaign`, `adset`, `ad`).
    pub filter_prefix: &'static str,
    pub cursor: Option<&'static str>,
    pub incremental: Incremental,
    pub status_filter: StatusFilter,
    /// Schema fields never requested (Graph rejects them or they are computed here).
    pub excluded_fields: &'static [&'static str],
    pub has_primary_key: bool,
}

/// The eleven entity streams.
pub const ENTITY_STREAMS: &[EntityStream] = &[
    EntityStream {
        name: "ad_account",
        edge: "",
        filter_prefix: "",
        cursor: None,
        incremental: Incremental::None,
        status_filter: StatusFilter::None,
        excluded_fields: &[],
        has_primary_key: true,
    },
    EntityStream {
        name: "campaigns",
        edge: "campaigns",
        filter_prefix: "campaign",
        cursor: Some("updated_time"),
        incremental: Incremental::UpdatedTimeFilter,
        status_filter: StatusFilter::Campaign,
        excluded_fields: &[],
        has_primary_key: true,
    },
    EntityStream {
        name: "ad_sets",
        edge: "adsets",
        filter_prefix: "adset",
        cursor: Some("updated_time"),
        incremental: Incremental::UpdatedTimeFilter,
        status_filter: StatusFilter::AdSet,
        excluded_fields: &[],
        has_primary_key: true,
    },
    EntityStream {
        name: "ads",
        edge: "ads",
        filter_prefix: "ad",
        cursor: Some("updated_time"),
        incremental: Incremental::UpdatedTimeFilter,
        status_filter: StatusFilter::Ad,
        excluded_fields: &[],
        has_primary_key: true,
    },
    EntityStream {
        name: "ad_creatives",
        edge: "adcreatives",
        filter_prefix: "adcreative",
        cursor: None,
        incremental: Incremental::None,
        status_filter: StatusFilter::None,
        excluded_fields: &["thumbnail_data_url"],
        has_primary_key: true,
    },
    EntityStream {
        name: "ad_creatives_from_ads",
        edge: "ads",
        filter_prefix: "ad",
        cursor: Some("updated_time"),
        incremental: Incremental::ParentAdUpdatedTime,
        status_filter: StatusFilter::Ad,
        // `updated_time` is the parent ad's, not a creative field.
        excluded_fields: &["thumbnail_data_url", "updated_time"],
        has_primary_key: true,
    },
    EntityStream {
        name: "activities",
        edge: "activities",
        filter_prefix: "",
        cursor: Some("event_time"),
        incremental: Incremental::SinceParam,
        status_filter: StatusFilter::None,
        excluded_fields: &["account_id"],
        has_primary_key: false,
    },
    EntityStream {
        name: "images",
        edge: "adimages",
        filter_prefix: "",
        cursor: Some("updated_time"),
        incremental: Incremental::NewestFirst,
        status_filter: StatusFilter::None,
        excluded_fields: &[],
        has_primary_key: true,
    },
    EntityStream {
        name: "videos",
        edge: "advideos",
        filter_prefix: "",
        cursor: Some("updated_time"),
        incremental: Incremental::NewestFirst,
        status_filter: StatusFilter::None,
        excluded_fields: &["account_id"],
        has_primary_key: true,
    },
    EntityStream {
        name: "custom_conversions",
        edge: "customconversions",
        filter_prefix: "",
        cursor: None,
        incremental: Incremental::None,
        status_filter: StatusFilter::None,
        excluded_fields: &[],
        has_primary_key: true,
    },
    EntityStream {
        name: "custom_audiences",
        edge: "customaudiences",
        filter_prefix: "",
        cursor: None,
        incremental: Incremental::None,
        status_filter: StatusFilter::None,
        excluded_fields: &["rule"],
        has_primary_key: true,
    },
];

/// A built-in insights stream: fixed breakdowns and action breakdowns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinInsight {
    pub name: &'static str,
    pub breakdowns: &'static [&'static str],
    /// `None` means the config's `default_ads_insights_action_breakdowns` (only `ads_insights`)
    /// or the default three.
    pub action_breakdowns: ActionBreakdowns,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionBreakdowns {
    /// `default_ads_insights_action_breakdowns` from the config.
    FromConfig,
    /// action_type, action_target_id, action_destination.
    DefaultThree,
    Fixed(&'static [&'static str]),
}

/// The three action breakdowns Airbyte uses unless told otherwise.
pub const DEFAULT_ACTION_BREAKDOWNS: &[&str] = &["action_type", "action_target_id", "action_destination"];

const AT: ActionBreakdowns = ActionBreakdowns::Fixed(&["action_type"]);

/// The prebuilt insights streams, named as Airbyte names them.
pub const BUILTIN_INSIGHTS: &[BuiltinInsight] = &[
    BuiltinInsight { name: "ads_insights", breakdowns: &[], action_breakdowns: ActionBreakdowns::FromConfig },
    BuiltinInsight {
        name: "ads_insights_age_and_gender",
        breakdowns: &["age", "gender"],
        action_breakdowns: ActionBreakdowns::DefaultThree,
    },
    BuiltinInsight {
        name: "ads_insights_country",
        breakdowns: &["country"],
        action_breakdowns: ActionBreakdowns::DefaultThree,
    },
    BuiltinInsight {
        name: "ads_insights_region",
        breakdowns: &["region"],
        action_breakdowns: ActionBreakdowns::DefaultThree,
    },
    BuiltinInsight {
        name: "ads_insights_comscore_market",
        breakdowns: &["comscore_market"],
        action_breakdowns: ActionBreakdowns::DefaultThree,
    },
    BuiltinInsight {
        name: "ads_insights_platform_and_device",
        breakdowns: &["publisher_platform", "platform_position", "impression_device"],
        action_breakdowns: AT,
    },
    BuiltinInsight { name: "ads_insights_action_type", breakdowns: &[], action_breakdowns: AT },
    BuiltinInsight {
        name: "ads_insights_action_carousel_card",
        breakdowns: &[],
        action_breakdowns: ActionBreakdowns::Fixed(&["action_carousel_card_id", "action_carousel_card_name"]),
    },
    BuiltinInsight {
        name: "ads_insights_action_conversion_device",
        breakdowns: &["device_platform"],
        action_breakdowns: AT,
    },
    BuiltinInsight {
        name: "ads_insights_action_product_id",
        breakdowns: &["product_id"],
        action_breakdowns: ActionBreakdowns::Fixed(&[]),
    },
    BuiltinInsight {
        name: "ads_insights_action_reaction",
        breakdowns: &[],
        action_breakdowns: ActionBreakdowns::Fixed(&["action_reaction"]),
    },
    BuiltinInsight {
        name: "ads_insights_action_video_sound",
        breakdowns: &[],
        action_breakdowns: ActionBreakdowns::Fixed(&["action_video_sound"]),
    },
    BuiltinInsight {
        name: "ads_insights_action_video_type",
        breakdowns: &[],
        action_breakdowns: ActionBreakdowns::Fixed(&["action_video_type"]),
    },
    BuiltinInsight { name: "ads_insights_delivery_device", breakdowns: &["device_platform"], action_breakdowns: AT },
    BuiltinInsight {
        name: "ads_insights_delivery_platform",
        breakdowns: &["publisher_platform"],
        action_breakdowns: AT,
    },
    BuiltinInsight {
        name: "ads_insights_delivery_platform_and_device_platform",
        breakdowns: &["publisher_platform", "device_platform"],
        action_breakdowns: AT,
    },
    BuiltinInsight { name: "ads_insights_demographics_age", breakdowns: &["age"], action_breakdowns: AT },
    BuiltinInsight { name: "ads_insights_demographics_country", breakdowns: &["country"], action_breakdowns: AT },
    BuiltinInsight {
        name: "ads_insights_demographics_comscore_market_region",
        breakdowns: &["comscore_market"],
        action_breakdowns: AT,
    },
    BuiltinInsight { name: "ads_insights_demographics_gender", breakdowns: &["gender"], action_breakdowns: AT },
];

/// Object breakdowns report an object; their `<name>_id` key joins the primary key.
pub const OBJECT_BREAKDOWNS: &[&str] = &[
    "body_asset",
    "call_to_action_asset",
    "description_asset",
    "image_asset",
    "link_url_asset",
    "title_asset",
    "video_asset",
];

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

/// The width of an insights slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeIncrement {
    Days(u32),
    Weekly,
    Monthly,
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

/// Looks a stream up by name.
pub fn find(config: &Config, name: &str) -> Option<Stream> {
    all_streams(config).into_iter().find(|s| s.name() == name)
}
