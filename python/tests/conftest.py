"""Shared pieces of the wheel's tests: host-test (the reference host, and `simulate`, the Graph
API simulator over loopback), the installed console script, and a guard that keeps this process
on loopback.

These tests run in the venv the wheel was installed into (scripts/test-wheel.sh), so they test
the package as a user gets it, not the source tree.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(os.environ.get("SFM_ROOT", Path(__file__).resolve().parents[2]))
HOST_TEST = ROOT / "target" / "debug" / "host-test"
CLI = Path(sys.executable).with_name("source-facebook-marketing")
TOKEN = "sim-token"
ACCOUNT_IDS = ["1000000000000001", "1000000000000002"]
# A small world whose report jobs finish at once, on a clock that follows real time (host-test
# and this host read the real clock, so both agree on "today" with the simulator).
WORLD = ["--seed", "7", "--clock", "wall", "--job-duration-ms", "0", "--accounts", "2",
         "--campaigns-per-account", "2", "--adsets-per-campaign", "2", "--ads-per-adset", "2"]  # fmt: skip
STREAMS = ["ad_account", "campaigns", "ad_sets", "ads", "ad_creatives", "ads_insights"]
START_TIMEOUT_S = 30


class Simulator:
    """`host-test simulate` on a free loopback port."""

    def __init__(self, workdir: Path, args: list[str]):
        if not HOST_TEST.is_file():
            pytest.fail(f"{HOST_TEST} is missing; build it with `cargo build -p host-test` (scripts/test.sh does)")
        self.log = workdir / f"simulate-{time.monotonic_ns()}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [str(HOST_TEST), "simulate", "--port", "0", *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (m := re.search(r"http://127\.0\.0\.1:(\d+)", self.log.read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"host-test simulate did not start:\n{self.log.read_text()}")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def counters(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__sim/counters", timeout=START_TIMEOUT_S) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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


def configured_catalog(catalog: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Incremental on the default cursor where offered, full refresh elsewhere, appended."""
    streams = []
    for s in catalog["streams"]:
        if s["name"] in names:
            inc = "incremental" in s["supported_sync_modes"]
            c = {"stream": s, "sync_mode": "incremental" if inc else "full_refresh", "destination_sync_mode": "append"}
            if inc:
                c["cursor_field"] = s.get("default_cursor_field", [])
            streams.append(c)
    assert len(streams) == len(names), f"discover offered {len(streams)} of {names}"
    return {"streams": streams}


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


# --------------------------------------------------------------------------------- loopback


def _is_loopback(host: Any) -> bool:
    if host in (None, "localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only():
    """Refuses, and records, every name lookup or connection of this process off loopback."""
    refused: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            refused.append(f"lookup of {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"test: {host} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            refused.append(f"connection to {address}")
            raise OSError(f"test: {address} is not loopback")
        return real_connect(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", connect)
        yield refused
    assert not refused, f"the test tried to leave loopback: {refused}"
