"""What the Python tests and the scripts share: `host-test simulate` on a free loopback port,
a guard that keeps a test process on loopback, and a configured catalog made from discover's
output. Standard library and pytest only, so that both test venvs (tests/python's and the
wheel's, python/tests) import it; the scripts run it as a command:

    python3 tests/python/sfm_testkit.py configured-catalog DISCOVER_JSONL OUT STREAM...
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
HOST_TEST = ROOT / "target" / "debug" / "host-test"
# 30 s for the simulator to start or to answer: it takes milliseconds, and a broken one fails
# the test instead of hanging the CI run.
START_TIMEOUT_S = 30


class Simulator:
    """`host-test simulate --port 0 ARGS...`; its log goes to a file in `workdir`."""

    def __init__(self, workdir: Path, args: list[str]):
        import pytest

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

    def _call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, headers={"content-type": "application/json"}, method="GET" if data is None else "POST"
        )
        with urllib.request.urlopen(request, timeout=START_TIMEOUT_S) as answer:
            return json.load(answer)

    def counters(self) -> dict[str, Any]:
        """The simulator's request counters (reading them changes neither counters nor clock)."""
        return self._call("/__sim/counters")

    def truth(self, config: dict, catalog: dict, read_start_ms: int | None = None) -> dict[str, Any]:
        """The simulator's ground truth now, for a first sync that started at `read_start_ms`."""
        return self._call("/__sim/truth", {"config": config, "catalog": catalog, "read_start_ms": read_start_ms})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def configured_catalog(catalog: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The named streams of a discovered catalog: incremental on the default cursor where
    offered, full refresh elsewhere, appended."""
    streams = []
    for s in catalog["streams"]:
        if s["name"] in names:
            inc = "incremental" in s["supported_sync_modes"]
            c = {"stream": s, "sync_mode": "incremental" if inc else "full_refresh", "destination_sync_mode": "append"}
            if inc:
                c["cursor_field"] = s.get("default_cursor_field", [])
            streams.append(c)
    if len(streams) != len(names):
        raise ValueError(f"discover offered {len(streams)} of the {len(names)} streams asked for: {names}")
    return {"streams": streams}


def truth_problems(stream: str, got: list[str], before: list[str], after: list[str]) -> list[str]:
    """Soak's rule, stated as problems: exact equality (keys and how often each comes, which
    catches a row stored twice) when the truth held still."""
    if before == after:
        if sorted(got) == sorted(before):
            return []
        lost, extra = Counter(before) - Counter(got), Counter(got) - Counter(before)
        return [
            f"{stream}: {len(got)} rows, {len(before)} in ground truth; "
            f"missing {sorted(lost)[:5]}, not in truth or more than once {sorted(extra)[:5]}"
        ]
    must, allowed, have = set(before) & set(after), set(before) | set(after), Counter(got)
    problems = []
    if lost := sorted(must - set(have)):
        problems.append(f"{stream}: lost {len(lost)} key(s) of ground truth: {lost[:5]}")
    if extra := sorted(set(have) - allowed):
        problems.append(f"{stream}: {len(extra)} key(s) not in ground truth: {extra[:5]}")
    most = Counter(before) | Counter(after)
    if dupes := sorted(k for k, n in have.items() if n > most[k]):
        problems.append(f"{stream}: {len(dupes)} key(s) stored more often than ground truth has them: {dupes[:5]}")
    return problems


def _is_loopback(host: Any) -> bool:
    if host in (None, "localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host)).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuses, and records, every name lookup or connection of this process off loopback."""
    import pytest

    refused: list[str] = []
    real_getaddrinfo, real_connect, real_connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            refused.append(f"lookup of {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"test: {host} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    def guarded(real):
        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
                refused.append(f"connection to {address}")
                raise OSError(f"test: {address} is not loopback")
            return real(sock, address)

        return connect

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", guarded(real_connect))
        mp.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
        yield refused


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "configured-catalog":
        print(__doc__, file=sys.stderr)
        return 64
    discover, out, names = argv[1], argv[2], argv[3:]
    with open(discover, encoding="utf-8") as f:
        catalog = next(json.loads(line) for line in f if '"CATALOG"' in line)["catalog"]
    try:
        configured = configured_catalog(catalog, names)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    with open(out, "w", encoding="utf-8") as f:
        json.dump(configured, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
