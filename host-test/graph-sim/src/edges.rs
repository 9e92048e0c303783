//! Account edges: which objects a listing returns, in which order, under which filters.
//!
//! Shared by the request path and the ground-truth oracle so both agree by construction.
//! Visibility (graph-api.md §2.4): campaign, ad set and ad listings hide ARCHIVED and DELETED
//! objects unless a status filter asks for them.

use crate::errors::ApiError;
use crate::params::{Filter, Params, parse_filtering};
use crate::world::{Kind, World};

/// An account edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// An edge of world objects of one kind.
    Objects(Kind),
    /// `activities`.
    Activities,
}

/// Parses an edge name.
pub fn edge(name: &str) -> Option<Edge> {
    Some(match name {
        "campaigns" => Edge::Objects(Kind::Campaign),
        "adsets" => Edge::Objects(Kind::AdSet),
        "ads" => Edge::Objects(Kind::Ad),
        "adcreatives" => Edge::Objects(Kind::Creative),
        "adimages" => Edge::Objects(Kind::Image),
        "advideos" => Edge::Objects(Kind::Video),
        "customconversions" => Edge::Objects(Kind::CustomConversion),
        "customaudiences" => Edge::Objects(Kind::CustomAudience),
        "activities" => Edge::Activities,
        _ => return None,
    })
}

/// Whether the kind has campaign-style statuses.
fn hierarchical(k: Kind) -> bool {
    matches!(k, Kind::Campaign | Kind::AdSet | Kind::Ad)
}

/// What to list: the parsed filters of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// `effective_status IN` values (empty = default visibility).
    pub statuses: Vec<String>,
    /// `effective_status NOT_IN` values.
    pub not_statuses: Vec<String>,
    /// Strict lower bound on `updated_time`, epoch s.
    pub updated_after: Option<i64>,
    /// Inclusive lower bound on `updated_time`, epoch s.
    pub updated_from: Option<i64>,
    /// Strict upper bound on `updated_time`, epoch s.
    pub updated_before: Option<i64>,
}

/// Reads `filtering`, `effective_status` and `updated_since` for an object edge.
pub fn list_query(kind: Kind, params: &Params) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery::default();
    if let Some(raw) = params.get("filtering") {
        for f in parse_filtering(raw)? {
            apply_filter(kind, &f, &mut q)?;
        }
    }
    if let Some(list) = params.list("effective_status")? {
        if !hierarchical(kind) {
            return Err(ApiError::invalid_param("effective_status is not a valid parameter for this edge"));
        }
        q.statuses.extend(list);
    }
    if let Some(s) = params.get("updated_since")
        && matches!(kind, Kind::AdSet | Kind::Ad)
    {
        let v: i64 = s.trim().parse().map_err(|_| ApiError::invalid_param("updated_since must be an integer"))?;
        q.updated_after = Some(q.updated_after.map_or(v, |x| x.max(v)));
    }
    Ok(q)
}

fn apply_filter(kind: Kind, f: &Filter, q: &mut ListQuery) -> Result<(), ApiError> {
    let (prefix, field) = f.split();
    if prefix.is_some_and(|p| p != kind.entity_prefix()) {
        return Err(ApiError::filtering_unsupported(&f.field, &f.op));
    }
    let unsupported = || ApiError::filtering_unsupported(&f.field, &f.op);
    match (field, f.op.as_str()) {
        ("effective_status", "IN") if hierarchical(kind) => q.statuses.extend(f.strings()),
        ("effective_status", "NOT_IN") if hierarchical(kind) => q.not_statuses.extend(f.strings()),
        ("updated_time", op) => {
            let v =
                f.int().ok_or_else(|| ApiError::invalid_param("updated_time filter value must be a unix timestamp"))?;
            match op {
                "GREATER_THAN" => q.updated_after = Some(q.updated_after.map_or(v, |x| x.max(v))),
                "GREATER_THAN_OR_EQUAL" => q.updated_from = Some(v),
                "LESS_THAN" => q.updated_before = Some(v),
                _ => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    }
    Ok(())
}

/// The objects of an object edge at `t_s`, in Graph's order: images and videos newest
/// `updated_time` first, everything else newest created first.
pub fn list_objects(world: &World, account: usize, kind: Kind, q: &ListQuery, t_s: i64) -> Vec<usize> {
    let mut out: Vec<(i64, usize)> = Vec::new();
    for &i in world.of_kind(account, kind) {
        let o = &world.objs[i];
        if o.created_s > t_s {
            continue;
        }
        let st = world.state(i, t_s);
        if hierarchical(kind) {
            let eff = world.effective_status(i, t_s);
            if q.statuses.is_empty() {
                if eff == "ARCHIVED" || eff == "DELETED" {
                    continue;
                }
            } else if !q.statuses.iter().any(|s| s == eff) {
                continue;
            }
            if q.not_statuses.iter().any(|s| s == eff) {
                continue;
            }
        }
        if q.updated_after.is_some_and(|v| st.updated_s <= v)
            || q.updated_from.is_some_and(|v| st.updated_s < v)
            || q.updated_before.is_some_and(|v| st.updated_s >= v)
        {
            continue;
        }
        let key = if matches!(kind, Kind::Image | Kind::Video) { st.updated_s } else { o.created_s };
        out.push((key, i));
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    out.into_iter().map(|(_, i)| i).collect()
}

/// Parses an activities bound: epoch seconds or `YYYY-MM-DD` (UTC midnight).
fn bound(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => {
            let v = v.trim();
            if let Ok(n) = v.parse::<i64>() {
                return Ok(Some(n));
            }
            crate::time::parse_date(v)
                .map(|d| Some(crate::time::day_number(d) * crate::time::DAY_S))
                .ok_or_else(|| ApiError::invalid_param(format!("{name} must be a unix timestamp or a date")))
        }
    }
}

/// Indices into the account's activities, newest first, within `since`/`until` (inclusive
/// bounds, epoch s) and not after `t_s`.
pub fn list_activities(world: &World, account: usize, params: &Params, t_s: i64) -> Result<Vec<usize>, ApiError> {
    let since = bound(params, "since")?;
    let until = bound(params, "until")?;
    Ok(activities_between(world, account, since, until, t_s))
}

/// Activity indices newest first within optional inclusive bounds.
pub fn activities_between(
    world: &World,
    account: usize,
    since: Option<i64>,
    until: Option<i64>,
    t_s: i64,
) -> Vec<usize> {
    let acts = &world.accounts[account].activities;
    let mut idx: Vec<usize> = (0..acts.len())
        .filter(|&i| {
            let e = acts[i].event_s;
            e <= t_s && since.is_none_or(|s| e >= s) && until.is_none_or(|u| e <= u)
        })
        .collect();
    idx.reverse();
    idx
}
