//! Per-(ad, day, breakdown) metric cells and their rendering as Graph insight rows.
//!
//! Counts live at the finest grain — one ad, one day, one breakdown tuple, one action-breakdown
//! tuple — and every coarser row is the sum of those cells, so ad-level rows always add up to the
//! campaign, ad set and account rows. Ratios (cpc, ctr, cpm, frequency, cost per action) are
//! recomputed from the summed counts at render time. Graph prints every metric as a string.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Action types every delivering ad reports, in output order.
pub const ACTION_TYPES: &[&str] = &[
    "link_click",
    "landing_page_view",
    "offsite_conversion.fb_pixel_add_to_cart",
    "offsite_conversion.fb_pixel_purchase",
    "page_engagement",
    "post_engagement",
    "video_view",
];

/// Index of the purchase action type in [`ACTION_TYPES`] (drives values, conversions, ROAS).
const PURCHASE: usize = 3;
/// Index of add-to-cart in [`ACTION_TYPES`].
const ADD_TO_CART: usize = 2;

/// Attribution windows the simulator tracks, in the order of the count arrays.
/// `7d_view`/`28d_view` are absent on purpose: Graph stopped returning them in January 2026.
pub const WINDOWS: &[&str] = &["1d_click", "7d_click", "28d_click", "1d_view", "1d_ev"];

/// Number of tracked windows.
pub const NW: usize = 5;

/// Counts of one cell (or a sum of cells). Money is in minor units (cents).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Impressions.
    pub impressions: u64,
    /// All clicks.
    pub clicks: u64,
    /// Spend in cents.
    pub spend: u64,
    /// Reach (treated as additive — a simplification of Graph's deduplicated reach).
    pub reach: u64,
    /// Inline link clicks.
    pub link_clicks: u64,
    /// Unique clicks.
    pub unique_clicks: u64,
    /// Unique link clicks.
    pub unique_link_clicks: u64,
    /// Outbound clicks.
    pub outbound: u64,
    /// Video plays, then 25/50/75/95/100 % watched, 15 s, 30 s and 2 s continuous views.
    pub video: [u64; 9],
    /// Action counts per (action type index, action-breakdown tuple index) per window.
    pub actions: BTreeMap<(usize, usize), [u64; NW]>,
    /// Action values (cents) keyed like `actions`.
    pub values: BTreeMap<(usize, usize), [u64; NW]>,
}

impl Cell {
    /// Adds another cell into this one.
    pub fn add(&mut self, o: &Cell) {
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.spend += o.spend;
        self.reach += o.reach;
        self.link_clicks += o.link_clicks;
        self.unique_clicks += o.unique_clicks;
        self.unique_link_clicks += o.unique_link_clicks;
        self.outbound += o.outbound;
        for (a, b) in self.video.iter_mut().zip(o.video.iter()) {
            *a += b;
        }
        for (k, v) in &o.actions {
            let e = self.actions.entry(*k).or_insert([0; NW]);
            for (a, b) in e.iter_mut().zip(v.iter()) {
                *a += b;
            }
        }
        for (k, v) in &o.values {
            let e = self.values.entry(*k).or_insert([0; NW]);
            for (a, b) in e.iter_mut().zip(v.iter()) {
                *a += b;
            }
        }
    }

    /// Splits this cell over `weights` (largest remainder per count, so shares sum exactly),
    /// then clamps each share so that no count exceeds its impressions.
    pub fn split(&self, weights: &[u64]) -> Vec<Cell> {
        let n = weights.len();
        let mut out = vec![Cell::default(); n];
        macro_rules! scalar {
            ($f:ident) => {
                for (i, s) in split_count(self.$f, weights).into_iter().enumerate() {
                    out[i].$f = s;
                }
            };
        }
        scalar!(impressions);
        scalar!(clicks);
        scalar!(spend);
        scalar!(reach);
        scalar!(link_clicks);
        scalar!(unique_clicks);
        scalar!(unique_link_clicks);
        scalar!(outbound);
        for v in 0..self.video.len() {
            for (i, s) in split_count(self.video[v], weights).into_iter().enumerate() {
                out[i].video[v] = s;
            }
        }
        for (map_in, pick) in [(&self.actions, 0), (&self.values, 1)] {
            for (k, arr) in map_in {
                let mut parts = vec![[0u64; NW]; n];
                for w in 0..NW {
                    for (i, s) in split_count(arr[w], weights).into_iter().enumerate() {
                        parts[i][w] = s;
                    }
                }
                for (i, p) in parts.into_iter().enumerate() {
                    if p.iter().any(|x| *x > 0) {
                        let m = if pick == 0 { &mut out[i].actions } else { &mut out[i].values };
                        m.insert(*k, p);
                    }
                }
            }
        }
        for c in &mut out {
            c.clamp();
        }
        out
    }

    /// Keeps the cell plausible after splitting: nothing happens without impressions.
    fn clamp(&mut self) {
        if self.impressions == 0 {
            *self = Cell::default();
            return;
        }
        self.reach = self.reach.clamp(1, self.impressions);
        self.clicks = self.clicks.min(self.impressions);
        self.link_clicks = self.link_clicks.min(self.clicks);
        self.unique_clicks = self.unique_clicks.min(self.clicks);
        self.unique_link_clicks = self.unique_link_clicks.min(self.link_clicks);
        self.outbound = self.outbound.min(self.link_clicks);
    }

    /// Re-keys every action entry `(t, 0)` into `(t, j)` shares over the action-breakdown tuples.
    pub fn split_actions(&mut self, weights_for: impl Fn(usize) -> Vec<u64>) {
        for map in [&mut self.actions, &mut self.values] {
            let old = std::mem::take(map);
            for ((t, _), arr) in old {
                let weights = weights_for(t);
                let mut parts = vec![[0u64; NW]; weights.len()];
                for w in 0..NW {
                    for (j, s) in split_count(arr[w], &weights).into_iter().enumerate() {
                        parts[j][w] = s;
                    }
                }
                for (j, p) in parts.into_iter().enumerate() {
                    if p.iter().any(|x| *x > 0) {
                        map.insert((t, j), p);
                    }
                }
            }
        }
    }
}

/// Largest-remainder split of `total` proportionally to `weights`; ties go to the lower index.
pub fn split_count(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u64 = weights.iter().sum();
    if sum == 0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let t = u128::from(total);
    let s = u128::from(sum);
    let mut shares: Vec<u64> = weights.iter().map(|w| (t * u128::from(*w) / s) as u64).collect();
    let assigned: u64 = shares.iter().sum();
    let mut order: Vec<(u128, usize)> = weights.iter().enumerate().map(|(i, w)| (t * u128::from(*w) % s, i)).collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in order.into_iter().take((total - assigned) as usize) {
        shares[i] += 1;
    }
    shares
}

/// Cents as Graph prints money: `14.35`, `3.2`, `7`.
pub fn money(cents: u64) -> String {
    trim(format!("{}.{:02}", cents / 100, cents % 100))
}

/// A ratio with up to six decimals, trailing zeros trimmed.
pub fn ratio(x: f64) -> String {
    trim(format!("{x:.6}"))
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// How the action lists of a row are labelled.
#[derive(Debug, Clone)]
pub struct ActionLabels {
    /// Names of the action-breakdown keys other than `action_type`.
    pub keys: Vec<String>,
    /// Values of those keys per tuple index.
    pub tuples: Vec<Vec<String>>,
    /// Requested attribution windows that the simulator tracks (indices into [`WINDOWS`]).
    pub windows: Vec<usize>,
}

impl ActionLabels {
    fn entry(&self, t: usize, j: usize, arr: &[u64; NW], money_values: bool) -> Option<Value> {
        let value = arr[1] + arr[3];
        if value == 0 && arr.iter().all(|x| *x == 0) {
            return None;
        }
        let fmt = |x: u64| if money_values { money(x) } else { x.to_string() };
        let mut m = Map::new();
        m.insert("action_type".into(), json!(ACTION_TYPES[t]));
        if let Some(vals) = self.tuples.get(j) {
            for (k, v) in self.keys.iter().zip(vals.iter()) {
                m.insert(k.clone(), json!(v));
            }
        }
        m.insert("value".into(), json!(fmt(value)));
        for &w in &self.windows {
            if arr[w] > 0 {
                m.insert(WINDOWS[w].into(), json!(fmt(arr[w])));
            }
        }
        Some(Value::Object(m))
    }

    fn list(&self, map: &BTreeMap<(usize, usize), [u64; NW]>, only: Option<&[usize]>, money_values: bool) -> Value {
        let v: Vec<Value> = map
            .iter()
            .filter(|((t, _), _)| only.is_none_or(|o| o.contains(t)))
            .filter_map(|((t, j), arr)| self.entry(*t, *j, arr, money_values))
            .collect();
        Value::Array(v)
    }

    /// Cost per action entries: spend divided by the action count, per entry.
    fn cost_list(&self, c: &Cell, only: Option<&[usize]>) -> Value {
        let v: Vec<Value> = c
            .actions
            .iter()
            .filter(|((t, _), _)| only.is_none_or(|o| o.contains(t)))
            .filter_map(|((t, j), arr)| {
                let value = arr[1] + arr[3];
                (value > 0).then(|| {
                    let mut m = Map::new();
                    m.insert("action_type".into(), json!(ACTION_TYPES[*t]));
                    if let Some(vals) = self.tuples.get(*j) {
                        for (k, v) in self.keys.iter().zip(vals.iter()) {
                            m.insert(k.clone(), json!(v));
                        }
                    }
                    m.insert("value".into(), json!(ratio(c.spend as f64 / 100.0 / value as f64)));
                    Value::Object(m)
                })
            })
            .collect();
        Value::Array(v)
    }
}

fn single(action_type: &str, value: String) -> Value {
    json!([{ "action_type": action_type, "value": value }])
}

/// Renders one metric field of a row, or `None` when the simulator does not produce it (or its
/// denominator is zero, where Graph omits the ratio).
pub fn metric(field: &str, c: &Cell, labels: &ActionLabels) -> Option<Value> {
    let s = |x: u64| Some(json!(x.to_string()));
    let r = |num: f64, den: u64| if den == 0 { None } else { Some(json!(ratio(num / den as f64))) };
    let dollars = c.spend as f64 / 100.0;
    let purchases: u64 = c.actions.iter().filter(|((t, _), _)| *t == PURCHASE).map(|(_, a)| a[1] + a[3]).sum();
    let purchase_value: u64 = c.values.iter().filter(|((t, _), _)| *t == PURCHASE).map(|(_, a)| a[1] + a[3]).sum();
    let conv: &[usize] = &[ADD_TO_CART, PURCHASE];
    match field {
        "impressions" => s(c.impressions),
        "clicks" => s(c.clicks),
        "spend" => Some(json!(money(c.spend))),
        "reach" => s(c.reach),
        "frequency" => r(c.impressions as f64, c.reach),
        "cpc" => r(dollars, c.clicks),
        "cpm" => r(dollars * 1000.0, c.impressions),
        "cpp" => r(dollars * 1000.0, c.reach),
        "ctr" => r(c.clicks as f64 * 100.0, c.impressions),
        "unique_clicks" => s(c.unique_clicks),
        "unique_ctr" => r(c.unique_clicks as f64 * 100.0, c.reach),
        "inline_link_clicks" => s(c.link_clicks),
        "unique_inline_link_clicks" => s(c.unique_link_clicks),
        "inline_link_click_ctr" => r(c.link_clicks as f64 * 100.0, c.impressions),
        "unique_inline_link_click_ctr" | "unique_link_clicks_ctr" => r(c.unique_link_clicks as f64 * 100.0, c.reach),
        "inline_post_engagement" => s(c.clicks + c.video[0]),
        "cost_per_inline_link_click" => r(dollars, c.link_clicks),
        "cost_per_unique_inline_link_click" => r(dollars, c.unique_link_clicks),
        "cost_per_inline_post_engagement" => r(dollars, c.clicks + c.video[0]),
        "cost_per_unique_click" => r(dollars, c.unique_clicks),
        "actions" => Some(labels.list(&c.actions, None, false)),
        "action_values" => Some(labels.list(&c.values, None, true)),
        "conversions" => Some(labels.list(&c.actions, Some(conv), false)),
        "conversion_values" => Some(labels.list(&c.values, Some(conv), true)),
        "cost_per_action_type" => Some(labels.cost_list(c, None)),
        "cost_per_conversion" => Some(labels.cost_list(c, Some(conv))),
        "outbound_clicks" => Some(single("outbound_click", c.outbound.to_string())),
        "unique_outbound_clicks" => Some(single("outbound_click", (c.outbound * 9 / 10).to_string())),
        "outbound_clicks_ctr" => r(c.outbound as f64 * 100.0, c.impressions)
            .map(|v| single("outbound_click", v.as_str().unwrap_or("0").into())),
        "cost_per_outbound_click" => {
            r(dollars, c.outbound).map(|v| single("outbound_click", v.as_str().unwrap_or("0").into()))
        }
        "website_ctr" => r(c.link_clicks as f64 * 100.0, c.impressions)
            .map(|v| single("link_click", v.as_str().unwrap_or("0").into())),
        "purchase_roas" | "website_purchase_roas" => {
            if purchases == 0 {
                None
            } else {
                r(purchase_value as f64, c.spend).map(|v| single("omni_purchase", v.as_str().unwrap_or("0").into()))
            }
        }
        "video_play_actions" => (c.video[0] > 0).then(|| single("video_view", c.video[0].to_string())),
        "video_p25_watched_actions" => (c.video[1] > 0).then(|| single("video_view", c.video[1].to_string())),
        "video_p50_watched_actions" => (c.video[2] > 0).then(|| single("video_view", c.video[2].to_string())),
        "video_p75_watched_actions" => (c.video[3] > 0).then(|| single("video_view", c.video[3].to_string())),
        "video_p95_watched_actions" => (c.video[4] > 0).then(|| single("video_view", c.video[4].to_string())),
        "video_p100_watched_actions" => (c.video[5] > 0).then(|| single("video_view", c.video[5].to_string())),
        "video_15_sec_watched_actions" => (c.video[6] > 0).then(|| single("video_view", c.video[6].to_string())),
        "video_30_sec_watched_actions" => (c.video[7] > 0).then(|| single("video_view", c.video[7].to_string())),
        "video_continuous_2_sec_watched_actions" => {
            (c.video[8] > 0).then(|| single("video_view", c.video[8].to_string()))
        }
        "cost_per_thruplay" => r(dollars, c.video[6]).map(|v| single("video_view", v.as_str().unwrap_or("0").into())),
        "cost_per_15_sec_video_view" => {
            r(dollars, c.video[6]).map(|v| single("video_view", v.as_str().unwrap_or("0").into()))
        }
        "cost_per_2_sec_continuous_video_view" => {
            r(dollars, c.video[8]).map(|v| single("video_view", v.as_str().unwrap_or("0").into()))
        }
        "social_spend" => Some(json!("0")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_split_sums_exactly() {
        let s = split_count(10, &[1, 1, 1]);
        assert_eq!(s.iter().sum::<u64>(), 10);
        assert_eq!(s, vec![4, 3, 3]);
        assert_eq!(split_count(7, &[0, 0]), vec![0, 0]);
    }

    #[test]
    fn money_and_ratios_print_like_graph() {
        assert_eq!(money(1435), "14.35");
        assert_eq!(money(320), "3.2");
        assert_eq!(money(700), "7");
        assert_eq!(ratio(1.5944444444), "1.594444");
    }
}
