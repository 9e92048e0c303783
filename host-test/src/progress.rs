//! What a person watching a sync sees on stderr: a live line on a terminal, a line every
//! ten seconds otherwise, and a closing summary.

use crate::runtime::Progress;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// 200 ms: a live line redrawn faster than this only flickers.
const LIVE_EVERY: Duration = Duration::from_millis(200);
/// 10 s: often enough to follow a sync in a log file, rare enough not to drown it.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Renders progress snapshots on stderr.
pub struct ProgressView {
    live: bool,
    started: Instant,
    last: Option<Instant>,
    shown: bool,
    latest: Option<Progress>,
}

impl Default for ProgressView {
    fn default() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line describing `p`, `elapsed` into the sync.
pub fn line(p: &Progress, elapsed: Duration) -> String {
    let total: u64 = p.streams.iter().map(|s| s.records).sum();
    let done = p.streams.iter().filter(|s| s.status == "complete" || s.status == "incomplete").count();
    let secs = elapsed.as_secs();
    let mut out = format!(
        "[{:02}:{:02}] streams {done}/{} | records {}",
        secs / 60,
        secs % 60,
        p.streams.len(),
        thousands(total)
    );
    if !p.active.is_empty() {
        // Several streams are read at once: name the first three, count the rest.
        let names: Vec<&str> = p.active.iter().take(3).map(String::as_str).collect();
        let more = p.active.len().saturating_sub(3);
        let more = if more > 0 { format!(" +{more}") } else { String::new() };
        out.push_str(&format!(
            " | reading {}{more} (accounts {}/{})",
            names.join(", "),
            p.accounts_done,
            p.accounts_total
        ));
    }
    if p.jobs_running > 0 || p.jobs_completed > 0 {
        out.push_str(&format!(
            " | jobs {} running, {} read, {} retried, {} split",
            p.jobs_running, p.jobs_completed, p.jobs_retried, p.jobs_split
        ));
    }
    out.push_str(&format!(" | requests {}", thousands(p.requests)));
    if p.retries > 0 {
        out.push_str(&format!(" ({} retried)", p.retries));
    }
    if p.requests_in_flight > 0 {
        out.push_str(&format!(", {} in flight", p.requests_in_flight));
    }
    if p.pauses > 0 {
        out.push_str(&format!(" | {} pauses, last: {}", p.pauses, p.last_pause.as_deref().unwrap_or("?")));
    }
    out
}

impl ProgressView {
    pub fn new(live: bool) -> Self {
        ProgressView { live, started: Instant::now(), last: None, shown: false, latest: None }
    }

    /// Takes a snapshot; draws it if it is time to.
    pub fn update(&mut self, p: &Progress) {
        self.latest = Some(p.clone());
        let every = if self.live { LIVE_EVERY } else { LOG_EVERY };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let text = line(p, self.started.elapsed());
        let mut err = std::io::stderr().lock();
        if self.live {
            let _ = write!(err, "\r\x1b[2K{text}");
            self.shown = true;
        } else {
            let _ = writeln!(err, "progress: {text}");
        }
        let _ = err.flush();
    }

    /// Clears the live line so that a log line can be printed cleanly.
    pub fn clear(&mut self) {
        if self.live && self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.shown = false;
            self.last = None;
        }
    }

    /// The closing summary: records per stream and what the sync took.
    pub fn finish(&mut self) {
        self.clear();
        let Some(p) = &self.latest else { return };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{:<52} {:>12}  status", "stream", "records");
        for s in &p.streams {
            let _ = writeln!(err, "{:<52} {:>12}  {}", s.name, thousands(s.records), s.status);
        }
        let _ = writeln!(err, "{}", line(p, self.started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::StreamProgress;

    #[test]
    fn the_line_names_the_streams_being_read_jobs_requests_in_flight_and_pauses() {
        let p = Progress {
            streams: vec![
                StreamProgress { name: "ads".into(), records: 1234, status: "complete".into() },
                StreamProgress { name: "ads_insights".into(), records: 56789, status: "running".into() },
            ],
            current: Some("ads_insights".into()),
            active: vec![
                "ads_insights".into(),
                "ads_insights_age_and_gender".into(),
                "ads_insights_region".into(),
                "ads_insights_dma".into(),
            ],
            accounts_done: 1,
            accounts_total: 2,
            requests_in_flight: 12,
            jobs_running: 3,
            jobs_completed: 40,
            jobs_retried: 2,
            jobs_split: 1,
            requests: 812,
            retries: 3,
            pauses: 2,
            last_pause: Some("throttle pause 120 s".into()),
        };
        assert_eq!(
            line(&p, Duration::from_secs(75)),
            "[01:15] streams 1/2 | records 58,023 | reading ads_insights, ads_insights_age_and_gender, ads_insights_region +1 (accounts 1/2) | jobs 3 running, 40 read, 2 retried, 1 split | requests 812 (3 retried), 12 in flight | 2 pauses, last: throttle pause 120 s"
        );
    }
}
