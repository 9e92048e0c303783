"""Meta (Facebook) Marketing API source connector: one WebAssembly component, hosted here by
wasmtime-py, for pipelines that speak Python rather than the Airbyte protocol.

    import source_facebook_marketing_wasm as fb

    config = {"account_ids": ["1234567890"], "credentials": {"access_token": "EAAB..."}}
    fb.check(config)                       # a ConnectionStatus
    catalog = fb.discover(config)          # a Catalog (`.catalog` is the dict)
    for m in fb.read(config, configured_catalog, state=None):
        if isinstance(m, fb.Record):
            m.stream, m.data               # the record as a dict
        elif isinstance(m, fb.State):
            save(m.state)                  # what the next read starts from

The state is kept per ad account; `split(state, accounts)` takes out some accounts' part of it
and `merge(states)` puts such parts back together (module `state`), for syncs that read each
account on its own. The module `dagster` (`pip install source-facebook-marketing-wasm[dagster]`)
makes the streams Dagster assets with one partition per ad account.

The console script `source-facebook-marketing` is the same connector as an Airbyte source
(`spec | check | discover | read`).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional, Union

from ._fetch import GRAPH_ORIGIN, Allowlist, url_host
from ._guest import Guest, HostError, Limits
from .messages import Catalog, ConnectionStatus, Log, Message, Record, Spec, State, Trace
from .state import Merged, merge, split

__all__ = [
    "Catalog",
    "ConnectionStatus",
    "HostError",
    "Log",
    "Merged",
    "Message",
    "Record",
    "Spec",
    "State",
    "Trace",
    "check",
    "discover",
    "merge",
    "read",
    "spec",
    "split",
]

__version__ = "0.1.0"

JsonLike = Union[str, bytes, dict, list]


def _text(value: Optional[JsonLike]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return json.dumps(value)


def allowlist(config: Optional[str], graph_url: Optional[str]) -> Allowlist:
    """Graph, the `graph_url` host if given, and the image CDN when the config fetches
    thumbnails: what host-test allows."""
    allow = Allowlist(hosts=[url_host(GRAPH_ORIGIN) or "graph.facebook.com"])
    if graph_url is not None:
        host = url_host(graph_url)
        if not host:
            raise HostError(f"graph_url {graph_url} is not an absolute URL")
        allow.hosts.append(host)
    try:
        parsed = json.loads(config) if config else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("fetch_thumbnail_images") is True:
        allow.suffixes.extend([".fbcdn.net", ".facebook.com"])
    return allow


def _open_guest(config: Optional[str], graph_url: Optional[str], memory_mb: Optional[int]) -> Guest:
    limits = Limits(memory_mb=memory_mb) if memory_mb else Limits()
    return Guest(allowlist(config, graph_url), graph_url=graph_url, limits=limits)


def spec() -> Spec:
    """The connector specification."""
    with _open_guest(None, None, None) as g:
        return _one(g.spec(), Spec)


def check(config: JsonLike, *, graph_url: Optional[str] = None) -> ConnectionStatus:
    """Validates `config` and tries the API with it."""
    text = _text(config)
    with _open_guest(text, graph_url, None) as g:
        return _one(g.check(text or ""), ConnectionStatus)


def discover(config: JsonLike, *, graph_url: Optional[str] = None) -> Catalog:
    """The streams `config` makes available. Raises `HostError` with the connector's words
    when it answers with an error instead."""
    text = _text(config)
    with _open_guest(text, graph_url, None) as g:
        return _one(g.discover(text or ""), Catalog)


def read(
    config: JsonLike,
    catalog: JsonLike,
    state: Optional[JsonLike] = None,
    *,
    graph_url: Optional[str] = None,
    memory_mb: Optional[int] = None,
) -> Iterator[Message]:
    """The messages of one sync, as the component hands them out batch by batch (at most 500
    messages or 256 KiB of text are held at a time). `state` is what `--state` takes: the
    `state` objects of the last sync's STATE messages as a list (`State.state`), or Airbyte's
    legacy object. A failed sync
    ends with an error `Trace` (`.is_error`), as in the protocol; the host's own failures raise
    `HostError`."""
    config_text = _text(config) or ""
    with _open_guest(config_text, graph_url, memory_mb) as g:
        for batch in g.read(config_text, _text(catalog) or "", _text(state)):
            yield from batch


def _one(batch: list[Message], kind: type) -> Any:
    for m in batch:
        if isinstance(m, kind):
            return m
    errors = [m.trace.get("error", {}).get("message", m.raw) for m in batch if isinstance(m, Trace) and m.is_error]
    raise HostError(errors[0] if errors else f"the connector answered without a {kind.__name__} message")
