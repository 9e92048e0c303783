"""The Dagster integration (`source_facebook_marketing_wasm.dagster`): the streams as assets with
one partition per ad account, loaded into DuckDB, under a concurrency pool, against
`host-test simulate` (four accounts; see conftest.py).

- Four partitions run at once, each in a run of its own with the multiprocess executor (the job
  is rebuilt in each step's process from `sfm_dagster_jobs.py`), under a pool whose limit is 2:
  no more than two steps run at once, some wait for the pool, and the tables equal ground truth.
- A second run of one partition (in process, `materialize`) goes on from the state its first run
  saved: it reads the lookback window again, not the month, and stores nothing twice.
- A partition whose account Graph refuses fails alone, naming the connector's error; the others
  are stored; run again once the account is served, it completes the tables.
- A state written by one process reading every account seeds each partition's state.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import sfm_dagster_jobs as jobs
import source_facebook_marketing_wasm as fb
from conftest import ACCOUNTS, STREAMS, Truth, connector_config, revoke
from dagster_duckdb import DuckDBResource
from source_facebook_marketing_wasm.dagster import (
    STATE_TABLE,
    configured_catalog,
    partition_config,
    seed_partition_states,
)

POOL_LIMIT = 2
INSIGHTS = "ads_insights"
ENTITY_STREAMS = [s for s in STREAMS if s != INSIGHTS]


@pytest.fixture(scope="module")
def catalog(simulator) -> dict[str, Any]:
    """The configured catalog the partitions read, as the assets build it (the truth's too).
    Discovering here also compiles the component into the cache the step processes share."""
    config = partition_config(connector_config(), ACCOUNTS[0])
    return configured_catalog(fb.discover(config, graph_url=simulator.url).catalog, STREAMS)


def use(monkeypatch: pytest.MonkeyPatch, simulator, database: Path) -> None:
    """Points `sfm_dagster_jobs`, in this process and the ones Dagster starts, at `database`."""
    settings = {
        "database": str(database),
        "config": connector_config(),
        "streams": STREAMS,
        "accounts": ACCOUNTS,
        "graph_url": simulator.url,
    }
    monkeypatch.setenv(jobs.ENV, json.dumps(settings))


def pooled_instance():
    return dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": POOL_LIMIT}}})


def run_partitions(instance: dg.DagsterInstance, accounts: list[str]) -> dict[str, tuple[bool, str]]:
    """One run per partition, all launched at once as a backfill launches them, each in a
    process of its own (a run worker) whose steps run in processes of their own (the
    multiprocess executor). Returns (succeeded, run id) by account."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(accounts), mp_context=spawn) as workers:
        runs = [workers.submit(jobs.run_partition, instance.get_ref(), a) for a in accounts]
        return {a: run.result() for a, run in zip(accounts, runs)}


def step_events(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    return [e for e in instance.all_logs(run_id) if e.dagster_event is not None]


def most_steps_at_once(instance: dg.DagsterInstance, run_ids: list[str]) -> int:
    """The most steps running at one time, from their STEP_START and STEP_SUCCESS/FAILURE."""
    edges = []
    for run_id in run_ids:
        for e in step_events(instance, run_id):
            kind = e.dagster_event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                edges.append((e.timestamp, 1))
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                edges.append((e.timestamp, -1))
    most = now = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # an end before a start at a tie
        now += step
        most = max(most, now)
    return most


def materialized(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """The metadata of each stream's materialisation in a run, by stream."""
    out = {}
    for e in step_events(instance, run_id):
        if e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            m = e.dagster_event.materialization
            out[m.asset_key.path[-1]] = {k: v.value for k, v in m.metadata.items()}
    return out


def table_rows(database: Path, account: str) -> int:
    """The rows of `account` in every stream's table."""
    with duckdb.connect(str(database), read_only=True) as conn:
        return sum(conn.execute(f'SELECT count(*) FROM "{s}" WHERE _account = ?', [account]).fetchone()[0] for s in STREAMS)


def saved_state(database: Path, account: str) -> list | None:
    with duckdb.connect(str(database), read_only=True) as conn:
        row = conn.execute(f"SELECT state FROM {STATE_TABLE} WHERE partition = ?", [account]).fetchone()
    return json.loads(row[0]) if row else None


@pytest.fixture(scope="module")
def first_sync(simulator, catalog, workdir, loopback_only):
    """Every partition materialised once, four runs at once under a pool of two."""
    database = workdir / "first.duckdb"
    with pytest.MonkeyPatch.context() as mp, pooled_instance() as instance:
        use(mp, simulator, database)
        truth = Truth(simulator, ACCOUNTS, catalog)
        before = simulator.counters()
        results = run_partitions(instance, ACCOUNTS)
        jobs_created = simulator.counters()["jobs_created"] - before["jobs_created"]
        yield {"instance": instance, "database": database, "results": results, "truth": truth, "jobs_created": jobs_created}


def test_partitions_run_in_processes_under_the_pool_and_equal_ground_truth(first_sync):
    instance, results = first_sync["instance"], first_sync["results"]
    assert {a: ok for a, (ok, _) in results.items()} == {a: True for a in ACCOUNTS}
    run_ids = [run_id for _, run_id in results.values()]

    # The pool: its limit is the instance's default, at most two steps ran at once, and the
    # runs that found it full waited (four runs were launched together).
    assert instance.event_log_storage.get_concurrency_info(jobs.POOL).slot_count == POOL_LIMIT
    most = most_steps_at_once(instance, run_ids)
    blocked = [
        r for r in run_ids if any("blocked by limit for pool" in (e.dagster_event.message or "") for e in step_events(instance, r))
    ]
    print(f"\n4 partitions, pool limit {POOL_LIMIT}: at most {most} steps at once; {len(blocked)} run(s) waited for the pool")
    assert 1 <= most <= POOL_LIMIT
    assert blocked, "no run waited for the pool, though four were launched at once with a limit of 2"

    # The multiprocess executor: each step ran in a process of its own.
    pids = {
        e.dagster_event.pid
        for r in run_ids
        for e in step_events(instance, r)
        if e.dagster_event.event_type == dg.DagsterEventType.STEP_START
    }
    assert len(pids) == len(ACCOUNTS) and os.getpid() not in pids

    # Every partition saved its state, and every asset of every partition is materialised.
    for account in ACCOUNTS:
        state = saved_state(first_sync["database"], account)
        assert state and all(set(m["stream"]["stream_state"]) - {"time_increment"} == {account} for m in state), state
    for stream in STREAMS:
        key = dg.AssetKey([jobs.NAME, stream])
        assert instance.get_materialized_partitions(key) == set(ACCOUNTS), stream

    counts = first_sync["truth"].check(first_sync["database"])
    print(f"rows by table: {counts}")
    assert counts[INSIGHTS] > 0 and sum(counts[s] for s in ENTITY_STREAMS) > 0


def test_a_rerun_of_one_partition_goes_on_from_its_saved_state(first_sync, simulator):
    instance, database = first_sync["instance"], first_sync["database"]
    # The partition whose first run read the most entity records.
    firsts = {a: materialized(instance, run_id) for a, (_, run_id) in first_sync["results"].items()}
    account = max(ACCOUNTS, key=lambda a: sum(firsts[a][s]["records"] for s in ENTITY_STREAMS))
    first = firsts[account]
    assert all(not m["started_from_state"] for m in first.values())

    before = simulator.counters()
    with pytest.MonkeyPatch.context() as mp:
        use(mp, simulator, database)
        result = dg.materialize(
            [jobs.assets()], partition_key=account, resources={"duckdb": DuckDBResource(database=str(database))}, instance=instance
        )
    assert result.success
    again = materialized(instance, result.run_id)
    jobs_created = simulator.counters()["jobs_created"] - before["jobs_created"]

    print(
        f"\npartition {account}: first run {({s: first[s]['records'] for s in STREAMS})}, {first_sync['jobs_created']} report "
        f"jobs for all four; rerun {({s: again[s]['records'] for s in STREAMS})}, {jobs_created} report job(s)"
    )
    assert all(m["started_from_state"] for m in again.values())
    # Insights: the lookback window again, not the month; entity streams: what changed since
    # the cursor (and the objects at it, read again by the one-second overlap).
    assert again[INSIGHTS]["records"] < first[INSIGHTS]["records"] / 2
    assert sum(again[s]["records"] for s in ENTITY_STREAMS) < sum(first[s]["records"] for s in ENTITY_STREAMS)
    assert jobs_created < first_sync["jobs_created"] / len(ACCOUNTS)
    # What it read again replaced its rows: the tables still equal the truth, nothing twice.
    first_sync["truth"].check(database)


def test_a_failing_partition_fails_alone_and_its_retry_completes_the_tables(simulator, catalog, workdir):
    database = workdir / "failing.duckdb"
    failing, others = ACCOUNTS[2], [a for a in ACCOUNTS if a != ACCOUNTS[2]]
    with pytest.MonkeyPatch.context() as mp, pooled_instance() as instance:
        use(mp, simulator, database)
        truth = Truth(simulator, ACCOUNTS, catalog)
        revoke(simulator, failing, True)
        try:
            results = run_partitions(instance, ACCOUNTS)
        finally:
            revoke(simulator, failing, False)

        assert {a: ok for a, (ok, _) in results.items()} == {a: a != failing for a in ACCOUNTS}
        failure = next(
            e.dagster_event
            for e in step_events(instance, results[failing][1])
            if e.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE
        )
        message = failure.step_failure_data.error.message
        print(f"\nthe failed partition's error: {message.strip()}")
        assert f"account {failing}: " in message and f"ad account {failing}" in message, "the connector's words"
        for stream in STREAMS:
            assert instance.get_materialized_partitions(dg.AssetKey([jobs.NAME, stream])) == set(others), stream
        # The others' rows are all there; the failed account has none, and its saved state
        # (the STATE messages its failed read emitted) holds no cursor of it.
        Truth(simulator, others, catalog).check(database, others)
        assert table_rows(database, failing) == 0
        assert fb.split(saved_state(database, failing) or [], [failing]) == []

        # The account served again, its partition alone is run again and completes the tables.
        retry = run_partitions(instance, [failing])
        assert retry[failing][0]
        for stream in STREAMS:
            assert instance.get_materialized_partitions(dg.AssetKey([jobs.NAME, stream])) == set(ACCOUNTS), stream
        truth.check(database)


def test_a_one_process_state_seeds_every_partition(simulator, catalog, workdir):
    """A sync that read all four accounts in one process; its state, split by account, is where
    each partition's first run starts."""
    config = {**connector_config(), "account_ids": ACCOUNTS}
    messages = list(fb.read(config, catalog, graph_url=simulator.url))
    assert not [m for m in messages if isinstance(m, fb.Trace) and m.is_error]
    state = [m.state for m in messages if isinstance(m, fb.State)]
    read_before = sum(isinstance(m, fb.Record) and m.stream == INSIGHTS and m.data["account_id"] == ACCOUNTS[0] for m in messages)

    database = workdir / "seeded.duckdb"
    seeded = seed_partition_states(str(database), state, [f"act_{a}" for a in ACCOUNTS])
    assert seeded == {a: len(STREAMS) for a in ACCOUNTS}
    for account in ACCOUNTS:
        pieces = saved_state(database, account)
        assert pieces == fb.split(state, [account])
        assert all(set(m["stream"]["stream_state"]) - {"time_increment"} == {account} for m in pieces)
    with pytest.raises(ValueError, match=f"partition {ACCOUNTS[0]} already has a saved state"):
        seed_partition_states(str(database), state, [ACCOUNTS[0]])

    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as instance:
        use(mp, simulator, database)
        result = dg.materialize(
            [jobs.assets()], partition_key=ACCOUNTS[0], resources={"duckdb": DuckDBResource(database=str(database))}, instance=instance
        )
        assert result.success
        metadata = materialized(instance, result.run_id)
    assert all(m["started_from_state"] for m in metadata.values())
    assert metadata[INSIGHTS]["records"] < read_before / 2, (metadata[INSIGHTS], read_before)


def test_partition_config_reads_one_account():
    config = {"account_id": "1", "account_ids": ["1", "2"], "credentials": {"access_token": "t"}}
    assert partition_config(config, " act_42 ") == {"account_ids": ["42"], "credentials": {"access_token": "t"}}
    assert config["account_ids"] == ["1", "2"], "the config given is not changed"
    with pytest.raises(ValueError, match="is not an account id"):
        partition_config(config, "act_x")
