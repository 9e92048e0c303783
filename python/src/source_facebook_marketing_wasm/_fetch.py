"""The component's `http-fetch`: requests run concurrently on a pool of threads, under the
same contract as the Rust host (`crates/host`): only allowed hosts, no redirect followed, the
response-size cap applied to the decompressed body, the whole body within the request's timeout,
and every transport failure named as a WIT `fetch-error`.

Nothing here touches wasmtime: a completion is plain data, lowered by `_guest`.
"""

from __future__ import annotations

import codecs
import queue
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Union

import urllib3
from urllib3 import exceptions as u3

GRAPH_ORIGIN = "https://graph.facebook.com"
USER_AGENT = "source-facebook-marketing-wasm/0.1 (python)"
# 256: threads performing requests at most (the component keeps at most
# `max_concurrent_requests` in flight, itself at most 256: `MAX_CONCURRENT_REQUESTS` in
# crates/wire/src/limits.rs, which Python cannot import; keep the two equal).
MAX_WORKERS = 256
# 64 KiB: one read of a body.
READ_CHUNK = 64 << 10
# A connection is given at most this long to open, within the request's own timeout.
CONNECT_TIMEOUT_S = 20.0


@dataclass
class Request:
    method: str  # "GET" or "POST"
    url: str
    headers: list[tuple[str, str]]
    body: Optional[bytes]
    timeout_ms: int
    max_response_bytes: int


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    # Whether `body` is valid UTF-8 (checked as it arrived): it then crosses as text.
    utf8: bool = False


@dataclass
class FetchError:
    """A WIT `fetch-error`: `tag` is its case name, `payload` its value (a string, or the cap)."""

    tag: str
    payload: Union[str, int, None] = None


Outcome = Union[Response, FetchError]


def rewrite_origin(url: str, base: Optional[str]) -> str:
    """`url` with the Graph origin replaced by `base`; other origins are left as they are."""
    if base is None or not url.startswith(GRAPH_ORIGIN):
        return url
    rest = url[len(GRAPH_ORIGIN) :]
    # Only the whole origin: `https://graph.facebook.com.example` is another host.
    if rest and rest[0] not in "/?#":
        return url
    return base.rstrip("/") + rest


def url_host(url: str) -> Optional[str]:
    """The host name of an absolute URL (IPv6 without brackets, no port, no user info)."""
    if "://" not in url:
        return None
    rest = url.split("://", 1)[1]
    for sep in "/?#":
        rest = rest.split(sep, 1)[0]
    authority = rest.rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.split(":", 1)[0]


@dataclass
class Allowlist:
    """Hosts the connector may reach: exact names, and name suffixes (`.fbcdn.net`)."""

    hosts: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)

    def permits(self, host: str) -> bool:
        host = host.lower()
        return host in (h.lower() for h in self.hosts) or any(host.endswith(s) for s in self.suffixes)


def _transport_error(e: BaseException) -> FetchError:
    """A urllib3 (or socket) failure as the WIT names it."""
    text = str(e)
    # Before the timeouts: urllib3 2 derives NewConnectionError from ConnectTimeoutError.
    if isinstance(e, u3.NameResolutionError):
        return FetchError("dns", text)
    if isinstance(e, u3.NewConnectionError):
        cause = e.__cause__ or e.__context__
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text:
            return FetchError("connection-refused")
        if isinstance(cause, socket.gaierror):
            return FetchError("dns", text)
        if isinstance(cause, (socket.timeout, TimeoutError)):
            return FetchError("timeout")
        return FetchError("other", text)
    if isinstance(e, (u3.ConnectTimeoutError, u3.ReadTimeoutError, socket.timeout, TimeoutError)):
        return FetchError("timeout")
    if isinstance(e, (u3.SSLError, ssl.SSLError)):
        return FetchError("tls", text)
    if isinstance(e, u3.MaxRetryError) and e.reason is not None:
        return _transport_error(e.reason)
    if isinstance(e, ConnectionRefusedError):
        return FetchError("connection-refused")
    if isinstance(e, (u3.ProtocolError, u3.IncompleteRead, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        inner = e.args[1] if isinstance(e, u3.ProtocolError) and len(e.args) > 1 else None
        if isinstance(inner, (socket.timeout, TimeoutError)):
            return FetchError("timeout")
        return FetchError("connection-reset")
    return FetchError("other", text)


class Fetcher:
    """Performs the component's requests: `start` queues them, `wait` hands back what completed."""

    def __init__(self, allow: Allowlist, graph_url: Optional[str] = None) -> None:
        self.allow = allow
        self.graph_url = graph_url
        # No retries and no redirects: a 3xx goes back to the component as it came, which fails
        # that request naming its `Location` (a redirect never becomes the answer of a call).
        self._pool = urllib3.PoolManager(
            num_pools=16,
            maxsize=MAX_WORKERS,
            block=False,
            retries=False,
            headers={"user-agent": USER_AGENT},
        )
        self._executor: Optional[ThreadPoolExecutor] = None
        self._done: "queue.SimpleQueue[tuple[int, Outcome]]" = queue.SimpleQueue()
        self.in_flight = 0
        self.requests = 0
        self.denied: list[str] = []

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pool.clear()

    def admit(self, request: Request) -> Union[Request, FetchError]:
        """The request as the host performs it (origin rewritten), or why the sandbox refuses it."""
        url = rewrite_origin(request.url, self.graph_url)
        host = url_host(url) or ""
        if not self.allow.permits(host):
            self.denied.append(host)
            return FetchError("denied-by-host", f"{host} is not on the host's allowlist")
        request.url = url
        return request

    def start(self, rid: int, request: Request) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="sfm-fetch")
        self.in_flight += 1
        self.requests += 1
        self._executor.submit(self._run, rid, request)

    def _run(self, rid: int, request: Request) -> None:
        try:
            outcome = self.perform(request)
        except BaseException as e:  # noqa: BLE001 - every failure must come back as an outcome
            outcome = FetchError("other", f"the host's fetch failed: {e!r}")
        self._done.put((rid, outcome))

    def wait(self, wait_ms: Optional[int]) -> list[tuple[int, Outcome]]:
        """What completed since the last call. With requests in flight, waits for at least one,
        or until `wait_ms` passed (then none); with nothing in flight, returns at once."""
        if self.in_flight == 0:
            return []
        done: list[tuple[int, Outcome]] = []
        try:
            done.append(self._done.get(timeout=None if wait_ms is None else wait_ms / 1000))
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(done)
        return done

    def perform(self, request: Request) -> Outcome:
        """One request on this thread, held to its timeout over the whole body."""
        limit = max(request.timeout_ms, 1) / 1000
        started = time.monotonic()
        timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, limit), read=limit)
        try:
            resp = self._pool.request(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers) if request.headers else None,
                timeout=timeout,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=True,
            )
        except Exception as e:  # noqa: BLE001
            return _transport_error(e)
        complete = False
        try:
            headers = [(k.lower(), v) for k, v in resp.headers.iteritems()]
            cap = request.max_response_bytes
            declared = resp.headers.get("content-length")
            encoded = resp.headers.get("content-encoding") is not None
            # A body that says it is larger than the cap is refused before a byte of it is read.
            if not encoded and declared is not None and declared.strip().isdigit() and int(declared) > cap:
                return FetchError("response-too-large", cap)
            remaining = limit - (time.monotonic() - started)
            if remaining <= 0:
                return FetchError("timeout")
            # The whole body must be in within the timeout however it trickles: at the deadline
            # the response is shut down, which ends a read blocked on the socket.
            overdue = threading.Event()

            def expire() -> None:
                overdue.set()
                resp.shutdown()

            timer = threading.Timer(remaining, expire)
            timer.daemon = True
            timer.start()
            try:
                # Chunks joined once at the end: the body is held once, at its size (a growing
                # buffer would hold up to twice that, and a copy more at the end). Each chunk is
                # checked as UTF-8 on the way, so that no whole-body text is made to find out.
                chunks: list[bytes] = []
                size = 0
                utf8 = codecs.getincrementaldecoder("utf-8")()
                text = True
                while True:
                    chunk = resp.read(READ_CHUNK, decode_content=True)
                    if overdue.is_set():
                        return FetchError("timeout")
                    if not chunk:
                        complete = True
                        break
                    size += len(chunk)
                    if size > cap:
                        return FetchError("response-too-large", cap)
                    chunks.append(chunk)
                    if text:
                        try:
                            utf8.decode(chunk)
                        except UnicodeDecodeError:
                            text = False
                if text:
                    try:
                        utf8.decode(b"", final=True)
                    except UnicodeDecodeError:
                        text = False
            except Exception as e:  # noqa: BLE001
                return FetchError("timeout") if overdue.is_set() else _transport_error(e)
            finally:
                timer.cancel()
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return Response(resp.status, headers, body, utf8=text)
        finally:
            # A connection is reused only after a body read to its end; any other is closed.
            if complete:
                resp.release_conn()
            else:
                resp.close()
