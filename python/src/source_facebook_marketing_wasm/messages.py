"""The connector's messages as Python objects, and as Airbyte protocol lines.

Every message keeps the JSON text the component handed over (`raw`), so that a protocol line is
written without re-encoding it: the same bytes `host-test` writes. The parsed form (`data`,
`state`, ...) is made on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Optional, Union


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
class _Payload:
    """A message whose payload is a JSON object handed over as text: kept as `raw`, parsed on
    first use, written back as it came."""

    raw: str = field(repr=False)
    _TYPE: ClassVar[str] = ""
    _KEY: ClassVar[str] = ""

    @cached_property
    def _parsed(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def line(self) -> str:
        return f'{{"type":"{self._TYPE}","{self._KEY}":{self.raw}}}'


@dataclass(frozen=True)
class State(_Payload):
    """An Airbyte STATE: `state` is what goes under `state` (a per-stream state, usually)."""

    _TYPE = "STATE"
    _KEY = "state"

    @property
    def state(self) -> dict[str, Any]:
        return self._parsed


@dataclass(frozen=True)
class Trace(_Payload):
    """An Airbyte TRACE: an error, an estimate or a stream status."""

    _TYPE = "TRACE"
    _KEY = "trace"

    @property
    def trace(self) -> dict[str, Any]:
        return self._parsed

    @property
    def is_error(self) -> bool:
        return '"type":"ERROR"' in self.raw


@dataclass(frozen=True)
class Catalog(_Payload):
    """An Airbyte CATALOG: `catalog` is the discovered catalog."""

    _TYPE = "CATALOG"
    _KEY = "catalog"

    @property
    def catalog(self) -> dict[str, Any]:
        return self._parsed


@dataclass(frozen=True)
class Spec(_Payload):
    """An Airbyte SPEC: `spec` is the connector specification."""

    _TYPE = "SPEC"
    _KEY = "spec"

    @property
    def spec(self) -> dict[str, Any]:
        return self._parsed


@dataclass(frozen=True)
class Log:
    """An Airbyte LOG: `level` is Airbyte's name (`INFO`, `WARN`, ...)."""

    level: str
    message: str

    def line(self) -> str:
        return _dumps({"type": "LOG", "log": {"level": self.level, "message": self.message}})


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


Message = Union[Record, State, Log, Trace, ConnectionStatus, Catalog, Spec]

def error_trace(failure_type: str, message: str, internal: str, emitted_at_ms: int) -> Trace:
    """An error TRACE of the host's own (a file it could not read, a guest that trapped)."""
    payload = {
        "type": "ERROR",
        "emitted_at": float(emitted_at_ms),
        "error": {"message": message, "internal_message": internal, "failure_type": failure_type},
    }
    return Trace(_dumps(payload))
