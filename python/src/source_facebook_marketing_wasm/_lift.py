"""The component's messages read straight out of wasmtime's C values.

wasmtime-py lifts a result generically: for every value it asks the C API for the value's type
again and builds Python objects field by field, about 0.4 ms a message, which would make a
Python host of a large sync slower than the sync itself. The messages have one shape (the WIT
`message` variant), so this module reads them with a few `string_at` and `unpack_from` calls
each instead. Offsets come from wasmtime's own ctypes structures, not from constants.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any, Callable, Optional

import wasmtime

from .messages import Catalog, ConnectionStatus, Log, Message, Record, Spec, State, Trace

_ffi = wasmtime._ffi
_string_at = ctypes.string_at
_VAL = ctypes.sizeof(_ffi.wasmtime_component_val_t)
_KIND = _ffi.wasmtime_component_val_t.kind.offset
_OF = _ffi.wasmtime_component_val_t.of.offset
_VARIANT_NAME = _OF + _ffi.wasmtime_component_valvariant.discriminant.offset
_VARIANT_VAL = _OF + _ffi.wasmtime_component_valvariant.val.offset
_ENTRY = ctypes.sizeof(_ffi.wasmtime_component_valrecord_entry)
_ENTRY_NAME = _ffi.wasmtime_component_valrecord_entry.name.offset
_ENTRY_VAL = _ffi.wasmtime_component_valrecord_entry.val.offset
_VEC_SIZE = _ffi.wasm_byte_vec_t.size.offset
_VEC_DATA = _ffi.wasm_byte_vec_t.data.offset
_LIST_SIZE = _OF + _ffi.wasmtime_component_vallist.size.offset
_LIST_DATA = _OF + _ffi.wasmtime_component_vallist.data.offset
_RECORD_SIZE = _OF + _ffi.wasmtime_component_valrecord.size.offset
_RECORD_DATA = _OF + _ffi.wasmtime_component_valrecord.data.offset

_SIZE = struct.Struct("@N")
_PTR = struct.Struct("@P")
_S64 = struct.Struct("@q")

_K_STRING = _ffi.WASMTIME_COMPONENT_STRING.value
_K_LIST = _ffi.WASMTIME_COMPONENT_LIST.value
_K_OPTION = _ffi.WASMTIME_COMPONENT_OPTION.value
_K_VARIANT = _ffi.WASMTIME_COMPONENT_VARIANT.value
_K_RECORD = _ffi.WASMTIME_COMPONENT_RECORD.value
_K_ENUM = _ffi.WASMTIME_COMPONENT_ENUM.value

_LEVELS = {"fatal": "FATAL", "error": "ERROR", "warn": "WARN", "info": "INFO", "debug": "DEBUG", "trace": "TRACE"}


class LayoutError(Exception):
    """A value of another shape than the WIT `message`: another component or wasmtime release."""


def _name(buf: bytes, at: int) -> str:
    """The UTF-8 text of a `wasm_name_t` at offset `at` of `buf`."""
    size = _SIZE.unpack_from(buf, at + _VEC_SIZE)[0]
    return _string_at(_PTR.unpack_from(buf, at + _VEC_DATA)[0], size).decode() if size else ""


def _string(buf: bytes, at: int) -> str:
    """A string value at offset `at`."""
    if buf[at + _KIND] != _K_STRING:
        raise LayoutError(f"expected a string, found a value of kind {buf[at + _KIND]}")
    return _name(buf, at + _OF)


def _option_string(buf: bytes, at: int) -> Optional[str]:
    if buf[at + _KIND] != _K_OPTION:
        raise LayoutError(f"expected an option, found a value of kind {buf[at + _KIND]}")
    ptr = _PTR.unpack_from(buf, at + _OF)[0]
    return _string(_string_at(ptr, _VAL), 0) if ptr else None


def _enum(buf: bytes, at: int) -> str:
    if buf[at + _KIND] != _K_ENUM:
        raise LayoutError(f"expected an enum, found a value of kind {buf[at + _KIND]}")
    return _name(buf, at + _OF)


def _fields(val: bytes, n: int) -> bytes:
    """The entries of the record `val`, which must have `n` fields."""
    if val[_KIND] != _K_RECORD or _SIZE.unpack_from(val, _RECORD_SIZE)[0] != n:
        raise LayoutError("expected a record of the WIT's fields")
    return _string_at(_PTR.unpack_from(val, _RECORD_DATA)[0], n * _ENTRY)


def _message(buf: bytes, at: int) -> Message:
    if buf[at + _KIND] != _K_VARIANT:
        raise LayoutError(f"expected a message variant, found a value of kind {buf[at + _KIND]}")
    tag = _name(buf, at + _VARIANT_NAME)
    payload = _string_at(_PTR.unpack_from(buf, at + _VARIANT_VAL)[0], _VAL)
    if tag == "record":
        # record-message { stream, namespace, data, emitted-at }, in the WIT's order.
        e = _fields(payload, 4)
        v = _ENTRY_VAL
        return Record(
            _string(e, v),
            _string(e, 2 * _ENTRY + v),
            _S64.unpack_from(e, 3 * _ENTRY + v + _OF)[0],
            _option_string(e, _ENTRY + v),
        )
    if tag == "state":
        return State(_string(payload, 0))
    if tag == "trace":
        return Trace(_string(payload, 0))
    if tag == "log":
        e = _fields(payload, 2)
        level = _enum(e, _ENTRY_VAL)
        return Log(_LEVELS.get(level, level.upper()), _string(e, _ENTRY + _ENTRY_VAL))
    if tag == "connection-status":
        e = _fields(payload, 2)
        status = "SUCCEEDED" if _enum(e, _ENTRY_VAL) == "succeeded" else "FAILED"
        return ConnectionStatus(status, _option_string(e, _ENTRY + _ENTRY_VAL))
    if tag == "catalog":
        return Catalog(_string(payload, 0))
    if tag == "spec":
        return Spec(_string(payload, 0))
    raise LayoutError(f"a message of an unknown kind: {tag}")


def messages(val: Any) -> list[Message]:
    """A `list<message>` C value as Python messages."""
    buf = _string_at(ctypes.addressof(val), _VAL)
    if buf[_KIND] != _K_LIST:
        raise LayoutError(f"expected a list of messages, found a value of kind {buf[_KIND]}")
    n = _SIZE.unpack_from(buf, _LIST_SIZE)[0]
    if not n:
        return []
    items = _string_at(_PTR.unpack_from(buf, _LIST_DATA)[0], n * _VAL)
    return [_message(items, i * _VAL) for i in range(n)]


def optional_messages(val: Any) -> Optional[list[Message]]:
    """An `option<list<message>>` C value: None, or the messages."""
    buf = _string_at(ctypes.addressof(val), _VAL)
    if buf[_KIND] != _K_OPTION:
        raise LayoutError(f"expected an option, found a value of kind {buf[_KIND]}")
    ptr = _PTR.unpack_from(buf, _OF)[0]
    return None if not ptr else messages(_ffi.wasmtime_component_val_t.from_address(ptr))


Lifter = Callable[[Any], Any]
