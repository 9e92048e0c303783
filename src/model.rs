//! The vocabulary of Meta's Marketing API and of Airbyte's streams, as plain tables and types:
//! insights levels and slice widths, statuses, breakdowns, and the built-in streams. Both the
//! config (which validates against it) and the stream registry (which builds on it) use it.

/// An ad account's id, without `act_`: as `account_ids` names it, Graph's `account_id` says it,
/// and states key it. Typed so that an account is never confused with another string.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn new(id: impl Into<String>) -> Self {
        AccountId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its Graph node, `act_<id>`.
    pub fn node(&self) -> String {
        format!("act_{}", self.0)
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read as the text it is (in URLs, log lines, state keys); built only through
/// [`AccountId::new`].
impl std::ops::Deref for AccountId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for AccountId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for AccountId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<&str> for AccountId {
    fn from(id: &str) -> Self {
        AccountId::new(id)
    }
}

impl PartialEq<String> for AccountId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// The effective statuses a campaign may have (the `campaign_statuses` filter).
pub const CAMPAIGN_STATUSES: &[&str] = &["ACTIVE", "ARCHIVED", "DELETED", "IN_PROCESS", "PAUSED", "WITH_ISSUES"];
/// The effective statuses an ad set may have (the `adset_statuses` filter).
pub const ADSET_STATUSES: &[&str] =
    &["ACTIVE", "ARCHIVED", "CAMPAIGN_PAUSED", "DELETED", "IN_PROCESS", "PAUSED", "WITH_ISSUES"];
/// The effective statuses an ad may have (the `ad_statuses` filter); built-in insights filter on
/// all of them so that deleted and archived ads' stats are included.
pub const AD_STATUSES: &[&str] = &[
    "ACTIVE",
    "ADSET_PAUSED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "DELETED",
    "DISAPPROVED",
    "IN_PROCESS",
    "PAUSED",
    "PENDING_BILLING_INFO",
    "PENDING_REVIEW",
    "PREAPPROVED",
    "WITH_ISSUES",
];

/// The action breakdowns the spec offers.
pub const ACTION_BREAKDOWNS: &[&str] = &[
    "action_canvas_component_name",
    "action_carousel_card_id",
    "action_carousel_card_name",
    "action_destination",
    "action_device",
    "action_reaction",
    "action_target_id",
    "action_type",
    "action_video_sound",
    "action_video_type",
    "conversion_destination",
    "is_business_ai_assisted",
    "matched_persona_id",
    "matched_persona_name",
    "signal_source_bucket",
    "standard_event_content_type",
];

/// Fields Meta refuses in custom insights (Airbyte rejects them too).
pub const UNSUPPORTED_CUSTOM_FIELDS: &[&str] = &["unique_conversions", "unique_ctr", "unique_clicks"];

/// Fields never requested from insights: `wish_bid` corrupts `spend`.
pub const NEVER_REQUESTED_INSIGHT_FIELDS: &[&str] = &["wish_bid"];

/// The level of an insights report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Account,
    Campaign,
    AdSet,
    Ad,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Account => "account",
            Level::Campaign => "campaign",
            Level::AdSet => "adset",
            Level::Ad => "ad",
        }
    }

    /// The row field naming this level's object; none for account level.
    pub fn id_field(self) -> Option<&'static str> {
        match self {
            Level::Account => None,
            Level::Campaign => Some("campaign_id"),
            Level::AdSet => Some("adset_id"),
            Level::Ad => Some("ad_id"),
        }
    }

    /// The next level down, used to split a report that is too large.
    pub fn child(self) -> Option<Level> {
        match self {
            Level::Account => Some(Level::Campaign),
            Level::Campaign => Some(Level::AdSet),
            Level::AdSet => Some(Level::Ad),
            Level::Ad => None,
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "account" => Some(Level::Account),
            "campaign" => Some(Level::Campaign),
            "adset" => Some(Level::AdSet),
            "ad" => Some(Level::Ad),
            _ => None,
        }
    }
}

/// The width of an insights slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeIncrement {
    Days(u32),
    Weekly,
    Monthly,
}

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
