//! The simulated advertiser world: accounts, the campaign → ad set → ad tree, creatives, media,
//! conversions, audiences and activities, plus a schedule of edits over virtual time.
//!
//! Everything is a pure function of the seed and the object's position, so two simulators with
//! the same config hold identical worlds. Objects never change in place: each carries a list of
//! [`Change`]s with virtual timestamps, and readers ask for the object's state *at* an instant.
//! That is how a later incremental sync finds newer `updated_time`s without any mutable state.

use std::collections::BTreeMap;

use crate::config::SimConfig;
use crate::rng::{mix, range, unit};
use crate::time::DAY_S;

/// What kind of node an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Campaign.
    Campaign,
    /// AdSet.
    AdSet,
    /// Ad.
    Ad,
    /// AdCreative.
    Creative,
    /// AdImage.
    Image,
    /// AdVideo.
    Video,
    /// CustomConversion.
    CustomConversion,
    /// CustomAudience.
    CustomAudience,
}

impl Kind {
    /// Graph's node type name (used in `(#100) ... on node type (T)`).
    pub fn node_type(self) -> &'static str {
        match self {
            Kind::Campaign => "Campaign",
            Kind::AdSet => "AdSet",
            Kind::Ad => "Ad",
            Kind::Creative => "AdCreative",
            Kind::Image => "AdImage",
            Kind::Video => "AdVideo",
            Kind::CustomConversion => "CustomConversion",
            Kind::CustomAudience => "CustomAudience",
        }
    }

    /// Filtering prefix (`campaign.`, `adset.`, ...).
    pub fn entity_prefix(self) -> &'static str {
        match self {
            Kind::Campaign => "campaign",
            Kind::AdSet => "adset",
            Kind::Ad => "ad",
            Kind::Creative => "adcreative",
            Kind::Image => "adimage",
            Kind::Video => "advideo",
            Kind::CustomConversion => "customconversion",
            Kind::CustomAudience => "customaudience",
        }
    }

    /// A number used in id generation and hashing.
    fn code(self) -> u64 {
        match self {
            Kind::Campaign => 1,
            Kind::AdSet => 2,
            Kind::Ad => 3,
            Kind::Creative => 4,
            Kind::Image => 5,
            Kind::Video => 6,
            Kind::CustomConversion => 7,
            Kind::CustomAudience => 8,
        }
    }
}

/// One ad account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Bare numeric id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// IANA timezone name.
    pub tz_name: &'static str,
    /// Graph's numeric timezone id.
    pub tz_id: u32,
    /// Fixed UTC offset, seconds east.
    pub offset_s: i32,
    /// ISO currency.
    pub currency: &'static str,
    /// Account creation, epoch s.
    pub created_s: i64,
    /// Graph's `account_status`: 1 (ACTIVE), or 101 (CLOSED) for the config's closed accounts.
    pub status: i64,
    /// Objects of the account by kind, in creation order.
    pub objects: BTreeMap<Kind, Vec<usize>>,
    /// Activities of the account, oldest first.
    pub activities: Vec<Activity>,
}

/// Timezones given to accounts in turn: (name, Graph tz id, offset seconds in June, currency).
const ZONES: &[(&str, u32, i32, &str)] = &[
    ("America/Los_Angeles", 1, -7 * 3600, "USD"),
    ("Europe/London", 79, 3600, "GBP"),
    ("Asia/Tokyo", 129, 9 * 3600, "JPY"),
    ("America/New_York", 7, -4 * 3600, "USD"),
    ("Europe/Berlin", 48, 2 * 3600, "EUR"),
];

/// A scheduled edit of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// When it happens, epoch s.
    pub at_s: i64,
    /// The new name, if renamed.
    pub name: Option<String>,
    /// The new configured status, if changed.
    pub status: Option<&'static str>,
}

/// One object of any [`Kind`].
#[derive(Debug, Clone)]
pub struct Obj {
    /// Node kind.
    pub kind: Kind,
    /// Graph id (for images `<account_id>:<hash>`).
    pub id: String,
    /// Index of the owning account.
    pub account: usize,
    /// Parent campaign (ad sets, ads).
    pub campaign: Option<usize>,
    /// Parent ad set (ads).
    pub adset: Option<usize>,
    /// The ad's creative (ads), or the creative's ad (creatives).
    pub link: Option<usize>,
    /// Name at creation.
    pub name: String,
    /// Creation, epoch s.
    pub created_s: i64,
    /// Last update before the simulation starts, epoch s.
    pub updated_s: i64,
    /// Configured status at creation.
    pub status: &'static str,
    /// Delivery problem shown as effective status while the object is otherwise active.
    pub delivery_issue: Option<&'static str>,
    /// Edits after the simulation start, in time order.
    pub changes: Vec<Change>,
    /// Per-object hash from which the remaining attributes derive.
    pub h: u64,
}

/// The state of an object at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Current name.
    pub name: String,
    /// Current configured status.
    pub status: &'static str,
    /// Current `updated_time`, epoch s.
    pub updated_s: i64,
}

/// An entry of the account activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// When it happened, epoch s.
    pub event_s: i64,
    /// Graph `event_type`.
    pub event_type: &'static str,
    /// Graph `translated_event_type`.
    pub translated: &'static str,
    /// The object it concerns.
    pub object: usize,
    /// Object name at that moment.
    pub object_name: String,
    /// Extra data (a JSON string, as Graph sends it).
    pub extra: String,
    /// Who did it.
    pub actor: u64,
}

/// The whole world.
#[derive(Debug, Clone)]
pub struct World {
    /// Seed the world derives from.
    pub seed: u64,
    /// Accounts in id order.
    pub accounts: Vec<Account>,
    /// Every object.
    pub objs: Vec<Obj>,
    /// Lookup from Graph id to object.
    pub by_id: BTreeMap<String, usize>,
}

const CAMPAIGN_WORDS: &[&str] =
    &["Spring Sale", "Brand Awareness", "Retargeting", "Prospecting", "Holiday Push", "Lead Gen", "Summer Launch"];
const ADSET_WORDS: &[&str] = &["US 25-44", "Lookalike 1%", "Interest: Running", "Broad", "Retarget 30d", "EU Women"];
const AD_WORDS: &[&str] = &["Video A", "Carousel B", "Static C", "UGC D", "Story E", "Collection F"];
/// Delivery problems an otherwise active ad can show.
const AD_ISSUES: &[&str] =
    &["DISAPPROVED", "PENDING_REVIEW", "WITH_ISSUES", "IN_PROCESS", "PREAPPROVED", "PENDING_BILLING_INFO"];

/// Picks a configured status with a fixed share: ~60 % ACTIVE, 20 % PAUSED, 10 % ARCHIVED, 10 % DELETED.
fn pick_status(h: u64) -> &'static str {
    match h % 10 {
        0..=5 => "ACTIVE",
        6 | 7 => "PAUSED",
        8 => "ARCHIVED",
        _ => "DELETED",
    }
}

/// First id of each kind's block; Graph ids are 15–18 digit strings that exceed 2^53.
fn object_id(kind: Kind, account: usize, idx: usize, h: u64) -> String {
    let base = 120_200_000_000_000_000u64 + kind.code() * 10_000_000_000_000;
    (base + account as u64 * 10_000_000_000 + idx as u64 * 10_000 + h % 10_000).to_string()
}

impl World {
    /// Generates the world of a config.
    pub fn generate(cfg: &SimConfig) -> World {
        let seed = cfg.seed;
        let start_s = cfg.start_time_ms.div_euclid(1000);
        let history_s = i64::from(cfg.history_days.max(2)) * DAY_S;
        let mut w = World { seed, accounts: Vec::new(), objs: Vec::new(), by_id: BTreeMap::new() };
        for a in 0..cfg.accounts {
            let (tz_name, tz_id, offset_s, currency) = ZONES[a % ZONES.len()];
            let h = mix(seed, &[100, a as u64]);
            w.accounts.push(Account {
                id: (1_000_000_000_000_000u64 + a as u64 + 1).to_string(),
                name: format!("Sim Advertiser {}", a + 1),
                tz_name,
                tz_id,
                offset_s,
                currency,
                created_s: start_s - history_s - 400 * DAY_S - (h % 1000) as i64 * 3600,
                status: 1,
                objects: BTreeMap::new(),
                activities: Vec::new(),
            });
            if cfg.closed_accounts.contains(&w.accounts[a].id) {
                w.accounts[a].status = 101;
            }
            // Objects are created within the history window, spread from oldest to newest.
            let mut counter = 0usize;
            let mut created = |w: &World, i: usize| -> i64 {
                counter += 1;
                let hh = mix(w.seed, &[101, a as u64, i as u64, counter as u64]);
                start_s - history_s + (unit(hh) * (history_s - DAY_S) as f64) as i64
            };
            for c in 0..cfg.campaigns_per_account {
                let t = created(&w, c);
                let ci = w.add(cfg, Kind::Campaign, a, c, None, None, t);
                for s in 0..cfg.adsets_per_campaign {
                    let si_idx = c * cfg.adsets_per_campaign + s;
                    let ts = t + (s as i64 + 1) * 3600;
                    let si = w.add(cfg, Kind::AdSet, a, si_idx, Some(ci), None, ts);
                    for d in 0..cfg.ads_per_adset {
                        let ai_idx = si_idx * cfg.ads_per_adset + d;
                        let ta = ts + (d as i64 + 1) * 1800;
                        let ad = w.add(cfg, Kind::Ad, a, ai_idx, Some(ci), Some(si), ta);
                        let cr = w.add(cfg, Kind::Creative, a, ai_idx, Some(ci), Some(si), ta - 600);
                        w.objs[ad].link = Some(cr);
                        w.objs[cr].link = Some(ad);
                    }
                }
            }
            for (kind, n) in [
                (Kind::Image, cfg.images_per_account),
                (Kind::Video, cfg.videos_per_account),
                (Kind::CustomConversion, cfg.custom_conversions_per_account),
                (Kind::CustomAudience, cfg.custom_audiences_per_account),
            ] {
                for i in 0..n {
                    let t = created(&w, 1000 + i);
                    w.add(cfg, kind, a, i, None, None, t);
                }
            }
            w.build_activities(cfg, a);
        }
        w
    }

    /// Creates one object with its statuses and schedule of changes.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        cfg: &SimConfig,
        kind: Kind,
        account: usize,
        idx: usize,
        campaign: Option<usize>,
        adset: Option<usize>,
        created_s: i64,
    ) -> usize {
        let start_s = cfg.start_time_ms.div_euclid(1000);
        let h = mix(self.seed, &[kind.code(), account as u64, idx as u64]);
        let created_s = created_s.min(start_s - 3600);
        let id = match kind {
            Kind::Image => format!("{}:{}", self.accounts[account].id, image_hash(h)),
            _ => object_id(kind, account, idx, h),
        };
        let name = match kind {
            Kind::Campaign => format!("{} #{}", CAMPAIGN_WORDS[idx % CAMPAIGN_WORDS.len()], idx + 1),
            Kind::AdSet => format!("{} #{}", ADSET_WORDS[idx % ADSET_WORDS.len()], idx + 1),
            Kind::Ad => format!("{} #{}", AD_WORDS[idx % AD_WORDS.len()], idx + 1),
            Kind::Creative => format!("Creative for {} #{}", AD_WORDS[idx % AD_WORDS.len()], idx + 1),
            Kind::Image => format!("banner_{}_{}.png", account + 1, idx + 1),
            Kind::Video => format!("Product clip {}", idx + 1),
            Kind::CustomConversion => format!("Purchase over {} ({})", 20 * (idx + 1), idx + 1),
            Kind::CustomAudience => format!("Audience {}", idx + 1),
        };
        let hierarchical = matches!(kind, Kind::Campaign | Kind::AdSet | Kind::Ad);
        let status = if hierarchical { pick_status(h >> 8) } else { "ACTIVE" };
        let delivery_issue = match kind {
            Kind::Ad if (h >> 20).is_multiple_of(8) => Some(AD_ISSUES[((h >> 24) % AD_ISSUES.len() as u64) as usize]),
            Kind::AdSet | Kind::Campaign if (h >> 20).is_multiple_of(12) => Some("WITH_ISSUES"),
            _ => None,
        };
        let updated_s = created_s + ((start_s - created_s) as f64 * unit(mix(h, &[1])) * 0.9) as i64;
        let mut changes = Vec::new();
        let evolving = matches!(kind, Kind::Campaign | Kind::AdSet | Kind::Ad | Kind::Image | Kind::Video);
        if evolving && mix(h, &[2]) % 10 < 3 {
            let n = if mix(h, &[3]).is_multiple_of(3) { 2 } else { 1 };
            let mut at = start_s;
            let mut cur = status;
            for k in 0..n {
                // Edits land between one hour and ten days after the start.
                at += range(mix(h, &[4, k]), 3600, 5 * DAY_S as u64) as i64;
                let rename = mix(h, &[5, k]).is_multiple_of(2) || !hierarchical;
                let new_status = if hierarchical && (!rename || mix(h, &[6, k]).is_multiple_of(3)) {
                    let next = match cur {
                        "ACTIVE" if mix(h, &[7, k]).is_multiple_of(5) => "ARCHIVED",
                        "ACTIVE" => "PAUSED",
                        "PAUSED" => "ACTIVE",
                        other => other,
                    };
                    (next != cur).then_some(next)
                } else {
                    None
                };
                if let Some(s) = new_status {
                    cur = s;
                }
                let new_name = rename.then(|| format!("{name} (edit {})", k + 1));
                if new_name.is_some() || new_status.is_some() {
                    changes.push(Change { at_s: at, name: new_name, status: new_status });
                }
            }
        }
        let i = self.objs.len();
        self.objs.push(Obj {
            kind,
            id: id.clone(),
            account,
            campaign,
            adset,
            link: None,
            name,
            created_s,
            updated_s,
            status,
            delivery_issue,
            changes,
            h,
        });
        self.by_id.insert(id, i);
        self.accounts[account].objects.entry(kind).or_default().push(i);
        i
    }

    /// Historical activities plus one per scheduled change of the account's objects.
    fn build_activities(&mut self, cfg: &SimConfig, a: usize) {
        let mut acts = Vec::new();
        let hier: Vec<usize> = [Kind::Campaign, Kind::AdSet, Kind::Ad]
            .iter()
            .flat_map(|k| self.accounts[a].objects.get(k).cloned().unwrap_or_default())
            .collect();
        if !hier.is_empty() {
            for i in 0..cfg.activities_per_account {
                let h = mix(self.seed, &[200, a as u64, i as u64]);
                let o = hier[(h % hier.len() as u64) as usize];
                let obj = &self.objs[o];
                let event_s =
                    obj.created_s + ((obj.updated_s - obj.created_s).max(1) as f64 * unit(mix(h, &[1]))) as i64;
                let (event_type, translated) = match (obj.kind, i % 3) {
                    (Kind::Campaign, 0) => ("create_campaign_group", "Campaign created"),
                    (Kind::AdSet, 0) => ("create_campaign", "Ad set created"),
                    (Kind::Ad, 0) => ("create_ad", "Ad created"),
                    (Kind::Campaign, _) => ("update_campaign_budget", "Campaign budget updated"),
                    (Kind::AdSet, _) => ("update_ad_set_target_spec", "Ad set targeting updated"),
                    _ => ("update_ad_creative", "Ad creative updated"),
                };
                acts.push(Activity {
                    event_s,
                    event_type,
                    translated,
                    object: o,
                    object_name: obj.name.clone(),
                    extra: String::from("{}"),
                    actor: 100_000_000_000_000 + h % 5,
                });
            }
        }
        for &o in &hier {
            let obj = &self.objs[o];
            let mut name = obj.name.clone();
            for c in &obj.changes {
                if let Some(n) = &c.name {
                    acts.push(Activity {
                        event_s: c.at_s,
                        event_type: "update_ad_name",
                        translated: "Name updated",
                        object: o,
                        object_name: n.clone(),
                        extra: serde_json::json!({"old_value": name, "new_value": n}).to_string(),
                        actor: 100_000_000_000_001,
                    });
                    name = n.clone();
                }
                if let Some(s) = c.status {
                    acts.push(Activity {
                        event_s: c.at_s,
                        event_type: "update_ad_run_status",
                        translated: "Run status updated",
                        object: o,
                        object_name: name.clone(),
                        extra: serde_json::json!({"new_value": s}).to_string(),
                        actor: 100_000_000_000_002,
                    });
                }
            }
        }
        acts.sort_by(|x, y| x.event_s.cmp(&y.event_s).then(x.object.cmp(&y.object)));
        self.accounts[a].activities = acts;
    }

    /// An object's name, status and `updated_time` at `t_s`.
    pub fn state(&self, i: usize, t_s: i64) -> State {
        let o = &self.objs[i];
        let mut st = State { name: o.name.clone(), status: o.status, updated_s: o.updated_s };
        for c in o.changes.iter().take_while(|c| c.at_s <= t_s) {
            if let Some(n) = &c.name {
                st.name = n.clone();
            }
            if let Some(s) = c.status {
                st.status = s;
            }
            st.updated_s = c.at_s;
        }
        st
    }

    /// Graph's `effective_status` at `t_s`, combining the object's own status with its parents'.
    pub fn effective_status(&self, i: usize, t_s: i64) -> &'static str {
        let o = &self.objs[i];
        let own = self.state(i, t_s).status;
        let gone = |s: &'static str| s == "DELETED" || s == "ARCHIVED";
        let camp = o.campaign.map(|c| self.state(c, t_s).status);
        let adset = o.adset.map(|s| self.state(s, t_s).status);
        if gone(own) {
            return own;
        }
        if let Some(c) = camp.filter(|c| gone(c)) {
            return c;
        }
        if let Some(s) = adset.filter(|s| gone(s)) {
            return s;
        }
        if own == "PAUSED" {
            return own;
        }
        if camp == Some("PAUSED") {
            return "CAMPAIGN_PAUSED";
        }
        if adset == Some("PAUSED") {
            return "ADSET_PAUSED";
        }
        o.delivery_issue.unwrap_or("ACTIVE")
    }

    /// Objects of a kind in an account.
    pub fn of_kind(&self, account: usize, kind: Kind) -> &[usize] {
        self.accounts[account].objects.get(&kind).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The account index for a bare or `act_`-prefixed id.
    pub fn account_index(&self, id: &str) -> Option<usize> {
        let bare = id.strip_prefix("act_").unwrap_or(id);
        self.accounts.iter().position(|a| a.id == bare)
    }
}

/// A 32-hex-digit image hash.
pub fn image_hash(h: u64) -> String {
    format!("{:016x}{:016x}", h, mix(h, &[9]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_world_has_every_status_share_and_some_edits() {
        let cfg = SimConfig { campaigns_per_account: 10, ..SimConfig::default() };
        let w = World::generate(&cfg);
        let statuses: std::collections::BTreeSet<_> =
            w.objs.iter().filter(|o| o.kind == Kind::Ad).map(|o| o.status).collect();
        assert!(statuses.contains("ACTIVE") && statuses.contains("PAUSED"));
        assert!(statuses.contains("ARCHIVED") && statuses.contains("DELETED"));
        assert!(w.objs.iter().any(|o| !o.changes.is_empty()));
        assert_eq!(w.by_id.len(), w.objs.len(), "ids are unique");
    }

    #[test]
    fn edits_only_show_after_their_time() {
        let w = World::generate(&SimConfig::default());
        let Some((i, o)) = w.objs.iter().enumerate().find(|(_, o)| !o.changes.is_empty()) else {
            panic!("no edited object")
        };
        let at = o.changes[0].at_s;
        assert_eq!(w.state(i, at - 1).updated_s, o.updated_s);
        assert_eq!(w.state(i, at).updated_s, at);
    }
}
