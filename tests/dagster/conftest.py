"""Shared pieces of the Dagster tests: `host-test simulate` (tests/python/sfm_testkit.py) serving
a small world of four ad accounts, the connector's config for it, and ground truth read back
from the simulator (`POST /__sim/truth`, see host-test/src/truth.rs) compared with the DuckDB
tables the assets write.

The world starts at real now on a virtual clock (`--clock virtual --start-time-ms NOW`): the
Python host reads the real clock, so "today" is the same day for the connector and the
simulator, while the simulator's own time moves only by the latency of each request, so the
world holds still during the test. Report jobs finish at once (`--job-duration-ms 0`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import duckdb
import pytest

ROOT = Path(os.environ.get("SFM_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "python"))
from sfm_testkit import Simulator, truth_problems  # noqa: E402
from sfm_testkit import loopback_only as keep_to_loopback  # noqa: E402

TOKEN = "sim-token"
ACCOUNTS = [f"100000000000000{i}" for i in range(1, 5)]
# Entity streams, one without a primary key (activities), and an insights stream.
STREAMS = ["campaigns", "ad_sets", "ads", "activities", "ads_insights"]
# 30 days: entity streams read what was updated since (a few objects per account), insights a
# month of days, so that a second read, which goes back only the lookback window (3 days),
# reads much less.
DAYS = 30
LOOKBACK_DAYS = 3
NOW_MS = int(time.time() * 1000)
WORLD = [
    "--seed", "11", "--clock", "virtual", "--start-time-ms", str(NOW_MS), "--job-duration-ms", "0",
    "--accounts", str(len(ACCOUNTS)), "--campaigns-per-account", "2", "--adsets-per-campaign", "1", "--ads-per-adset", "2",
]  # fmt: skip


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dagster")


@pytest.fixture(scope="session")
def loopback_only():
    """No socket of this process leaves loopback (Dagster's step processes talk to the
    simulator only: the connector's allowlist holds Graph and the simulator's host)."""
    with keep_to_loopback() as refused:
        yield refused
    assert not refused, f"the test tried to leave loopback: {refused}"


@pytest.fixture(scope="session")
def simulator(workdir: Path, loopback_only):
    sim = Simulator(workdir, WORLD)
    yield sim
    sim.stop()


def connector_config() -> dict[str, Any]:
    """The config every partition reads with (`account_ids` is set per partition)."""
    start = dt.datetime.fromtimestamp(NOW_MS / 1000, dt.timezone.utc).date() - dt.timedelta(days=DAYS)
    return {
        "credentials": {"auth_type": "Service", "access_token": TOKEN},
        "start_date": f"{start:%Y-%m-%d}T00:00:00Z",
        "insights_lookback_window": LOOKBACK_DAYS,
    }


def post(sim: Simulator, path: str, body: Any) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{sim.url}{path}", data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def revoke(sim: Simulator, account: str, revoked: bool) -> None:
    """Makes the simulator refuse (or serve again) every request of `account`."""
    status, body = post(sim, "/__sim/revoke", {"account": account, "revoked": revoked})
    if status != 200:
        pytest.fail(
            f"POST /__sim/revoke answered {status} ({body[:200]!r}); this test needs a host-test whose "
            "simulator can revoke an account's access (rebuild target/debug/host-test)"
        )


# ------------------------------------------------------------------------------ ground truth


class Truth:
    """Ground truth of a first sync of `accounts`, before and after what it is compared with."""

    def __init__(self, sim: Simulator, accounts: list[str], catalog: dict):
        self.sim, self.catalog = sim, catalog
        self.config = {**connector_config(), "account_ids": accounts}
        self.before = sim.truth(self.config, catalog)

    def check(self, database: Path, accounts: Optional[list[str]] = None) -> dict[str, int]:
        """Every table holds exactly the keys of ground truth (soak's rule when the world moved
        between the two truths), with no key twice; returns rows by stream."""
        after = self.sim.truth(self.config, self.catalog, read_start_ms=self.before["read_start_ms"])
        problems, counts = [], {}
        for entry in self.catalog["streams"]:
            stream = entry["stream"]["name"]
            pk = [p[0] for p in entry["stream"].get("source_defined_primary_key") or []]
            got = table_keys(database, stream, pk, accounts)
            problems += truth_problems(stream, got, self.before["streams"][stream], after["streams"][stream])
            counts[stream] = len(got)
        assert not problems, "\n".join(problems)
        return counts


def table_keys(database: Path, stream: str, pk: list[str], accounts: Optional[list[str]] = None) -> list[str]:
    """The key of every row of a stream's table, as host-test's truth writes it (`record_key`),
    sorted; duplicates kept."""
    with duckdb.connect(str(database), read_only=True) as conn:
        columns = ", ".join(f'"{c}"' for c in pk) if pk else "_data::VARCHAR"
        where = f"WHERE _account IN ({', '.join('?' * len(accounts))})" if accounts is not None else ""
        rows = conn.execute(f'SELECT {columns} FROM "{stream}" {where}', accounts or []).fetchall()
    if pk:
        return sorted("|".join("∅" if v is None else v for v in row) for row in rows)
    # Activities have no primary key: the truth keys them by object, time (epoch s) and type.
    keys = []
    for (data,) in rows:
        record = json.loads(data)
        when = dt.datetime.strptime(record["event_time"], "%Y-%m-%dT%H:%M:%S%z")
        keys.append(f"{record['object_id']}|{int(when.timestamp())}|{record['event_type']}")
    return sorted(keys)


