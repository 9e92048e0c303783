"""The component in wasmtime-py: compiled once per user (cached by hash), instantiated once per
command, with the two imports of its `host` interface, `http-fetch` and `sleep`.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import wasmtime
from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record, Variant
from wasmtime.component import _types as component_types
from wasmtime.component._enter import enter_wasm

from . import _fetch, _lift
from ._fetch import Allowlist, FetchError, Fetcher, Request
from .messages import Message

try:
    _WASMTIME_VERSION = importlib.metadata.version("wasmtime")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - wasmtime from a source tree
    _WASMTIME_VERSION = "unknown"

INTERFACE_VERSION = "0.3.0"
HOST_INTERFACE = f"airbyte:source-facebook-marketing/host@{INTERFACE_VERSION}"
SOURCE_INTERFACE = f"airbyte:source-facebook-marketing/source@{INTERFACE_VERSION}"
COMPONENT_FILE = "source_facebook_marketing.wasm"
# The guest's memory cap, as host-test's default (`--memory-mb 512`).
DEFAULT_MEMORY_MB = 512


class HostError(Exception):
    """The host could not run the component (not a failure the connector reported)."""


# --- bytes and text in one copy ------------------------------------------------------------------
#
# wasmtime-py's component API passes a `list<u8>` as one 32-byte C value per byte, converted by
# a Python loop: about 1.6 s and 32 MB for a 1 MB body. Request bodies (guest to host) and the
# rare response body that is not UTF-8 (host to guest) take this path; it builds and reads that
# array with slice operations instead. UTF-8 bodies go as strings, and a string is copied from
# the body's bytes into the C value once (`Utf8Text`). The layout is read from wasmtime's own
# ctypes structures and checked below; a release with another layout keeps wasmtime-py's own
# conversions.

_ffi = wasmtime._ffi
_VAL = _ffi.wasmtime_component_val_t
_VAL_SIZE = ctypes.sizeof(_VAL)
_KIND_AT = _VAL.kind.offset
_U8_AT = _VAL.of.offset + _ffi.wasmtime_component_valunion.u8.offset
_U8_KIND = _ffi.WASMTIME_COMPONENT_U8.value
_LIST_KIND = _ffi.WASMTIME_COMPONENT_LIST.value
_generic_to_c = component_types.ListType.convert_to_c
_generic_from_c = component_types.ListType.convert_from_c


def _bytes_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if not isinstance(val, (bytes, bytearray)) or not self._is_bytes():
        return _generic_to_c(self, store, val, ptr)
    n = len(val)
    raw = _ffi.wasmtime_component_vallist_t()
    _ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        values = bytearray(n * _VAL_SIZE)
        values[_KIND_AT::_VAL_SIZE] = bytes((_U8_KIND,)) * n
        values[_U8_AT::_VAL_SIZE] = val
        ctypes.memmove(raw.data, (ctypes.c_char * len(values)).from_buffer(values), len(values))
    ptr.contents.kind = _ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw


def _bytes_from_c(self: Any, c: Any) -> Any:
    if c.kind != _LIST_KIND or not self._is_bytes():
        return _generic_from_c(self, c)
    n = c.of.list.size
    try:
        return ctypes.string_at(c.of.list.data, n * _VAL_SIZE)[_U8_AT::_VAL_SIZE] if n else b""
    finally:
        _ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


class Utf8Text(str):
    """A response body known to be UTF-8, lowered as a WIT string straight from its bytes: no
    decoding into a Python str and encoding back. The str itself is empty; `utf8` holds the text."""

    utf8: bytes


_generic_str_to_c = component_types.String.convert_to_c


def _text_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if type(val) is not Utf8Text:
        return _generic_str_to_c(self, store, val, ptr)
    data = val.utf8
    vec = _ffi.wasm_byte_vec_t()
    _ffi.wasm_byte_vec_new_uninitialized(ctypes.byref(vec), len(data))
    if data:
        ctypes.memmove(vec.data, data, len(data))
    ptr.contents.kind = _ffi.WASMTIME_COMPONENT_STRING
    ptr.contents.of.string = vec


def utf8_text(data: bytes) -> Utf8Text:
    t = Utf8Text()
    t.utf8 = data
    return t


def _layout_is_as_expected() -> bool:
    """One byte string through the fast path and back, read field by field."""
    raw = _ffi.wasmtime_component_val_t()
    probe = bytes(range(256)) * 2
    try:
        _bytes_to_c(_U8List(), None, probe, ctypes.pointer(raw))
        items = raw.of.list
        ok = items.size == len(probe) and all(
            items.data[i].kind == _U8_KIND and items.data[i].of.u8 == probe[i] for i in range(len(probe))
        )
        ok = ok and _bytes_from_c(_U8List(), raw) == probe
        text = "naïve ☃ text"
        _text_to_c(None, None, utf8_text(text.encode()), ctypes.pointer(raw))
        ok = ok and component_types.String().convert_from_c(raw) == text
    except Exception:  # noqa: BLE001 - any surprise means "use the generic path"
        return False
    return ok


class _U8List:
    """Stands in for a `list<u8>` type in the layout check."""

    def _is_bytes(self) -> bool:
        return True


if _layout_is_as_expected():
    component_types.ListType.convert_to_c = _bytes_to_c  # type: ignore[method-assign]
    component_types.ListType.convert_from_c = _bytes_from_c  # type: ignore[method-assign]
    component_types.String.convert_to_c = _text_to_c  # type: ignore[method-assign]
    FAST_BYTES = True
else:  # pragma: no cover - another wasmtime-py layout
    FAST_BYTES = False


# --- the component, compiled once per user -------------------------------------------------------


def component_path() -> Path:
    """`SFM_COMPONENT`, else the component inside this package."""
    env = os.environ.get("SFM_COMPONENT")
    return Path(env) if env else Path(__file__).with_name(COMPONENT_FILE)


def cache_dir() -> Path:
    """`SFM_CACHE_DIR`, else the user's cache folder, as host-test's (`source-facebook-marketing/`)."""
    env = os.environ.get("SFM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "source-facebook-marketing"
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "source-facebook-marketing"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home)) / "source-facebook-marketing"
    return home / ".cache" / "source-facebook-marketing"


_ENGINE: Optional[Engine] = None
_COMPONENTS: dict[Path, Component] = {}


def engine() -> Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine()
    return _ENGINE


def load_component(path: Optional[Path] = None) -> Component:
    """The compiled component: from the per-user cache, keyed by the component's hash and the
    wasmtime release, or compiled now (a few seconds) and cached for the next run."""
    path = path or component_path()
    if path in _COMPONENTS:
        return _COMPONENTS[path]
    try:
        wasm = path.read_bytes()
    except OSError as e:
        raise HostError(f"cannot read the component at {path}: {e.strerror or e}") from e
    digest = hashlib.sha256(wasm)
    digest.update(f"wasmtime-py {_WASMTIME_VERSION}".encode())
    folder = cache_dir()
    cached = folder / f"py-{digest.hexdigest()[:32]}.cwasm"
    component: Optional[Component] = None
    if cached.exists():
        try:
            # The file was written by `serialize` of the same component and wasmtime release
            # (the key hashes both); a corrupt or foreign one fails here and is compiled again.
            component = Component.deserialize_file(engine(), str(cached))
        except Exception:  # noqa: BLE001
            component = None
    if component is None:
        try:
            component = Component(engine(), wasm)
        except Exception as e:  # noqa: BLE001
            raise HostError(f"compiling the component at {path}: {e}") from e
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(component.serialize())
            os.replace(tmp, cached)
        except OSError:
            pass  # no cache: the next run compiles again
    _COMPONENTS[path] = component
    return component


# --- one guest -----------------------------------------------------------------------------------


def _record(**fields: Any) -> Record:
    r = Record()
    for k, v in fields.items():
        setattr(r, k.replace("_", "-"), v)
    return r


def _lower(outcome: _fetch.Outcome) -> Any:
    """A completion's outcome as the WIT `result<response, fetch-error>`."""
    if isinstance(outcome, FetchError):
        return Variant(outcome.tag, outcome.payload)
    # UTF-8 text crosses in one copy; other bytes take the list path (see `body` in the WIT).
    if not outcome.utf8:
        body: Any = outcome.body
    elif FAST_BYTES:
        body = utf8_text(outcome.body)
    else:  # pragma: no cover - another wasmtime-py layout
        body = outcome.body.decode("utf-8")
    return _record(status=outcome.status, headers=outcome.headers, body=body)


@dataclass
class Limits:
    memory_mb: int = DEFAULT_MEMORY_MB


class Guest:
    """One instance of the component and the host state it calls into."""

    def __init__(
        self,
        allow: Allowlist,
        graph_url: Optional[str] = None,
        limits: Optional[Limits] = None,
        component: Optional[Path] = None,
    ) -> None:
        limits = limits or Limits()
        self.fetcher = Fetcher(allow, graph_url)
        self.store = Store(engine())
        self.store.set_limits(memory_size=limits.memory_mb << 20)
        self._stderr = tempfile.NamedTemporaryFile(prefix="sfm-guest-", suffix=".stderr", delete=False)
        self._stderr.close()
        wasi = WasiConfig()
        wasi.stderr_file = self._stderr.name
        self.store.set_wasi(wasi)
        linker = Linker(engine())
        linker.add_wasip2()
        with linker.root() as root:
            with root.add_instance(HOST_INTERFACE) as host:
                host.add_func("http-fetch", self._http_fetch)
                host.add_func("sleep", self._sleep)
        try:
            self.instance = linker.instantiate(self.store, load_component(component))
        except wasmtime.WasmtimeError as e:
            raise HostError(f"instantiating the component: {e}") from e
        self._source = self.instance.get_export_index(self.store, SOURCE_INTERFACE)
        if self._source is None:
            raise HostError(f"the component does not export {SOURCE_INTERFACE}; is it another release?")
        self._funcs: dict[str, Any] = {}
        self._params: dict[str, list[Any]] = {}
        self._reader: Any = None
        # Where the last sync ended (the WIT `progress` record), for a closing summary.
        self.final_progress: Any = None

    def close(self) -> None:
        self.fetcher.close()
        try:
            os.unlink(self._stderr.name)
        except OSError:
            pass

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the imports ---

    def _http_fetch(self, _store: Any, start: list[Any], wait_ms: Optional[int]) -> list[Any]:
        done: list[Any] = []
        for outgoing in start:
            r = outgoing.request
            admitted = self.fetcher.admit(
                Request(
                    method="POST" if r.method == "post" else "GET",
                    url=r.url,
                    headers=list(r.headers),
                    body=r.body,
                    timeout_ms=getattr(r, "timeout-ms"),
                    max_response_bytes=getattr(r, "max-response-bytes"),
                )
            )
            if isinstance(admitted, FetchError):
                # Refused by the sandbox: complete at once, without the network.
                done.append(_record(id=outgoing.id, outcome=_lower(admitted)))
            else:
                self.fetcher.start(outgoing.id, admitted)
        # A refusal is an answer already: only what else is ready goes with it.
        wait = wait_ms if not done else 0
        for rid, outcome in self.fetcher.wait(wait):
            done.append(_record(id=rid, outcome=_lower(outcome)))
        return done

    def _sleep(self, _store: Any, ms: int) -> None:
        time.sleep(ms / 1000)

    # --- the exports ---

    def _func(self, name: str) -> Any:
        f = self._funcs.get(name)
        if f is None:
            idx = self.instance.get_export_index(self.store, name, self._source)
            f = self.instance.get_func(self.store, idx) if idx is not None else None
            if f is None:
                raise HostError(f"the component does not export {name}")
            self._funcs[name] = f
        return f

    def call(self, name: str, *args: Any, lift: Optional[Callable[[Any], Any]] = None) -> Any:
        """Calls an export. With `lift`, its result is read from the C value by `lift` (see
        `_lift`) instead of wasmtime-py's generic conversion."""
        f = self._func(name)
        try:
            if lift is None:
                out = f(self.store, *args)
            else:
                out = self._call_lifting(name, f, args, lift)
            f.post_return(self.store)
        except wasmtime.WasmtimeError as e:
            raise HostError(self._explain(e)) from e
        return out

    def _call_lifting(self, name: str, f: Any, args: tuple, lift: Callable[[Any], Any]) -> Any:
        param_tys = self._params.get(name)
        if param_tys is None:
            param_tys = self._params[name] = [ty for _, ty in f.type(self.store).params]
        if len(args) != len(param_tys):
            raise TypeError(f"{name} takes {len(param_tys)} parameters, given {len(args)}")
        params = (_VAL * max(len(args), 1))()
        lowered = 0
        result = _VAL()
        try:
            for ty, val in zip(param_tys, args):
                ty.convert_to_c(self.store, val, ctypes.pointer(params[lowered]))
                lowered += 1
            enter_wasm(
                lambda: _ffi.wasmtime_component_func_call(
                    ctypes.byref(f._func), self.store._context(), params, lowered, ctypes.byref(result), 1
                )
            )
            try:
                return lift(result)
            finally:
                _ffi.wasmtime_component_val_delete(ctypes.byref(result))
        finally:
            for i in range(lowered):
                _ffi.wasmtime_component_val_delete(ctypes.byref(params[i]))

    def _explain(self, e: Exception) -> str:
        """The trap in one line, with the guest's panic message when it left one."""
        try:
            said = " ".join(
                line.strip()
                for line in Path(self._stderr.name).read_text(errors="replace").splitlines()
                if line.strip() and not line.startswith("note: run with")
            )
        except OSError:
            said = ""
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"{said} ({first})" if said else first

    def spec(self) -> list[Message]:
        return self.call("spec", lift=_lift.messages)

    def check(self, config: str) -> list[Message]:
        return self.call("check", config, lift=_lift.messages)

    def discover(self, config: str) -> list[Message]:
        return self.call("discover", config, lift=_lift.messages)

    def read(self, config: str, catalog: str, state: Optional[str]) -> Iterator[list[Message]]:
        """The sync's batches of messages, as the component hands them out."""
        reader = self.call("[constructor]reader", config, catalog, state)
        self._reader = reader
        try:
            while True:
                batch = self.call("[method]reader.next", reader, lift=_lift.optional_messages)
                if batch is None:
                    self.final_progress = self.call("[method]reader.progress", reader)
                    return
                yield batch
        finally:
            try:
                reader.drop(self.store)
            except Exception:  # noqa: BLE001 - the store may be poisoned by a trap
                pass
            self._reader = None

    def progress(self) -> Any:
        """Where the sync being read stands (the WIT `progress` record), or None between syncs."""
        return None if self._reader is None else self.call("[method]reader.progress", self._reader)
