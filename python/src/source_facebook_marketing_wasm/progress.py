"""The progress line of a read on stderr, as host-test shows it: live (redrawn every 200 ms) on
a terminal, else a `progress:` line every 10 s; a table of streams at the end."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

LIVE_EVERY_S = 0.2
LOG_EVERY_S = 10.0


def line(p: Any, elapsed_s: float) -> str:
    """One line: streams done, records, what is being read, jobs, requests and pauses."""
    streams = p.streams
    total = sum(s.records for s in streams)
    done = sum(1 for s in streams if s.status in ("complete", "incomplete"))
    secs = int(elapsed_s)
    out = f"[{secs // 60:02}:{secs % 60:02}] streams {done}/{len(streams)} | records {total:,}"
    active = list(p.active)
    if active:
        more = f" +{len(active) - 3}" if len(active) > 3 else ""
        accounts = f"{getattr(p, 'accounts-done')}/{getattr(p, 'accounts-total')}"
        out += f" | reading {', '.join(active[:3])}{more} (accounts {accounts})"
    running, completed = getattr(p, "jobs-running"), getattr(p, "jobs-completed")
    if running or completed:
        out += f" | jobs {running} running, {completed} read, {getattr(p, 'jobs-retried')} retried, {getattr(p, 'jobs-split')} split"
    out += f" | requests {p.requests:,}"
    if p.retries:
        out += f" ({p.retries} retried)"
    in_flight = getattr(p, "requests-in-flight")
    if in_flight:
        out += f", {in_flight} in flight"
    if p.pauses:
        out += f" | {p.pauses} pauses, last: {getattr(p, 'last-pause') or '?'}"
    return out


class ProgressView:
    def __init__(self, live: Optional[bool] = None) -> None:
        self.live = sys.stderr.isatty() if live is None else live
        self.started = time.monotonic()
        self.last: Optional[float] = None
        self.shown = False
        self.latest: Any = None

    def due(self) -> bool:
        """Whether an update would be shown now (the host asks the component only then)."""
        every = LIVE_EVERY_S if self.live else LOG_EVERY_S
        return self.last is None or time.monotonic() - self.last >= every

    def update(self, p: Any) -> None:
        if p is None:
            return
        self.latest = p
        self.last = time.monotonic()
        text = line(p, self.last - self.started)
        if self.live:
            sys.stderr.write(f"\r\x1b[2K{text}")
            self.shown = True
        else:
            sys.stderr.write(f"progress: {text}\n")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.live and self.shown:
            sys.stderr.write("\r\x1b[2K")
            self.shown = False
            self.last = None

    def finish(self, p: Any = None) -> None:
        self.clear()
        p = p if p is not None else self.latest
        if p is None:
            return
        sys.stderr.write(f"{'stream':<52} {'records':>12}  status\n")
        for s in p.streams:
            sys.stderr.write(f"{s.name:<52} {s.records:>12,}  {s.status}\n")
        sys.stderr.write(line(p, time.monotonic() - self.started) + "\n")
