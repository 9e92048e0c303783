//! Rendering world objects as Graph JSON, and `fields` selection with unknown-field errors.
//!
//! Each object is rendered in full (every field the simulator populates) and then narrowed to the
//! requested fields. Known-but-unpopulated fields are simply absent, as Graph omits nulls.

use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::fields;
use crate::params::FieldSpec;
use crate::rng::{mix, range};
use crate::time::graph_time;
use crate::world::{Activity, Kind, World, image_hash};

/// Node type of the ad account.
pub const ACCOUNT_NODE: &str = "AdAccount";
/// Node type of activities.
pub const ACTIVITY_NODE: &str = "AdActivity";

/// The fields a node type accepts.
pub fn known_fields(node_type: &str) -> Vec<&'static str> {
    let lists: &[&[&str]] = match node_type {
        ACCOUNT_NODE => &[fields::AD_ACCOUNT],
        "Campaign" => &[fields::CAMPAIGN, fields::CAMPAIGN_EXTRA],
        "AdSet" => &[fields::AD_SET, fields::AD_SET_EXTRA],
        "Ad" => &[fields::AD, fields::AD_EXTRA],
        "AdCreative" => &[fields::AD_CREATIVE],
        ACTIVITY_NODE => &[fields::ACTIVITY],
        "AdImage" => &[fields::IMAGE],
        "AdVideo" => &[fields::VIDEO],
        "CustomConversion" => &[fields::CUSTOM_CONVERSION],
        "CustomAudience" => &[fields::CUSTOM_AUDIENCE],
        "AdReportRun" => &[fields::REPORT_RUN],
        _ => &[],
    };
    lists.iter().flat_map(|l| l.iter().copied()).collect()
}

/// Checks every requested field against the node type; the first unknown one is the error.
pub fn check_fields(specs: &[FieldSpec], node_type: &str) -> Result<(), ApiError> {
    let known = known_fields(node_type);
    for s in specs {
        if !known.contains(&s.name.as_str()) {
            return Err(ApiError::nonexisting_field(&s.name, node_type));
        }
    }
    Ok(())
}

/// Narrows a full rendering to the requested fields (`id` always stays, as on Graph nodes).
pub fn select(world: &World, full: Map<String, Value>, specs: &[FieldSpec], t_s: i64) -> Value {
    let mut out = Map::new();
    for s in specs {
        if let Some(v) = full.get(&s.name) {
            let v = match &s.sub {
                Some(sub) => expand(world, v, sub, t_s),
                None => v.clone(),
            };
            out.insert(s.name.clone(), v);
        }
    }
    if let Some(id) = full.get("id") {
        out.insert("id".into(), id.clone());
    }
    Value::Object(out)
}

/// Renders a nested `x{a,b}` selection: a reference `{"id":..}` to a world object becomes that
/// object narrowed to the sub-fields; other objects are narrowed directly.
fn expand(world: &World, v: &Value, sub: &[FieldSpec], t_s: i64) -> Value {
    if let Some(id) = v.get("id").and_then(Value::as_str)
        && let Some(&i) = world.by_id.get(id)
    {
        return select(world, render_object(world, i, t_s), sub, t_s);
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for s in sub {
                if let Some(x) = m.get(&s.name) {
                    out.insert(s.name.clone(), x.clone());
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Budget in minor units as Graph prints it; JPY has no minor unit, so yen amounts are whole yen.
fn money(currency: &str, major: u64) -> String {
    if currency == "JPY" { (major * 150).to_string() } else { (major * 100).to_string() }
}

/// Campaign objectives handed out by hash.
const OBJECTIVES: &[&str] =
    &["OUTCOME_SALES", "OUTCOME_TRAFFIC", "OUTCOME_AWARENESS", "OUTCOME_LEADS", "OUTCOME_ENGAGEMENT"];

/// A campaign's objective, from its hash (shared with insight rows).
pub fn objective(h: u64) -> &'static str {
    OBJECTIVES[(h % OBJECTIVES.len() as u64) as usize]
}

/// The full Graph rendering of an ad account.
pub fn render_account(world: &World, a: usize, t_s: i64) -> Map<String, Value> {
    let acc = &world.accounts[a];
    let h = mix(world.seed, &[300, a as u64]);
    let off = acc.offset_s;
    let v = json!({
        "id": format!("act_{}", acc.id),
        "account_id": acc.id,
        "name": acc.name,
        "account_status": acc.status,
        "age": ((t_s - acc.created_s) as f64 / 86_400.0 * 100.0).round() / 100.0,
        "amount_spent": range(h, 100_000, 9_000_000).to_string(),
        "balance": "0",
        "business": {"id": (900_000_000_000_000u64 + a as u64).to_string(), "name": format!("Sim Business {}", a + 1)},
        "business_name": format!("Sim Business {}", a + 1),
        "business_city": "Springfield",
        "business_country_code": "US",
        "business_state": "IL",
        "business_street": "1 Main St",
        "business_zip": "62701",
        "can_create_brand_lift_study": false,
        "capabilities": [],
        "created_time": graph_time(acc.created_s, off),
        "currency": acc.currency,
        "disable_reason": 0,
        "end_advertiser": 900_000_000_000_000u64 + a as u64,
        "end_advertiser_name": format!("Sim Business {}", a + 1),
        "failed_delivery_checks": [],
        "fb_entity": 85,
        "funding_source": 3_000_000_000_000_000u64 + a as u64,
        "funding_source_details": {"id": (3_000_000_000_000_000u64 + a as u64).to_string(), "display_string": "Visa *1234", "type": 1},
        "has_migrated_permissions": true,
        "is_attribution_spec_system_default": true,
        "is_direct_deals_enabled": false,
        "is_in_3ds_authorization_enabled_market": false,
        "is_notifications_enabled": true,
        "is_personal": 0,
        "is_prepay_account": false,
        "is_tax_id_required": false,
        "min_campaign_group_spend_cap": 10_000,
        "min_daily_budget": 100,
        "offsite_pixels_tos_accepted": true,
        "owner": 900_000_000_000_000u64 + a as u64,
        "spend_cap": "0",
        "tax_id_status": 0,
        "timezone_id": acc.tz_id,
        "timezone_name": acc.tz_name,
        "timezone_offset_hours_utc": f64::from(off) / 3600.0,
        "tos_accepted": {"web_custom_audience_tos": 1},
        "user_tasks": ["DRAFT", "ANALYZE", "ADVERTISE", "MANAGE"],
        "user_tos_accepted": {"custom_audience_tos": 1},
    });
    as_map(v)
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The full Graph rendering of any object at `t_s`.
pub fn render_object(world: &World, i: usize, t_s: i64) -> Map<String, Value> {
    let o = &world.objs[i];
    let acc = &world.accounts[o.account];
    let off = acc.offset_s;
    let st = world.state(i, t_s);
    let h = o.h;
    let created = graph_time(o.created_s, off);
    let updated = graph_time(st.updated_s, off);
    let page_id = (110_000_000_000_000u64 + o.account as u64).to_string();
    let v = match o.kind {
        Kind::Campaign => {
            let lifetime = mix(h, &[10]).is_multiple_of(4);
            let mut v = json!({
                "id": o.id, "account_id": acc.id, "name": st.name,
                "objective": objective(h),
                "status": st.status, "configured_status": st.status,
                "effective_status": world.effective_status(i, t_s),
                "buying_type": "AUCTION", "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
                "budget_remaining": money(acc.currency, range(mix(h, &[11]), 5, 400)),
                "created_time": created, "updated_time": updated, "start_time": created,
                "special_ad_category": "NONE", "special_ad_category_country": [],
                "smart_promotion_type": "GUIDED_CREATION", "budget_rebalance_flag": false,
                "source_campaign_id": "0", "can_use_spend_cap": true,
            });
            // Graph's sentinel for a campaign that never had a start time (the recorded corpus).
            if mix(h, &[14]).is_multiple_of(5) {
                v["start_time"] = json!("1969-12-31T15:59:59-0800");
            }
            if lifetime {
                v["lifetime_budget"] = json!(money(acc.currency, range(mix(h, &[12]), 1000, 20_000)));
                v["stop_time"] = json!(graph_time(o.created_s + 60 * 86_400, off));
            } else {
                v["daily_budget"] = json!(money(acc.currency, range(mix(h, &[12]), 20, 500)));
            }
            v
        }
        Kind::AdSet => {
            let camp = o.campaign.map(|c| world.objs[c].id.clone()).unwrap_or_default();
            json!({
                "id": o.id, "account_id": acc.id, "campaign_id": camp, "campaign": {"id": camp},
                "name": st.name, "status": st.status, "configured_status": st.status,
                "effective_status": world.effective_status(i, t_s),
                "daily_budget": money(acc.currency, range(mix(h, &[13]), 10, 200)),
                "budget_remaining": money(acc.currency, range(mix(h, &[14]), 1, 100)),
                "bid_strategy": "LOWEST_COST_WITHOUT_CAP", "bid_amount": range(mix(h, &[15]), 50, 500),
                "bid_info": {"ACTIONS": range(mix(h, &[15]), 50, 500)},
                "billing_event": "IMPRESSIONS", "optimization_goal": "OFFSITE_CONVERSIONS",
                "created_time": created, "updated_time": updated, "start_time": created,
                "targeting": targeting(h),
                "promoted_object": {"pixel_id": (130_000_000_000_000u64 + o.account as u64).to_string(), "custom_event_type": "PURCHASE"},
                "learning_stage_info": {"status": if h.is_multiple_of(3) { "LEARNING" } else { "SUCCESS" }},
            })
        }
        Kind::Ad => {
            let camp = o.campaign.map(|c| world.objs[c].id.clone()).unwrap_or_default();
            let adset = o.adset.map(|c| world.objs[c].id.clone()).unwrap_or_default();
            let creative = o.link.map(|c| world.objs[c].id.clone()).unwrap_or_default();
            json!({
                "id": o.id, "account_id": acc.id, "campaign_id": camp, "adset_id": adset,
                "campaign": {"id": camp}, "adset": {"id": adset},
                "name": st.name, "status": st.status, "configured_status": st.status,
                "effective_status": world.effective_status(i, t_s),
                "creative": {"id": creative},
                "created_time": created, "updated_time": updated,
                "bid_type": "ABSOLUTE_OCPM", "bid_amount": range(mix(h, &[16]), 50, 500),
                "bid_info": {"ACTIONS": range(mix(h, &[16]), 50, 500)},
                "last_updated_by_app_id": "119211728144504", "source_ad_id": "0",
                "targeting": targeting(o.adset.map(|s| world.objs[s].h).unwrap_or(h)),
                "preview_shareable_link": format!("https://fb.me/sim{}", h % 1_000_000),
            })
        }
        Kind::Creative => {
            let ih = image_hash(mix(h, &[17]));
            let link = format!("https://shop.example.com/p/{}", h % 10_000);
            json!({
                "id": o.id, "account_id": acc.id, "name": st.name, "status": "ACTIVE",
                "title": format!("Deal {}", h % 100), "body": "Fresh picks, shipped free.",
                "object_type": "SHARE", "actor_id": page_id, "call_to_action_type": "SHOP_NOW",
                "image_hash": ih, "image_url": format!("https://scontent.xx.fbcdn.net/sim-cdn/img/{ih}.png"),
                "thumbnail_url": format!("https://scontent.xx.fbcdn.net/sim-cdn/thumb/{}.png", o.id),
                "link_url": link, "url_tags": "utm_source=facebook&utm_medium=paid",
                "effective_object_story_id": format!("{page_id}_{}", 500_000_000_000_000u64 + h % 1_000_000_000),
                "object_story_spec": {"page_id": page_id, "link_data": {"link": link, "message": "Fresh picks, shipped free.", "image_hash": ih, "call_to_action": {"type": "SHOP_NOW", "value": {"link": link}}}},
            })
        }
        Kind::Image => {
            let hash = o.id.split_once(':').map(|(_, x)| x.to_string()).unwrap_or_default();
            let (wd, ht) = [(1200, 628), (1080, 1080), (1080, 1920)][(h % 3) as usize];
            let creatives: Vec<String> = world
                .of_kind(o.account, Kind::Creative)
                .iter()
                .filter(|&&c| mix(world.objs[c].h, &[h]).is_multiple_of(4))
                .map(|&c| world.objs[c].id.clone())
                .collect();
            json!({
                "id": o.id, "account_id": acc.id, "hash": hash, "name": st.name,
                "url": format!("https://scontent.xx.fbcdn.net/sim-cdn/img/{hash}.png"),
                "url_128": format!("https://scontent.xx.fbcdn.net/sim-cdn/img128/{hash}.png"),
                "permalink_url": format!("https://www.facebook.com/ads/image/?d={hash}"),
                "width": wd, "height": ht, "original_width": wd, "original_height": ht,
                "status": "ACTIVE", "created_time": created, "updated_time": updated,
                "is_associated_creatives_in_adgroups": !creatives.is_empty(), "creatives": creatives,
            })
        }
        Kind::Video => json!({
            "id": o.id, "account_id": acc.id, "title": st.name, "description": "A short product clip.",
            "created_time": created, "updated_time": updated,
            "length": (range(mix(h, &[18]), 50, 600) as f64) / 10.0,
            "source": format!("https://video.xx.fbcdn.net/sim-cdn/v/{}.mp4", o.id),
            "permalink_url": format!("/{page_id}/videos/{}/", o.id),
            "embed_html": format!("<iframe src=\"https://www.facebook.com/plugins/video.php?href=%2Fvideos%2F{}\"></iframe>", o.id),
            "embeddable": true, "icon": "https://static.xx.fbcdn.net/rsrc.php/video.png",
            "is_crosspost_video": false, "is_crossposting_eligible": false, "is_episode": false,
            "is_instagram_eligible": true, "live_status": "VOD", "published": true,
            "post_views": range(mix(h, &[19]), 0, 5000), "views": range(mix(h, &[19]), 0, 5000),
            "content_category": "OTHER", "universal_video_id": format!("{}", h % 1_000_000_000),
            "custom_labels": [], "ad_breaks": [], "content_tags": [],
        }),
        Kind::CustomConversion => json!({
            "id": o.id, "account_id": acc.id, "name": st.name, "description": "Purchases above a value",
            "custom_event_type": "PURCHASE", "creation_time": created,
            "first_fired_time": graph_time(o.created_s + 3600, off),
            "last_fired_time": graph_time(o.updated_s, off),
            "default_conversion_value": 0, "event_source_type": "pixel",
            "is_archived": false, "is_unavailable": false, "retention_days": 0,
            "rule": "{\"and\":[{\"event\":{\"eq\":\"Purchase\"}}]}",
        }),
        Kind::CustomAudience => {
            let lookalike = h.is_multiple_of(3);
            let lo = range(mix(h, &[20]), 1000, 900_000);
            let mut v = json!({
                "id": o.id, "account_id": acc.id, "name": st.name, "description": "",
                "subtype": if lookalike { "LOOKALIKE" } else { "WEBSITE" },
                "approximate_count_lower_bound": lo, "approximate_count_upper_bound": lo + lo / 5,
                "data_source": {"type": "EVENT_BASED", "sub_type": "WEB_PIXEL_COMBINATION_EVENTS", "creation_params": "[]"},
                "delivery_status": {"code": 200, "description": "This audience is ready for use."},
                "operation_status": {"code": 200, "description": "Normal"},
                "permission_for_actions": {"can_edit": true, "can_see_insight": "True", "can_share": "True", "subtype_supports_lookalike": "True", "supports_recipient_lookalike": "False"},
                "retention_days": 180, "rule": "{\"inclusions\":{\"operator\":\"or\"}}",
                "time_created": o.created_s, "time_updated": st.updated_s, "time_content_updated": st.updated_s,
                "is_value_based": false, "opt_out_link": "", "page_deletion_marked_delete_time": 0,
                "pixel_id": (130_000_000_000_000u64 + o.account as u64).to_string(),
                "sharing_status": {"sharing_relationship_id": 0, "status": "NOT_SHARED"},
            });
            if lookalike {
                v["lookalike_spec"] = json!({"country": "US", "ratio": 0.01, "type": "custom_ratio"});
            }
            v
        }
    };
    as_map(v)
}

fn targeting(h: u64) -> Value {
    let countries = [["US"], ["GB"], ["DE"], ["JP"]][(h % 4) as usize];
    json!({
        "age_min": 18 + (h % 3) * 5, "age_max": 65,
        "geo_locations": {"countries": countries, "location_types": ["home", "recent"]},
        "publisher_platforms": ["facebook", "instagram"],
        "facebook_positions": ["feed", "story"], "instagram_positions": ["stream", "story", "reels"],
        "device_platforms": ["mobile", "desktop"],
    })
}

/// The full Graph rendering of an activity.
pub fn render_activity(world: &World, a: usize, act: &Activity) -> Map<String, Value> {
    let acc = &world.accounts[a];
    let o = &world.objs[act.object];
    let local = chrono::DateTime::from_timestamp(act.event_s + i64::from(acc.offset_s), 0)
        .map(|t| t.format("%m/%d/%Y at %-I:%M %p").to_string())
        .unwrap_or_default();
    let object_type = match o.kind {
        Kind::Campaign => "CAMPAIGN_GROUP",
        Kind::AdSet => "CAMPAIGN",
        _ => "ADGROUP",
    };
    as_map(json!({
        "actor_id": act.actor.to_string(),
        "actor_name": format!("Sim User {}", act.actor % 10),
        "application_id": "119211728144504",
        "application_name": "Ads Manager",
        "date_time_in_timezone": local,
        "event_time": graph_time(act.event_s, 0),
        "event_type": act.event_type,
        "extra_data": act.extra,
        "object_id": o.id,
        "object_name": act.object_name,
        "object_type": object_type,
        "translated_event_type": act.translated,
    }))
}
