//! When the manager's jobs go: creating them while there is room and the insights load allows,
//! polling those Graph computes at a pace set by their age and reported progress, and timing
//! out the ones that outlive `insights_job_timeout`.

use super::*;
use crate::model::AccountId;

impl JobManager {
    /// Starts what may start and arranges the next poll. A job waits while the insights load
    /// of its account (the stricter of the app's and the account's) is at the limit; when an
    /// account so held has no job running whose answers would tell its load again, the load is
    /// asked for after [`THROTTLE_RECHECK`].
    pub fn schedule(&mut self, cx: &mut Turn) {
        debug_assert!(self.jobs.counts_hold(), "the job counts drifted from the jobs");
        if self.stopped {
            return;
        }
        let mut held: Option<(AccountId, f64)> = None;
        let mut i = 0;
        while i < self.queue.len() && self.jobs.in_flight() < MAX_IN_FLIGHT_IN_ALL {
            let id = self.queue[i];
            let Some(job) = self.jobs.get(&id) else {
                self.queue.remove(i);
                continue;
            };
            let account = job.spec.account;
            if self.failed.contains(&account) || job.is_settled() {
                self.queue.remove(i);
                continue;
            }
            if self.jobs.in_flight_for(account) >= MAX_IN_FLIGHT {
                i += 1;
                continue;
            }
            let load = cx.throttle.insights_load(Some(&job.spec.account_id));
            if load >= INSIGHTS_THROTTLE_LIMIT {
                if held.is_none() && self.jobs.in_flight_for(account) == 0 {
                    held = Some((job.spec.account_id.clone(), load));
                }
                i += 1;
                continue;
            }
            self.queue.remove(i);
            let request = self.params.create_request(&job.spec, cx.config);
            let call = Call::graph(request, CallKind::JobCreate).for_account(&job.spec.account_id);
            let call = cx.out.submit(call);
            self.routes.insert(call, Pending::Create(id));
            self.jobs.set_state(&id, JobState::Creating { call });
            self.stats.started += 1;
        }
        if let Some((account, load)) = held
            && !self.pinging()
            && !self.timers.is_set(&Timer::ThrottleRecheck)
        {
            cx.log(
                LogLevel::Info,
                format!(
                    "{}: insights load of ad account {} at {load:.0} %; holding its new jobs",
                    self.params.name, account
                ),
            );
            self.timers.set(Timer::ThrottleRecheck, cx.now.plus(THROTTLE_RECHECK), TimeoutReason::ThrottlePause);
        }
        let running = self.jobs.any_running();
        let polling = self.polls_out > 0;
        if running && !polling {
            // A new generation of jobs (restarted, split) is polled on its own schedule: the
            // poll set for older jobs, half their age away, is brought forward to the new
            // jobs' first poll, never pushed back.
            let at = if std::mem::take(&mut self.poll_soon) {
                cx.now
            } else {
                cx.now.plus(self.poll_interval(cx.now)).round_up(POLL_GRID)
            };
            self.timers.set_no_later(Timer::Poll, at, TimeoutReason::JobPoll);
        }
        if !running {
            self.timers.cancel(&Timer::Poll);
        }
    }

    /// When to poll next, within [MIN_POLL, MAX_POLL]: for each running job, half its age (young
    /// jobs are polled often, old ones rarely), or sooner if its last reported percentage says it
    /// should be done by then; the soonest of them.
    pub(super) fn poll_interval(&self, now: Timestamp) -> Duration {
        self.jobs
            .values()
            .filter_map(|j| match j.state {
                JobState::Running { created_at, percent, .. } => {
                    // A job whose pace says it is done in 2 s is polled then, not at MIN_POLL.
                    let (interval, paced) = job_poll_interval(now.since(created_at), percent);
                    Some(interval.clamp(if paced { MIN_PACED_POLL } else { MIN_POLL }, MAX_POLL))
                }
                _ => None,
            })
            .min()
            .unwrap_or(MIN_POLL)
    }

    /// A deadline passed: poll, or ask for the insights load again.
    pub fn on_timeout(&mut self, cx: &mut Turn) {
        if self.stopped {
            return;
        }
        if self.timers.take_if_due(&Timer::ThrottleRecheck, cx.now) {
            let held = |j: &Job| {
                cx.throttle.insights_load(Some(&j.spec.account_id)) >= INSIGHTS_THROTTLE_LIMIT
                    && self.jobs.in_flight_for(j.spec.account) == 0
            };
            let account = self
                .queue
                .iter()
                .filter_map(|id| self.jobs.get(id))
                .find(|j| !self.failed.contains(&j.spec.account) && held(j))
                .map(|j| j.spec.account_id.clone());
            if let Some(account) = account {
                let url = format!(
                    "{}?{}",
                    graph_url(&cx.config.api_version, &format!("act_{account}/insights")),
                    encode_query(&[("fields", "account_id"), ("limit", "1")])
                );
                let call = cx.out.submit(Call::graph(Request::get(url), CallKind::InsightsSync));
                self.routes.insert(call, Pending::Ping);
            }
        }
        if self.timers.take_if_due(&Timer::Poll, cx.now) {
            for (id, job) in self.jobs.iter() {
                if let JobState::Running { run_id, .. } = &job.state {
                    cx.out.poll(*id, run_id, &job.spec.account_id);
                    self.polls_out += 1;
                }
            }
        }
        self.schedule(cx);
    }

    /// The answers of polls this manager handed the hub.
    pub fn on_polled(&mut self, results: Vec<PollResult>, cx: &mut Turn) {
        self.polls_out = self.polls_out.saturating_sub(results.len());
        if !self.stopped {
            self.take_polls(results, cx);
            self.schedule(cx);
        }
    }

    pub(super) fn take_polls(&mut self, results: Vec<PollResult>, cx: &mut Turn) {
        for (id, result) in results {
            // A failed poll leaves the job running, like one still pending.
            match result.ok().as_ref().and_then(parse_status) {
                Some(RunStatus::Completed) => self.start_reading(id, cx),
                Some(RunStatus::Failed(reason)) => {
                    if matches!(self.jobs.get(&id), Some(Job { state: JobState::Running { .. }, .. })) {
                        self.job_failed(id, reason, cx)
                    }
                }
                status => {
                    if let Some(Job { state: JobState::Running { percent, .. }, .. }) = self.jobs.get_mut(&id)
                        && let Some(RunStatus::Pending { percent: p }) = status
                    {
                        *percent = p;
                    }
                    self.time_out_if_overdue(id, cx);
                }
            }
        }
    }

    /// Restarts a running job older than the timeout. Only a poll's answer (or its failure)
    /// decides this, never the clock alone: while throttling holds the polls back, a job is not
    /// known to be late, and restarting it would only add load to an account already over its
    /// quota (soak seed 26: reports restarted every hour while polls waited on 600 s blocks).
    pub(super) fn time_out_if_overdue(&mut self, id: JobId, cx: &mut Turn) {
        let timeout = self.params.job_timeout;
        if let Some(Job { state: JobState::Running { created_at, .. }, .. }) = self.jobs.get(&id)
            && cx.now.since(*created_at) > timeout
        {
            self.stats.timed_out += 1;
            self.job_failed(id, FailureReason::TimedOut, cx);
        }
    }
}

/// Half of `age`, or the time a job `percent` done after `age` needs to finish at the same pace
/// if that is sooner (but no less than a sixteenth of `age`); and whether the pace decided it.
pub(super) fn job_poll_interval(age: Duration, percent: u32) -> (Duration, bool) {
    let half = age / 2;
    if (1..100).contains(&percent) {
        let remaining = age.mul_f64(f64::from(100 - percent) / f64::from(percent));
        // Never sooner than a sixteenth of the age: a job that sits at 99 % is polled at a pace
        // that slows as it ages (some 60 polls in an hour), not every second.
        let paced = remaining.max(age / 16);
        if paced < half {
            return (paced, true);
        }
    }
    (half, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_polled_at_half_its_age_or_when_its_pace_says_it_is_done() {
        let s = Duration::from_secs;
        assert_eq!(job_poll_interval(s(10), 0), (s(5), false), "no percentage yet: half the age");
        assert_eq!(
            job_poll_interval(s(10), 50),
            (s(5), false),
            "half done in 10 s: done in 10 s more, half the age is sooner"
        );
        assert_eq!(job_poll_interval(s(15), 75), (s(5), true), "three quarters in 15 s: done in 5 s");
        assert_eq!(job_poll_interval(s(16), 80), (s(4), true), "four fifths in 16 s: done in 4 s");
        assert_eq!(job_poll_interval(s(40), 100), (s(20), false), "100 % but not completed: half the age");
        assert_eq!(
            job_poll_interval(s(40), 99),
            (Duration::from_millis(2500), true),
            "99 %: a sixteenth of the age, not 0.4 s"
        );
    }
}
