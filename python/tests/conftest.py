"""Shared pieces of the wheel's tests: host-test (the reference host, and `simulate`, the Graph
API simulator over loopback, from tests/python/sfm_testkit.py), the installed console script,
and a guard that keeps this process on loopback.

These tests run in the venv the wheel was installed into (scripts/test-wheel.sh), so they test
the package as a user gets it, not the source tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(os.environ.get("SFM_ROOT", Path(__file__).resolve().parents[2]))
# The simulator, the loopback guard and the catalog helper are tests/python's (sfm_testkit).
sys.path.insert(0, str(ROOT / "tests" / "python"))
from sfm_testkit import HOST_TEST, Simulator, configured_catalog  # noqa: E402, F401
from sfm_testkit import loopback_only as keep_to_loopback  # noqa: E402

CLI = Path(sys.executable).with_name("source-facebook-marketing")
TOKEN = "sim-token"
ACCOUNT_IDS = ["1000000000000001", "1000000000000002"]
# A small world whose report jobs finish at once, on a clock that follows real time (host-test
# and this host read the real clock, so both agree on "today" with the simulator).
WORLD = ["--seed", "7", "--clock", "wall", "--job-duration-ms", "0", "--accounts", "2",
         "--campaigns-per-account", "2", "--adsets-per-campaign", "2", "--ads-per-adset", "2"]  # fmt: skip
STREAMS = ["ad_account", "campaigns", "ad_sets", "ads", "ad_creatives", "ads_insights"]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="session")
def simulator(workdir: Path):
    sim = Simulator(workdir, WORLD)
    yield sim
    sim.stop()


def config(start_date: str | None = "2020-01-01T00:00:00Z", token: str = TOKEN) -> dict[str, Any]:
    c: dict[str, Any] = {"account_ids": ACCOUNT_IDS, "credentials": {"auth_type": "Service", "access_token": token}}
    if start_date:
        c["start_date"] = start_date
    return c


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def write(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def masked(stdout: str) -> list[str]:
    """The protocol lines with the emission time masked (each host reads its own clock)."""
    return [re.sub(r'"emitted_at":[0-9.]+', '"emitted_at":0', line) for line in stdout.splitlines()]


def final_states(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The last STATE of every stream."""
    out = {}
    for m in messages:
        if m["type"] == "STATE":
            out[m["state"]["stream"]["stream_descriptor"]["name"]] = m["state"]
    return out


@pytest.fixture(autouse=True)
def loopback_only():
    """No test of this process leaves loopback."""
    with keep_to_loopback() as refused:
        yield refused
    assert not refused, f"the test tried to leave loopback: {refused}"
