"""The host's `http-fetch` against a hostile server on loopback: the WIT contract as the Rust
host keeps it (the size cap on the decompressed body, no redirect followed, the whole body
within the timeout, the allowlist, transport failures named), and concurrency (a slow answer
holds back no other). No test waits on a clock of its own: slow answers are held by events."""

from __future__ import annotations

import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from source_facebook_marketing_wasm import _guest
from source_facebook_marketing_wasm._fetch import Allowlist, FetchError, Fetcher, Request, Response

CAP = 100_000


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()  # lets /slow answer and /stall end
    hits: dict[str, int] = {}

    def log_message(self, *args) -> None:  # quiet
        pass

    def send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        Hostile.hits[self.path] = Hostile.hits.get(self.path, 0) + 1
        if self.path == "/ok":
            self.send(200, b'{"data":[]}', content_type="application/json", x_app_usage='{"call_count":1}')
        elif self.path == "/gzip":
            self.send(200, gzip.compress(b'{"data":[1,2,3]}'), content_encoding="gzip")
        elif self.path == "/gzip-bomb":
            # 2 KB on the wire, 10 MB once decompressed.
            self.send(200, gzip.compress(b"0" * 10_000_000), content_encoding="gzip")
        elif self.path == "/big-declared":
            self.send_response(200)
            self.send_header("content-length", str(10 * CAP))
            self.end_headers()
            self.wfile.write(b"x" * 10)
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"2710\r\n" + b"x" * 10_000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/redirect":
            self.send(302, b"", location=f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere")
        elif self.path == "/endless":
            # A body that never ends, sent as fast as it is read.
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            try:
                while not Hostile.release.is_set():
                    self.wfile.write(b"400\r\n" + b"y" * 1024 + b"\r\n")
            except OSError:
                pass
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("content-length", "100")
            self.end_headers()
            self.wfile.write(b"z")
            self.wfile.flush()
            Hostile.release.wait(60)
        elif self.path == "/slow":
            Hostile.release.wait(60)
            self.send(200, b'{"slow":true}')
        else:
            self.send(404, b'{"error":{"message":"no such path","code":803}}')

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send(200, body)


@pytest.fixture
def server() -> Iterator[str]:
    Hostile.release.clear()
    Hostile.hits = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Hostile.release.set()
    httpd.shutdown()
    httpd.server_close()


def fetcher() -> Fetcher:
    return Fetcher(Allowlist(hosts=["graph.facebook.com", "127.0.0.1"]))


def get(url: str, timeout_ms: int = 10_000, cap: int = CAP, method: str = "GET", body: bytes | None = None):
    f = fetcher()
    try:
        admitted = f.admit(Request(method, url, [("accept", "application/json")], body, timeout_ms, cap))
        assert not isinstance(admitted, FetchError), admitted
        return f.perform(admitted)
    finally:
        f.close()


def test_an_answer_comes_back_with_its_headers_and_gzip_undone(server):
    r = get(f"{server}/ok")
    assert isinstance(r, Response) and r.status == 200 and r.body == b'{"data":[]}'
    assert ("x-app-usage", '{"call_count":1}') in r.headers
    g = get(f"{server}/gzip")
    assert isinstance(g, Response) and g.body == b'{"data":[1,2,3]}'
    p = get(f"{server}/echo", method="POST", body=b"batch=%5B%5D")
    assert isinstance(p, Response) and p.body == b"batch=%5B%5D"


def test_the_size_cap_holds_for_declared_chunked_and_decompressed_bodies(server):
    for path in ("/big-declared", "/big-chunked", "/gzip-bomb"):
        assert get(f"{server}{path}") == FetchError("response-too-large", CAP), path


def test_a_redirect_is_handed_back_not_followed(server):
    r = get(f"{server}/redirect")
    assert isinstance(r, Response) and r.status == 302
    assert dict(r.headers)["location"].endswith("/elsewhere")
    assert "/elsewhere" not in Hostile.hits


def test_the_whole_body_must_come_within_the_timeout(server):
    # A body that never ends, and one that stops half-way: each ends at the request's timeout.
    assert get(f"{server}/endless", timeout_ms=300, cap=1 << 40) == FetchError("timeout")
    assert get(f"{server}/stall", timeout_ms=300) == FetchError("timeout")


def test_the_allowlist_refuses_other_hosts_before_any_connection():
    f = Fetcher(Allowlist(hosts=["graph.facebook.com"]))
    refused = f.admit(Request("GET", "https://example.com/x", [], None, 1000, CAP))
    assert refused == FetchError("denied-by-host", "example.com is not on the host's allowlist")
    assert f.denied == ["example.com"] and f.requests == 0
    look_alike = f.admit(Request("GET", "https://graph.facebook.com.example/v25.0/me", [], None, 1000, CAP))
    assert isinstance(look_alike, FetchError) and look_alike.tag == "denied-by-host"
    thumbnails = Fetcher(Allowlist(hosts=["graph.facebook.com"], suffixes=[".fbcdn.net"]))
    assert not isinstance(thumbnails.admit(Request("GET", "https://scontent.xx.fbcdn.net/t.png", [], None, 1, 1)), FetchError)


def test_graph_calls_go_to_graph_url_and_nothing_else_is_rewritten():
    f = Fetcher(Allowlist(hosts=["graph.facebook.com", "127.0.0.1"]), graph_url="http://127.0.0.1:9/")
    r = f.admit(Request("GET", "https://graph.facebook.com/v25.0/act_1/ads?limit=2", [], None, 1000, CAP))
    assert isinstance(r, Request) and r.url == "http://127.0.0.1:9/v25.0/act_1/ads?limit=2"


def test_a_closed_port_is_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert get(f"http://127.0.0.1:{port}/x") == FetchError("connection-refused")


def test_a_slow_answer_holds_back_no_other(server):
    f = fetcher()
    try:
        for rid, path in ((1, "/slow"), (2, "/ok"), (3, "/gzip")):
            req = f.admit(Request("GET", f"{server}{path}", [], None, 10_000, CAP))
            assert isinstance(req, Request)
            f.start(rid, req)
        done: dict[int, object] = {}
        while len(done) < 2:
            done.update(f.wait(None))
        assert set(done) == {2, 3}, "the fast answers came while the slow one was in flight"
        assert f.in_flight == 1
        assert f.wait(0) == [], "nothing more is ready, and a zero wait does not block"
        Hostile.release.set()
        (rid, slow), = f.wait(None)
        assert rid == 1 and isinstance(slow, Response) and slow.body == b'{"slow":true}'
        assert f.wait(None) == [], "with nothing in flight, wait returns at once"
    finally:
        f.close()


def test_byte_lists_cross_in_one_copy():
    """The layout check at import found wasmtime's C values as the fast path expects them."""
    assert _guest.FAST_BYTES
