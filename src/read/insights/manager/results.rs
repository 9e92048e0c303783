//! Reading a finished report: its result pages (stream rows transcoded from bytes, id listings
//! and field-split halves item by item), and the merge of field-split halves by key.

use super::*;

/// Rows per result page: as many as make [`RESULT_PAGE_BYTES`] at `row_bytes` a row, within
/// [`MIN_RESULT_PAGE_ROWS`] and [`RESULT_PAGE_SIZE`]; [`FIRST_RESULT_PAGE_ROWS`] while no row has
/// been read.
fn page_rows(row_bytes: Option<u64>) -> u32 {
    match row_bytes {
        Some(b) => {
            (RESULT_PAGE_BYTES / b.max(1)).clamp(u64::from(MIN_RESULT_PAGE_ROWS), u64::from(RESULT_PAGE_SIZE)) as u32
        }
        None => FIRST_RESULT_PAGE_ROWS,
    }
}

impl JobManager {
    pub(super) fn start_reading(&mut self, id: JobId, cx: &mut Turn) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let JobState::Running { run_id, created_at, .. } = &job.state else { return };
        let (run_id, created_at) = (run_id.clone(), *created_at);
        let rows = match job.spec.purpose {
            Purpose::ChildIds { .. } => RESULT_PAGE_SIZE,
            Purpose::Rows { .. } => page_rows(self.row_bytes),
        };
        let url = format!(
            "{}?{}",
            graph_url(&cx.config.api_version, &format!("{run_id}/insights")),
            encode_query(&[("limit", rows.to_string())])
        );
        // Stream rows, the bulk of a sync, are transcoded from the page's bytes
        // (`on_raw_outcome`); the rest is taken item by item (`on_outcome`).
        let mut paginator = match job.resume_after.take() {
            Some(after) => Paginator::resuming(url, CallKind::JobResults, &after),
            None => Paginator::new(url, CallKind::JobResults),
        }
        .for_account(&job.spec.account_id);
        self.routes.insert(paginator.begin(cx.out), Pending::Results(id));
        self.jobs.set_state(&id, JobState::Reading { run_id, created_at, paginator });
    }

    pub(super) fn on_result_page(
        &mut self,
        id: JobId,
        call: CallId,
        outcome: CallOutcome,
        cx: &mut Turn,
    ) -> Result<(), ConnectorError> {
        let Some(job) = self.jobs.get_mut(&id) else { return Ok(()) };
        let JobState::Reading { run_id, created_at, paginator } = &mut job.state else { return Ok(()) };
        if let Err(e) = &outcome
            && e.failure == CallFailure::ReportNotReady
        {
            // Read too early: back to polling, with the timeout still running from the start.
            let running = JobState::Running { run_id: run_id.clone(), created_at: *created_at, percent: 0 };
            self.jobs.set_state(&id, running);
            return Ok(());
        }
        let account = job.spec.account;
        let account_id = job.spec.account_id.clone();
        let purpose = job.spec.purpose.clone();
        if purpose == (Purpose::Rows { group: None }) {
            let rules = self.params.row_rules(&account_id);
            let mut row_bytes = None;
            let read = |bytes: &[u8]| match transcode::page(bytes, &rules) {
                Ok(p) if !p.error => {
                    if p.read > 0 {
                        row_bytes = Some(bytes.len() as u64 / p.read as u64);
                    }
                    Ok((p.rows, Paging { next: p.next, after: p.after }))
                }
                Ok(_) => Err(ConnectorError::misbehaving("a result page held an error instead of rows", String::new())),
                Err(e) => Err(ConnectorError::misbehaving("a result page could not be read", e.to_string())),
            };
            let step = paginator.on_raw_outcome(call, outcome, cx.out, read);
            if row_bytes.is_some() {
                self.row_bytes = row_bytes;
            }
            let Some(rows) = self.page_items(id, step, cx)? else { return Ok(()) };
            let next = self.request_next_page(id, Some(page_rows(self.row_bytes)), cx);
            if !rows.is_empty() {
                self.events.push_back(JobEvent::Rows { account, rows: rows.into_iter().map(Row::Encoded).collect() });
            }
            self.page_read(id, next, cx);
            return Ok(());
        }
        let step = paginator.on_outcome(call, outcome, cx.out);
        let Some(items) = self.page_items(id, step, cx)? else { return Ok(()) };
        let next = self.request_next_page(id, None, cx);
        match &purpose {
            Purpose::ChildIds { child, .. } => {
                let field = child.id_field().unwrap_or("id");
                let ids: Vec<String> =
                    items.into_iter().filter_map(|r| r.get(field)?.as_str().map(str::to_string)).collect();
                if let Some(job) = self.jobs.get_mut(&id) {
                    for i in ids {
                        if !job.child_ids.contains(&i) {
                            job.child_ids.push(i);
                        }
                    }
                }
            }
            Purpose::Rows { group: None } => {
                let rows: Vec<Row> =
                    items.into_iter().filter_map(|row| self.params.record(row, &account_id)).map(Row::Merged).collect();
                if !rows.is_empty() {
                    self.events.push_back(JobEvent::Rows { account, rows });
                }
            }
            Purpose::Rows { group: Some(g) } => {
                for row in items {
                    if let Some(r) = self.params.record(row, &account_id) {
                        let key = self.params.key(&r);
                        if let Some(group) = self.groups.get_mut(g) {
                            group.rows.entry(key).or_default().extend(r);
                        }
                    }
                }
            }
        }
        self.page_read(id, next, cx);
        Ok(())
    }

    /// The items of a result page's outcome, or `None` when there is nothing to read in it: the
    /// listing restarted on a stale cursor (its first page is on its way again), Graph refused
    /// part of the report (dropped, or the stream stopped), or the results cannot be read (the
    /// job failed). A contract error ends the sync.
    fn page_items<T>(
        &mut self,
        id: JobId,
        step: Result<Step<T>, CallError>,
        cx: &mut Turn,
    ) -> Result<Option<T>, ConnectorError> {
        match step {
            Ok(Step::Items { items, .. }) => Ok(Some(items)),
            Ok(Step::Restarted(call)) => {
                self.routes.insert(call, Pending::Results(id));
                Ok(None)
            }
            Err(CallError { error: e @ ConnectorError::Contract { .. }, .. }) => Err(e),
            Err(e) if self.drop_refused(id, &e, cx) => Ok(None),
            Err(e) => {
                self.results_unreadable(id, e, cx);
                Ok(None)
            }
        }
    }

    /// Asks for the next result page of job `id`, if there is one (of `limit` rows, when given).
    fn request_next_page(&mut self, id: JobId, limit: Option<u32>, cx: &mut Turn) -> Option<CallId> {
        match self.jobs.get_mut(&id).map(|j| &mut j.state) {
            Some(JobState::Reading { paginator, .. }) => {
                if let Some(limit) = limit {
                    paginator.set_next_limit(limit);
                }
                paginator.request_next(cx.out)
            }
            _ => None,
        }
    }

    /// A page was read: the next one is on its way, or the job is read.
    fn page_read(&mut self, id: JobId, next: Option<CallId>, cx: &mut Turn) {
        match next {
            Some(next) => self.routes.insert(next, Pending::Results(id)),
            None => self.job_read(id, cx),
        }
    }

    /// Every row of the job was handed over.
    pub(super) fn job_read(&mut self, id: JobId, cx: &mut Turn) {
        self.jobs.set_state(&id, JobState::Done);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        self.stats.completed += 1;
        let spec = job.spec.clone();
        match spec.purpose {
            Purpose::ChildIds { child, parent } => {
                let ids = std::mem::take(&mut job.child_ids);
                self.spawn_children(parent, child, ids, cx);
                self.prune(id);
            }
            Purpose::Rows { group } => {
                if let Some(g) = group {
                    self.member_done(g, spec.account);
                }
                self.uncover(id);
            }
        }
    }

    /// A member of `g` finished: when it was the last, merge the group upwards or emit it.
    pub(super) fn member_done(&mut self, g: GroupId, account: usize) {
        let Some(group) = self.groups.get_mut(&g) else { return };
        group.remaining = group.remaining.saturating_sub(1);
        if group.remaining > 0 {
            return;
        }
        let Some(group) = self.groups.remove(&g) else { return };
        match group.parent {
            Some(p) => {
                if let Some(parent) = self.groups.get_mut(&p) {
                    for (k, row) in group.rows {
                        parent.rows.entry(k).or_default().extend(row);
                    }
                }
                self.member_done(p, account);
            }
            None => {
                let rows: Vec<Row> = group.rows.into_values().map(Row::Merged).collect();
                if !rows.is_empty() {
                    self.events.push_back(JobEvent::Rows { account, rows });
                }
            }
        }
    }

    /// The job no longer covers its slices: it is settled, and forgotten.
    pub(super) fn uncover(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else { return };
        if let Purpose::Rows { .. } = job.spec.purpose {
            self.events.push_back(JobEvent::Released { account: job.spec.account, slices: job.spec.slices.clone() });
        }
        self.prune(id);
    }
}
