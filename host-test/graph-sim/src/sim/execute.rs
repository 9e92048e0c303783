//! Serving one routed request: the nodes, edges, report runs and their results, once auth,
//! rate limits and faults have let it through (`Simulator::receive`).

use super::*;

impl Simulator {
    pub(super) fn execute(
        &mut self,
        route: Route,
        method: &str,
        version: &str,
        seg: &[String],
        params: &Params,
    ) -> Result<Value, ApiError> {
        let t_s = self.now_ms.div_euclid(1000);
        let path = seg.join("/");
        match route {
            Route::Error(e) => Err(e),
            Route::Static(v) => Ok(v),
            Route::AdAccounts => {
                let specs = fields_or(params, &["id"])?;
                check_fields(&specs, ACCOUNT_NODE)?;
                let lst = self.listing(version, &path, params);
                let w = &self.world;
                lst.page(w.accounts.len(), |a| select(w, render_account(w, a, t_s), &specs, t_s))
            }
            Route::Batch | Route::Thumbnail => Err(ApiError::unknown_path(&path)),
            Route::Account(a) => {
                let specs = fields_or(params, &["id", "account_id"])?;
                self.refuse_removed(&specs, ACCOUNT_NODE, version, false)?;
                check_fields(&specs, ACCOUNT_NODE)?;
                Ok(select(&self.world, render_account(&self.world, a, t_s), &specs, t_s))
            }
            Route::Object(i) => {
                let node = self.world.objs[i].kind.node_type();
                let specs = fields_or(params, &["id", "name"])?;
                self.refuse_removed(&specs, node, version, false)?;
                if params.has("fields") {
                    check_fields(&specs, node)?;
                }
                Ok(select(&self.world, render_object(&self.world, i, t_s), &specs, t_s))
            }
            Route::Edge(a, ed, edge_name) => {
                let cycling = self
                    .cfg
                    .faults
                    .cycling_listings
                    .iter()
                    .any(|(acct, e)| *acct == self.world.accounts[a].id && *e == edge_name);
                // A cycling chain: every page is the first one again, under a fresh cursor.
                let (cycle, first_page);
                let params = if cycling {
                    cycle = params.get("after").and_then(|c| c.strip_prefix("cycle")?.parse::<u64>().ok()).unwrap_or(0);
                    first_page = params.without("after");
                    &first_page
                } else {
                    cycle = 0;
                    params
                };
                let lst = self.listing(version, &path, params);
                let specs = fields_or(params, &["id"])?;
                let node = match ed {
                    Edge::Objects(k) => k.node_type(),
                    Edge::Activities => ACTIVITY_NODE,
                };
                self.refuse_removed(&specs, node, version, false)?;
                if params.has("fields") {
                    check_fields(&specs, node)?;
                }
                self.page_guard(lst.limit()?, specs.len())?;
                match ed {
                    Edge::Objects(k) => {
                        let q = list_query(k, params)?;
                        let items = list_objects(&self.world, a, k, &q, t_s);
                        let w = &self.world;
                        let page =
                            lst.page(items.len(), |i| select(w, render_object(w, items[i], t_s), &specs, t_s))?;
                        if !cycling {
                            return Ok(page);
                        }
                        let mut page = page;
                        let mut p = params.without("after");
                        p.pairs.push(("after".into(), format!("cycle{}", cycle + 1)));
                        let next = format!("{}/{version}/{path}?{}", crate::paging::GRAPH_HOST, p.encode());
                        page["paging"] = json!({"cursors": {"after": format!("cycle{}", cycle + 1)}, "next": next});
                        Ok(page)
                    }
                    Edge::Activities => {
                        let items = list_activities(&self.world, a, params, t_s)?;
                        let w = &self.world;
                        let acts = &w.accounts[a].activities;
                        lst.page(items.len(), |i| {
                            let mut full = render_activity(w, a, &acts[items[i]]);
                            // Activities have no id; keep `select` from inventing one.
                            full.remove("id");
                            select(w, full, &specs, t_s)
                        })
                    }
                }
            }
            Route::Insights { account, object, node } => {
                if let Some(raw) = params.get("fields") {
                    self.refuse_removed(&parse_fields(raw)?, INSIGHTS_NODE, version, false)?;
                }
                for (param, removed) in [
                    ("action_breakdowns", &self.cfg.faults.removed_action_breakdowns),
                    ("breakdowns", &self.cfg.faults.removed_breakdowns),
                ] {
                    let asked = params.list(param)?.unwrap_or_default();
                    let refused: Vec<&str> = asked.iter().filter(|b| removed.contains(b)).map(String::as_str).collect();
                    if !refused.is_empty() {
                        return Err(ApiError::removed_param(&refused, param));
                    }
                }
                let spec = insights::parse(&self.world, &self.cfg, account, object, params, self.now_ms)?;
                if method == "POST" {
                    return Ok(self.create_job(spec, &node));
                }
                let rows = insights::run(&self.world, &self.cfg, &spec, self.now_ms);
                if rows.len() as u64 * spec.field_count() > self.cfg.max_job_cells {
                    return Err(ApiError::too_many_rows());
                }
                let lst = self.listing(version, &path, params);
                self.page_guard(lst.limit()?, spec.fields.len())?;
                lst.page(rows.len(), |i| rows[i].clone())
            }
            Route::ReportStatus(id) => {
                let run = self.live_run(&id)?;
                let acc = self.world.accounts[run.account].id.clone();
                Ok(run.status_body(&acc, self.now_ms))
            }
            Route::ReportResults(id) => {
                let run = self.live_run(&id)?;
                if !run.status(self.now_ms).completed {
                    return Err(ApiError::report_not_ready());
                }
                let specs: Vec<FieldSpec> =
                    run.spec.fields.iter().map(|f| FieldSpec { name: f.clone(), sub: None }).collect();
                self.refuse_removed(&specs, INSIGHTS_NODE, version, true)?;
                // "Reduce the amount of data" can hit a later results page of a completed report
                // (the recorded corpus: singer-io/tap-facebook #65, at offset 74).
                if self.cfg.faults.reduce_data_on_later_result_pages
                    && params.get("after").is_some_and(|a| !a.is_empty())
                    && params.get("limit").and_then(|l| l.parse::<u32>().ok()).is_none_or(|l| l > 25)
                {
                    return Err(ApiError::reduce_data());
                }
                let lst = self.listing(version, &path, params);
                self.page_guard(lst.limit()?, run.spec.fields.len())?;
                let acc = &self.world.accounts[run.account].id;
                if !self.cfg.faults.cycling_results.contains(acc) {
                    return lst.page(run.rows.len(), |i| run.rows[i].clone());
                }
                // A cycling chain: every page is the first one again, under a fresh cursor.
                let cycle = params.get("after").and_then(|c| c.strip_prefix("cycle")?.parse::<u64>().ok()).unwrap_or(0);
                let first = params.without("after");
                let lst = Listing { params: &first, ..lst };
                let mut page = lst.page(run.rows.len(), |i| run.rows[i].clone())?;
                let mut p = first.clone();
                p.pairs.push(("after".into(), format!("cycle{}", cycle + 1)));
                let next = format!("{}/{version}/{path}?{}", crate::paging::GRAPH_HOST, p.encode());
                page["paging"] = json!({"cursors": {"after": format!("cycle{}", cycle + 1)}, "next": next});
                self.counters.fault("cycling_result_page");
                Ok(page)
            }
        }
    }

    /// Meta's refusal of the removed fields among `specs` on `node` (the churn knob), for a
    /// request (`at_results` false) or for reading a report's results (true).
    /// The paging of the listing at `path` (without its version) asked for with `params`.
    fn listing<'a>(&self, version: &'a str, path: &'a str, params: &'a Params) -> Listing<'a> {
        Listing { seed: self.cfg.seed, version, path, params, empty_middle_pages: self.cfg.faults.empty_middle_pages }
    }

    fn refuse_removed(&self, specs: &[FieldSpec], node: &str, version: &str, at_results: bool) -> Result<(), ApiError> {
        let removed: Vec<&crate::RemovedField> = self
            .cfg
            .faults
            .removed_fields
            .iter()
            .filter(|r| r.node == node && r.at_results == at_results && specs.iter().any(|s| s.name == r.field))
            .collect();
        let Some(first) = removed.first() else { return Ok(()) };
        let names: Vec<&str> = removed.iter().map(|r| r.field.as_str()).collect();
        Err(ApiError::removed_fields(&names, node, first.form, version))
    }

    fn live_run(&self, id: &str) -> Result<&ReportRun, ApiError> {
        match self.jobs.runs.get(id) {
            Some(r) if self.now_ms - r.created_ms <= RUN_EXPIRY_MS => Ok(r),
            _ => Err(ApiError::unsupported_get(id)),
        }
    }

    /// HTTP 500 code 1 when a page would carry more than `page_size_cells_limit` cells.
    fn page_guard(&self, limit: usize, fields: usize) -> Result<(), ApiError> {
        if (limit as u64).saturating_mul(fields.max(1) as u64) > self.cfg.page_size_cells_limit {
            return Err(ApiError::reduce_data());
        }
        Ok(())
    }

    /// Creates a report run and decides its fate.
    fn create_job(&mut self, spec: insights::Spec, node: &str) -> Value {
        let (seq, id) = self.jobs.next_id(self.cfg.seed);
        let key = format!("{node}|{}|{}|{}", spec.since, spec.until, spec.level.as_str());
        let before = self.jobs.attempt(key);
        let rows = insights::run(&self.world, &self.cfg, &spec, self.now_ms);
        let f = &self.cfg.faults;
        let u = unit(mix(self.cfg.seed, &[701, seq]));
        let outcome = if rows.len() as u64 * spec.field_count() > self.cfg.max_job_cells {
            Outcome::TooLarge
        } else if before < f.job_fail_first_attempts
            || (f.account_jobs_fail && spec.object.is_none() && !spec.fields.iter().all(|f| f.ends_with("_id")))
        {
            Outcome::Failed
        } else if u < f.stuck_jobs {
            Outcome::Stuck
        } else if u < f.stuck_jobs + f.job_skipped {
            Outcome::Skipped
        } else {
            Outcome::Completed
        };
        self.counters.jobs_created += 1;
        match outcome {
            Outcome::TooLarge | Outcome::Failed => self.counters.jobs_failed += 1,
            Outcome::Skipped => self.counters.jobs_skipped += 1,
            Outcome::Stuck => self.counters.jobs_stuck += 1,
            Outcome::Completed => {}
        }
        let rows = if outcome == Outcome::Completed { rows } else { Vec::new() };
        let running_at_100 = unit(mix(self.cfg.seed, &[702, seq])) < f.running_at_100;
        let run = ReportRun {
            running_at_100,
            id: id.clone(),
            account: spec.account,
            spec,
            created_ms: self.now_ms,
            duration_ms: self.cfg.job_duration_ms as i64,
            outcome,
            rows,
        };
        self.jobs.runs.insert(id.clone(), run);
        json!({ "report_run_id": id })
    }

    /// Logs one batch operation.
    pub(crate) fn log_op(&mut self, method: &str, path: String, kind: RequestKind, status: u16) {
        self.log.push(CallLogEntry {
            at_ms: self.now_ms,
            method: method.to_string(),
            path,
            kind,
            status: CallStatus::Http(status),
            in_batch: true,
        });
    }

    /// Serves one batch operation (no transport faults, no corrupted bodies).
    pub(crate) fn serve_op(
        &mut self,
        method: &str,
        url: &str,
        body: &str,
        token: Option<&str>,
        op: u64,
    ) -> (Served, String) {
        let target = split_url(url);
        let mut params = Params::parse(&target.query);
        if !body.is_empty() {
            params.extend(Params::parse(body));
        }
        let op_token = params.get("access_token").map(str::to_string);
        let tok = op_token.as_deref().or(token);
        let served = self.serve(method, target.version.as_deref(), &target.segments, &params, tok, Injected::None, op);
        (served, log_path(target.version.as_deref(), &target.segments))
    }
}

/// `fields` as specs, or the defaults when absent.
fn fields_or(params: &Params, default: &[&str]) -> Result<Vec<FieldSpec>, ApiError> {
    match params.get("fields") {
        Some(raw) => parse_fields(raw),
        None => Ok(default.iter().map(|n| FieldSpec { name: (*n).to_string(), sub: None }).collect()),
    }
}
