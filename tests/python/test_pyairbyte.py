"""PyAirbyte installs the connector from its wheel and loads its records into DuckDB.

`ab.get_source("source-facebook-marketing", pip_url=<the wheel>)`: PyAirbyte makes a venv of its
own, installs the wheel (dist/, built by scripts/build-wheel.sh) with its dependencies from the
local wheelhouse that scripts/test-wheel.sh fills (target/wheelhouse; no index, so no network),
and runs its console script for `spec`, `discover` and `read` as it would any Airbyte source; no
Rust toolchain, no local executable. Graph calls go over loopback to `host-test simulate` (the
console script reads `GRAPH_URL`), and the tables of PyAirbyte's default DuckDB cache must hold
exactly the primary keys that the simulator's ground truth (`POST /__sim/truth`, see
host-test/src/truth.rs) says a correct first sync emits.

Two reads, as in `host-test soak`: entity streams without a start date (every object), then
`ads_insights` over the last few days (one config has one start date, and entity streams read
with a recent one would be nearly empty). The simulator's clock moves during a read (a new day
may begin), so each read is compared with the truth at its start and at its end, by soak's
rule: when they agree, the table must equal them exactly (the usual case); otherwise a key in
both must be there and a key in neither must not.

Nothing leaves the machine: PyAirbyte runs offline (no registry, no telemetry), every socket
the test process opens is checked to be loopback, and host-test's allowlist lets the connector
reach only the `--graph-url` host. PyAirbyte's files (cache, logs, temporary files) go to a
temporary directory.

Needs `pip install -r tests/python/requirements-pyairbyte.txt` (scripts/test.sh does). Without
PyAirbyte the test fails, unless SFM_PYAIRBYTE_OPTIONAL=1 outside CI, where it is skipped.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sfm_testkit import HOST_TEST, ROOT, Simulator, truth_problems
from sfm_testkit import loopback_only as keep_to_loopback

WHEELS = sorted((ROOT / "dist").glob("source_facebook_marketing_wasm-*-py3-none-any.whl"))
WHEELHOUSE = ROOT / "target" / "wheelhouse"

OPTIONAL_ENV = "SFM_PYAIRBYTE_OPTIONAL"

# PyAirbyte's dependencies warn about themselves (experimental classes, Python versions, pydantic
# deprecations) on import; none of it is about this project.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:This class is experimental"),
]

if importlib.util.find_spec("airbyte") is None and os.environ.get(OPTIONAL_ENV) == "1" and not os.environ.get("CI"):
    pytest.skip(
        f"PyAirbyte is not installed and {OPTIONAL_ENV}=1 makes this test optional; "
        "install it with `.venv/bin/python -m pip install -r tests/python/requirements-pyairbyte.txt`",
        allow_module_level=True,
    )

# A small world: 2 accounts, each 2 campaigns x 2 ad sets x 2 ads. Jobs finish at once, and the
# simulator's clock follows real time (`--clock wall`), as host-test's does, so both agree on
# "today"; the world is placed at real now, so a start date a few days back is inside it.
SEED = 7
SIMULATOR_ARGS = [
    "--seed", str(SEED), "--clock", "wall", "--job-duration-ms", "0",
    "--accounts", "2", "--campaigns-per-account", "2", "--adsets-per-campaign", "2", "--ads-per-adset", "2",
]  # fmt: skip
ACCOUNT_IDS = ["1000000000000001", "1000000000000002"]
TOKEN = "sim-token"
ENTITY_STREAMS = ["ad_account", "campaigns", "ad_sets", "ads", "ad_creatives"]
INSIGHT_STREAMS = ["ads_insights"]
INSIGHT_DAYS = 3

# ---------------------------------------------------------------------------------- loopback


@pytest.fixture(scope="module")
def loopback_only():
    """Refuses, and records, every name lookup or connection of this process off loopback."""
    with keep_to_loopback() as refused:
        yield refused


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pyairbyte")


@pytest.fixture(scope="module")
def simulator(workdir: Path, loopback_only):
    if not HOST_TEST.is_file():
        pytest.fail(f"{HOST_TEST} is missing; build it with `cargo build -p host-test` (scripts/test.sh does)")
    if len(WHEELS) != 1 or not WHEELHOUSE.is_dir():
        pytest.fail(
            f"want one wheel in {ROOT / 'dist'} (found {len(WHEELS)}) and the wheelhouse {WHEELHOUSE}; "
            "make them with `scripts/test-wheel.sh` (scripts/test.sh does)"
        )
    sim = Simulator(workdir, SIMULATOR_ARGS)
    yield sim
    sim.stop()


# ---------------------------------------------------------------------------------- PyAirbyte


@pytest.fixture(scope="module")
def ab(workdir: Path, simulator: Simulator, loopback_only):
    """PyAirbyte, imported offline with its files under `workdir`, running the wheel's console
    script against the simulator (its settings are read at import, so they are set first)."""
    env = {
        "DO_NOT_TRACK": "1",
        "AIRBYTE_OFFLINE_MODE": "1",
        "AIRBYTE_PROJECT_DIR": str(workdir / "project"),
        "AIRBYTE_CACHE_ROOT": str(workdir / "cache"),
        "AIRBYTE_LOGGING_ROOT": str(workdir / "logs"),
        "AIRBYTE_TEMP_DIR": str(workdir / "tmp"),
        # PyAirbyte installs with `uv`, which comes with it in this venv.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # For the console script: the simulator, and a compile cache of the test's own.
        "GRAPH_URL": simulator.url,
        "SFM_CACHE_DIR": str(workdir / "sfm-cache"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        (workdir / "tmp").mkdir(exist_ok=True)
        try:
            module = importlib.import_module("airbyte")
        except ImportError as e:
            pytest.fail(
                f"PyAirbyte cannot be imported ({e}); install it with "
                "`.venv/bin/python -m pip install -r tests/python/requirements-pyairbyte.txt` "
                f"(scripts/test.sh does), or set {OPTIONAL_ENV}=1 to skip this test outside CI"
            )
        yield module


def key_text(value: Any) -> str:
    """A primary-key part as host-test's truth writes it (`record_key`): strings as they are,
    dates as ISO dates, null as ∅, other values as JSON."""
    if value is None or (isinstance(value, float) and value != value):
        return "∅"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        return key_text(value.to_pydatetime())
    return value if isinstance(value, str) else json.dumps(value)


def table_keys(dataset, pk: list[str]) -> list[str]:
    """The primary key of every row of a cached table, sorted."""
    frame = dataset.to_pandas()
    missing = [f for f in pk if f not in frame.columns]
    assert not missing, f"the table lacks primary key columns {missing}; it has {list(frame.columns)}"
    return sorted("|".join(key_text(row[f]) for f in pk) for _, row in frame.iterrows())


def config_for(start_date: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "account_ids": ACCOUNT_IDS,
        "credentials": {"auth_type": "Service", "access_token": TOKEN},
    }
    if start_date:
        config["start_date"] = start_date
    return config


def sync_and_check(ab, simulator: Simulator, cache, config: dict, streams: list[str]) -> dict[str, tuple[int, int]]:
    """One read through PyAirbyte into `cache`, checked against ground truth; returns
    {stream: (rows in the table, keys in ground truth at the start)}."""
    source = ab.get_source(
        "source-facebook-marketing",
        pip_url=f"--no-index --find-links {WHEELHOUSE} {WHEELS[0]}",
        install_root=Path(os.environ["AIRBYTE_PROJECT_DIR"]) / "connectors",
        config=config,
        streams=streams,
        install_if_missing=True,
    )
    catalog = json.loads(source.configured_catalog.model_dump_json(exclude_none=True))
    before = simulator.truth(config, catalog)
    result = source.read(cache=cache)
    after = simulator.truth(config, catalog, read_start_ms=before["read_start_ms"])

    pks = {c["stream"]["name"]: [p[0] for p in c["stream"]["source_defined_primary_key"]] for c in catalog["streams"]}
    problems, counts = [], {}
    for stream in streams:
        got = table_keys(cache[stream], pks[stream])
        problems += truth_problems(stream, got, before["streams"][stream], after["streams"][stream])
        counts[stream] = (len(got), len(before["streams"][stream]))
    emitted = sum(len(before["streams"][s]) for s in streams)
    if before["streams"] == after["streams"] and result.processed_records != emitted:
        problems.append(f"the connector emitted {result.processed_records} records, ground truth holds {emitted}")
    assert not problems, "\n".join(problems)
    return counts


def test_pyairbyte_loads_exactly_the_ground_truth_into_duckdb(ab, simulator, loopback_only, workdir):
    cache = ab.get_default_cache()
    assert Path(cache.db_path).is_relative_to(workdir), f"the cache is at {cache.db_path}, outside the test's tmp dir"

    counts = sync_and_check(ab, simulator, cache, config_for(None), ENTITY_STREAMS)
    today = dt.datetime.now(dt.timezone.utc).date()
    start = (today - dt.timedelta(days=INSIGHT_DAYS)).strftime("%Y-%m-%dT00:00:00Z")
    counts |= sync_and_check(ab, simulator, cache, config_for(start), INSIGHT_STREAMS)

    print(f"\nPyAirbyte -> DuckDB ({cache.db_path}), rows per table against ground truth:")
    for stream, (rows, truth) in counts.items():
        print(f"  {stream:<14} {rows:>5} rows  {truth:>5} in ground truth")
    assert all(rows > 0 for rows, _ in counts.values()), f"a table is empty: {counts}"
    assert not loopback_only, f"the test process tried to leave loopback: {loopback_only}"
