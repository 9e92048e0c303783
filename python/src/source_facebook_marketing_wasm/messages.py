"""The connector's messages as Python objects, and as Airbyte protocol lines.

Every message keeps the JSON text the component handed over (`raw`), so that a protocol line is
written without re-encoding it: the same bytes `host-test` writes. The parsed form (`data`,
`state`, ...) is made on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Optional, Union


def _dumps(value: Any) -> str:
    # serde_json's compact form, keys in order (the Rust hosts' `json!` maps are sorted).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Record:
    """An Airbyte RECORD: `data` is the record as a dict."""

    stream: str
    raw: str = field(repr=False)
    emitted_at: int
    namespace: Optional[str] = None

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def line(self) -> str:
        ns = f',"namespace":{_dumps(self.namespace)}' if self.namespace is not None else ""
        return f'{{"type":"RECORD","record":{{"stream":{_dumps(self.stream)}{ns},"data":{self.raw},"emitted_at":{self.emitted_at}}}}}'


@dataclass(frozen=True)
class State:
    """An Airbyte STATE: `state` is what goes under `state` (a per-stream state, usually)."""

    raw: str = field(repr=False)

    @cached_property
    def state(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def line(self) -> str:
        return f'{{"type":"STATE","state":{self.raw}}}'


@dataclass(frozen=True)
class Log:
    """An Airbyte LOG: `level` is Airbyte's name (`INFO`, `WARN`, ...)."""

    level: str
    message: str

    def line(self) -> str:
        return _dumps({"type": "LOG", "log": {"level": self.level, "message": self.message}})


@dataclass(frozen=True)
class Trace:
    """An Airbyte TRACE: an error, an estimate or a stream status."""

    raw: str = field(repr=False)

    @cached_property
    def trace(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def is_error(self) -> bool:
        return '"type":"ERROR"' in self.raw

    def line(self) -> str:
        return f'{{"type":"TRACE","trace":{self.raw}}}'


@dataclass(frozen=True)
class ConnectionStatus:
    """An Airbyte CONNECTION_STATUS: `status` is `SUCCEEDED` or `FAILED`."""

    status: str
    message: Optional[str] = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def line(self) -> str:
        status: dict[str, Any] = {"status": self.status}
        if self.message is not None:
            status["message"] = self.message
        return _dumps({"type": "CONNECTION_STATUS", "connectionStatus": status})


@dataclass(frozen=True)
class Catalog:
    raw: str = field(repr=False)

    @cached_property
    def catalog(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def line(self) -> str:
        return f'{{"type":"CATALOG","catalog":{self.raw}}}'


@dataclass(frozen=True)
class Spec:
    raw: str = field(repr=False)

    @cached_property
    def spec(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def line(self) -> str:
        return f'{{"type":"SPEC","spec":{self.raw}}}'


Message = Union[Record, State, Log, Trace, ConnectionStatus, Catalog, Spec]

_LEVELS = {"fatal": "FATAL", "error": "ERROR", "warn": "WARN", "info": "INFO", "debug": "DEBUG", "trace": "TRACE"}


def from_wit(v: Any) -> Message:
    """A WIT `message` (a wasmtime-py Variant) as its Python class."""
    tag, p = v.tag, v.payload
    if tag == "record":
        return Record(p.stream, p.data, getattr(p, "emitted-at"), p.namespace)
    if tag == "state":
        return State(p)
    if tag == "log":
        return Log(_LEVELS.get(p.level, str(p.level).upper()), p.message)
    if tag == "trace":
        return Trace(p)
    if tag == "connection-status":
        return ConnectionStatus("SUCCEEDED" if p.status == "succeeded" else "FAILED", p.message)
    if tag == "catalog":
        return Catalog(p)
    if tag == "spec":
        return Spec(p)
    raise ValueError(f"the component sent a message of an unknown kind: {tag}")


def error_trace(failure_type: str, message: str, internal: str, emitted_at_ms: int) -> Trace:
    """An error TRACE of the host's own (a file it could not read, a guest that trapped)."""
    payload = {
        "type": "ERROR",
        "emitted_at": float(emitted_at_ms),
        "error": {"message": message, "internal_message": internal, "failure_type": failure_type},
    }
    return Trace(_dumps(payload))
