"""The Dagster definitions the tests run, importable by the processes Dagster starts.

`execute_job` with the multiprocess executor runs each step in a new process, which rebuilds the
job from `reconstructable(facebook_marketing_job)`: a function at module scope of a module it
can import. What changes from test to test (the simulator's address, the DuckDB file, the
accounts) comes in the environment, as JSON under `SFM_DAGSTER_TEST`, which those processes
inherit.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dagster as dg
from source_facebook_marketing_wasm.dagster import facebook_marketing_assets, facebook_marketing_definitions

ENV = "SFM_DAGSTER_TEST"
NAME = "facebook_marketing"
JOB = f"{NAME}_job"
POOL = "facebook_marketing"


def settings() -> dict[str, Any]:
    """{"database", "config", "streams", "accounts", "graph_url"}, as the test set them."""
    return json.loads(os.environ[ENV])


def assets() -> dg.AssetsDefinition:
    s = settings()
    return facebook_marketing_assets(
        config=s["config"], streams=s["streams"], accounts=s["accounts"], graph_url=s["graph_url"], name=NAME, pool=POOL
    )


def definitions() -> dg.Definitions:
    s = settings()
    return facebook_marketing_definitions(
        database=s["database"],
        config=s["config"],
        streams=s["streams"],
        accounts=s["accounts"],
        graph_url=s["graph_url"],
        name=NAME,
        pool=POOL,
    )


def facebook_marketing_job() -> dg.JobDefinition:
    return definitions().resolve_job_def(JOB)


def run_partition(instance_ref: Any, account: str) -> tuple[bool, str]:
    """One run of the job for partition `account`, with the multiprocess executor, in the
    instance of `instance_ref`: what a run worker does. Returns (succeeded, run id).

    The tests call it in a process of its own per run, as Dagster's run launcher does: runs in
    threads of one process deadlock in Dagster's logging setup."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        result = dg.execute_job(
            dg.reconstructable(facebook_marketing_job),
            instance,
            run_config={"execution": {"config": {"multiprocess": {}}}},
            tags={"dagster/partition": account},
        )
        return result.success, result.run_id
