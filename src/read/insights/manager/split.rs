//! A job that fails: started again once, then split into the objects below it (found by an
//! id-listing job) over the same days, down to the stream's level; then by days; then by
//! fields, whose halves are merged by key (DESIGN.md, "Why 7-day report jobs, split by objects
//! before days?").

use super::*;

impl JobManager {
    /// A job attempt failed: start it again once, then split it.
    pub(super) fn job_failed(&mut self, id: JobId, reason: FailureReason, cx: &mut Turn) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.failures += 1;
        let retry = job.failures < 2 && !reason.is_too_large();
        let what = describe(&job.spec);
        if let Purpose::ChildIds { parent, .. } = job.spec.purpose {
            if job.failures >= MAX_ID_LISTING_ATTEMPTS {
                let account = job.spec.account;
                self.jobs.set_state(&id, JobState::Done);
                self.prune(id);
                if !self.jobs.get(&parent).is_some_and(|p| self.params.splittable_fields(&p.spec)) {
                    let e = ConnectorError::exhausted(
                        format!(
                            "could not list the objects needed to split a failing report ({}); try again later",
                            reason.describe()
                        ),
                        what,
                    );
                    return self.fail_account(account, e);
                }
                self.stats.id_listings_given_up += 1;
                cx.log(
                    LogLevel::Warn,
                    format!(
                        "{}: {what} {} {MAX_ID_LISTING_ATTEMPTS} times; splitting the report by fields instead",
                        self.params.name,
                        reason.describe()
                    ),
                );
                return self.split_fields(parent);
            }
            cx.log(
                LogLevel::Info,
                format!(
                    "{}: {what} {} (attempt {} of {MAX_ID_LISTING_ATTEMPTS}); starting it again",
                    self.params.name,
                    reason.describe(),
                    job.failures
                ),
            );
            self.requeue(id);
            return;
        }
        if retry {
            cx.log(LogLevel::Info, format!("{}: {what} {}; starting it again", self.params.name, reason.describe()));
            self.requeue(id);
        } else {
            cx.log(LogLevel::Info, format!("{}: {what} {}; splitting it", self.params.name, reason.describe()));
            self.jobs.set_state(&id, JobState::Split);
            self.stats.split += 1;
            self.split(id, cx);
        }
    }

    /// A report's results could not be read: the job failed, and the cause stays with it and
    /// with its pieces if it is split.
    pub(super) fn results_unreadable(&mut self, id: JobId, e: CallError, cx: &mut Turn) {
        if let Some(job) = self.jobs.get_mut(&id) {
            job.spec.unreadable = Some(e.error.message().to_string());
        }
        let reason = FailureReason::Failed { code: None, subcode: None, message: e.error.message().to_string() };
        self.job_failed(id, reason, cx);
    }

    /// Starts a failed job again: a fresh report run (Graph cannot cancel the old one).
    pub(super) fn requeue(&mut self, id: JobId) {
        if self.jobs.get(&id).is_some() {
            self.jobs.set_state(&id, JobState::Queued);
            self.queue.push_back(id);
            self.stats.retried += 1;
        }
    }

    pub(super) fn split(&mut self, id: JobId, cx: &mut Turn) {
        let Some(job) = self.jobs.get(&id) else { return };
        let spec = job.spec.clone();
        match spec.purpose {
            Purpose::Rows { group: None } => {}
            // Half of a field split (one day, one object): only its fields can be halved again,
            // since its merge group counts exactly two members.
            Purpose::Rows { group: Some(_) } => return self.split_fields(id),
            Purpose::ChildIds { .. } => return,
        }
        if let Some(child) = spec.object_level.child().filter(|_| spec.object_level < self.params.level) {
            return self.split_objects(id, &spec, child, cx);
        }
        if spec.slices.len() > 1 {
            let half = spec.slices.len() / 2;
            let mid = spec.slices.start + half;
            for (range, spans) in
                [(spec.slices.start..mid, &spec.spans[..half]), (mid..spec.slices.end, &spec.spans[half..])]
            {
                let (Some(first), Some(last)) = (spans.first(), spans.last()) else { continue };
                let child =
                    JobSpec { since: first.0, until: last.1, slices: range, spans: spans.to_vec(), ..spec.clone() };
                self.add_job(child);
            }
            self.stats.splits.by_days += 1;
            return self.uncover(id);
        }
        self.split_fields(id);
    }

    /// Splits job `id` into the objects one level below it, over the same days: an id-listing
    /// job finds them (those with data in the 29 days before), and one job per object follows.
    fn split_objects(&mut self, id: JobId, spec: &JobSpec, child: Level, cx: &Turn) {
        let earliest = cx.now.date_utc() - Days::days(RETENTION_DAYS - 1);
        let lister = JobSpec {
            slices: spec.slices.start..spec.slices.start,
            spans: Vec::new(),
            since: (spec.since - Days::days(CHILD_ID_LOOKBACK_DAYS)).max(earliest),
            fields: vec![child.id_field().unwrap_or("id").to_string()],
            purpose: Purpose::ChildIds { child, parent: id },
            ..spec.clone()
        };
        let splits = &mut self.stats.splits;
        match child {
            Level::Campaign => splits.account_to_campaigns += 1,
            Level::AdSet => splits.campaign_to_adsets += 1,
            Level::Ad | Level::Account => splits.adset_to_ads += 1,
        }
        self.add_job(lister);
    }

    /// Replaces a failing job by two with half of its non-key fields each, merged on the key;
    /// a job down to one such field cannot be split, and its stream fails with a config error.
    pub(super) fn split_fields(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else { return };
        let spec = job.spec.clone();
        let Purpose::Rows { group } = spec.purpose.clone() else { return };
        let pk = &self.params.pk;
        let (keys, rest): (Vec<String>, Vec<String>) = spec.fields.iter().cloned().partition(|f| pk.contains(f));
        if rest.len() <= 1 {
            let field = rest.first().cloned().unwrap_or_default();
            let hint = if self.params.windows.iter().any(|w| w == "incrementality") {
                " or turn off include_incrementality"
            } else {
                ""
            };
            if let Some(cause) = &spec.unreadable {
                // Not the report's size but its answers: no field is to blame, and the account
                // fails as for any job that cannot be read.
                let e = ConnectorError::misbehaving(
                    format!("the results of a report could not be read, even split down to one field ({cause})"),
                    describe(&spec),
                );
                return self.fail_account(spec.account, e);
            }
            let e = ConnectorError::config(format!(
                "{}: meta cannot build the report even for the single field '{field}' ({}); unselect '{field}' in the catalog{hint}",
                self.params.name,
                describe(&spec)
            ));
            self.stop(e);
            return;
        }
        self.stats.splits.by_fields += 1;
        self.next_group += 1;
        let g = GroupId(self.next_group);
        self.groups.insert(g, Group { rows: BTreeMap::new(), remaining: 2, parent: group });
        let half = rest.len() / 2;
        for part in [&rest[..half], &rest[half..]] {
            let mut fields = keys.clone();
            fields.extend(part.iter().cloned());
            self.add_job(JobSpec { fields, purpose: Purpose::Rows { group: Some(g) }, ..spec.clone() });
        }
        self.uncover(id);
    }

    /// The id listing for `parent` finished: one job per child object replaces it.
    pub(super) fn spawn_children(&mut self, parent: JobId, child: Level, ids: Vec<String>, cx: &mut Turn) {
        let Some(job) = self.jobs.get(&parent) else { return };
        let spec = job.spec.clone();
        if ids.is_empty() {
            cx.log(
                LogLevel::Info,
                format!(
                    "{}: {} has no {} with data; nothing to read",
                    self.params.name,
                    describe(&spec),
                    child.as_str()
                ),
            );
        }
        for object_id in ids {
            self.add_job(JobSpec { object_id, object_level: child, ..spec.clone() });
        }
        self.uncover(parent);
    }
}
