"""A sync's state split by ad account, and pieces of state merged back into one.

Every stream keeps its state per ad account: the blob of a stream's STATE message holds one entry
per account, keyed by the account id (digits only, no `act_`), beside a few stream-level keys
(`time_increment`, ...). So a state can be cut into one piece per account, for syncs that run
each account on its own (a Dagster partition, say), and the pieces put back together:

    import source_facebook_marketing_wasm as fb

    pieces = {a: fb.split(state, [a]) for a in ["111", "222"]}      # a list of STATE messages each
    merged = fb.merge(list(pieces.values()), names=list(pieces))    # back to one state
    merged.state, merged.notes                                      # notes: what overlapped, and what was kept

`host-test state split|merge` follows the same rules.

A state is what `read()` takes: a list of state messages (each the `state` of an Airbyte STATE
message, or the whole message), one such message, a `GLOBAL` or `LEGACY` message, or Airbyte's
legacy object keyed by stream name; as a dict or list, or as JSON text or bytes. The result is
always a list of `STREAM` messages, sorted by stream name, with the keys of each blob sorted.

Two states are refused, with a `ValueError` that says what to do: one that holds the mark of a
time-boxed read (`sfm_resume`: the chain of reads has to finish first), and Airbyte's older
single-account form, whose cursor is not keyed by account.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

__all__ = ["Merged", "merge", "normalize_account", "split"]

StateLike = Union[str, bytes, dict, list, None]

# The key of a time-boxed read's mark in a stream's blob (`src/read/resume.rs`).
RESUME_KEY = "sfm_resume"

# Where an account entry keeps its cursor, in the order looked for: entity streams
# (`updated_time`), activities (`event_time`), insights (`date_start`).
CURSOR_KEYS = ("updated_time", "event_time", "date_start")

# The top-level keys of Airbyte's older single-account state: a cursor, or the insights
# slices read ahead of it.
FLAT_KEYS = (*CURSOR_KEYS, "slices")

_DIGITS = re.compile(r"[0-9]+")

# The cursor forms compared as instants; any other is compared as text.
_INSTANT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]+))?(?P<offset>[Zz]|[+-][0-9]{2}:?[0-9]{2}))?"
)


@dataclass
class Merged:
    """What `merge` made: `state`, a list of STREAM messages, and `notes`, one line for each
    account entry or stream-level key the inputs disagree on, saying which one was kept."""

    state: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def normalize_account(account: Any) -> str:
    """An ad account id as state keys it: whitespace and a leading `act_` removed, digits only.
    Raises `ValueError` naming anything else."""
    text = str(account).strip() if isinstance(account, (str, int)) and not isinstance(account, bool) else None
    if text is not None and text.startswith("act_"):
        text = text[len("act_") :]
    if not text or not _DIGITS.fullmatch(text):
        raise ValueError(f"ad account {account!r} is not an account id: expected digits, with or without `act_`")
    return text


def split(state: StateLike, accounts: Iterable[Any]) -> list:
    """The part of `state` that belongs to `accounts`: each stream keeps those accounts' entries
    and all its stream-level keys; a stream with no entry of theirs is left out."""
    wanted = {normalize_account(a) for a in accounts}
    out = {}
    for name, blob in _stream_blobs(state).items():
        entries, stream_keys = _parts(name, blob)
        kept = {a: e for a, e in entries.items() if a in wanted}
        if kept:
            out[name] = {**kept, **stream_keys}
    return _messages(out)


def merge(states: Sequence[StateLike], names: Optional[Sequence[str]] = None) -> Merged:
    """One state holding every stream and account entry of `states`, read in order.

    Where two inputs hold different entries for the same stream and account, the one with the
    later cursor is kept (an entry with a cursor is later than one without), or the later
    input's when the cursors are equal or both missing; where they give a stream-level key
    different values, the later input's is kept. Each such choice is one line of `notes`,
    naming the inputs by `names` (default "state 1", "state 2", ...), in the order met: input
    by input, then by stream and key. Identical entries make no note."""
    states = list(states)
    if names is None:
        names = [f"state {i + 1}" for i in range(len(states))]
    elif len(names) != len(states):
        raise ValueError(f"merge: {len(names)} names for {len(states)} states; give one name per state")
    parsed = [_stream_blobs(s) for s in states]
    for blobs in parsed:  # every input is checked before anything is merged
        for name, blob in blobs.items():
            _parts(name, blob)

    notes: list[str] = []
    out: dict[str, dict[str, Any]] = {}
    came_from: dict[tuple[str, str], str] = {}  # (stream, key) -> the input its value is from
    for source, blobs in zip(names, parsed):
        for stream in sorted(blobs):
            merged = out.setdefault(stream, {})
            blob = blobs[stream]
            for key in sorted(blob):
                value = blob[key]
                if key not in merged:
                    merged[key], came_from[stream, key] = value, source
                    continue
                held, held_from = merged[key], came_from[stream, key]
                if held == value:
                    continue
                if _is_entry(key, value):
                    keep_new = not _later(_cursor(held), _cursor(value))
                    kept_from = source if keep_new else held_from
                    notes.append(
                        f"stream {stream}, account {key}: in {held_from} and {source}; "
                        f"kept {kept_from}'s ({_cursor_text(value if keep_new else held)})"
                    )
                else:
                    keep_new = True
                    notes.append(
                        f"stream {stream}: {key} {_json(held)} in {held_from}, {_json(value)} in {source}; kept {source}'s"
                    )
                if keep_new:
                    merged[key], came_from[stream, key] = value, source
    return Merged(state=_messages(out), notes=notes)


# ------------------------------------------------------------------------------ reading a state


def _stream_blobs(state: StateLike) -> dict[str, Any]:
    """Each stream's blob, by stream name; a later message for a stream replaces an earlier one,
    as the connector reads them."""
    if isinstance(state, bytes):
        state = state.decode("utf-8")
    if isinstance(state, str):
        if not state.strip():
            return {}
        try:
            state = json.loads(state)
        except ValueError as e:
            raise ValueError(f"state: not valid JSON ({e}); pass the state the last sync emitted") from None
    out: dict[str, Any] = {}
    if state is None:
        return out
    if isinstance(state, list):
        for i, item in enumerate(state):
            _take_message(item, out, f"state[{i}]")
    elif isinstance(state, dict) and ("type" in state or "stream" in state):
        _take_message(state, out, "state")
    elif isinstance(state, dict):
        # Airbyte's legacy object, {"ads": {...}, ...}, or a LEGACY message's `data` alone.
        data = state["data"] if len(state) == 1 and isinstance(state.get("data"), dict) else state
        _take_legacy(data, out)
    else:
        raise ValueError("state: expected a list of state messages or an object")
    return out


def _take_message(item: Any, out: dict[str, Any], where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a state message (an object)")
    kind = item.get("type", "STREAM")
    if kind == "STATE":  # the whole Airbyte message: its `state` is the message meant
        _take_message(item.get("state"), out, f"{where}.state")
    elif kind == "STREAM":
        _take_stream(item.get("stream"), out, f"{where}: a STREAM state message without stream.stream_descriptor.name")
    elif kind == "GLOBAL":
        stream_states = (item.get("global") or {}).get("stream_states") or []
        if not isinstance(stream_states, list):
            raise ValueError(f"{where}: global.stream_states is not a list")
        for i, s in enumerate(stream_states):
            _take_stream(s, out, f"{where}: global.stream_states[{i}] has no stream_descriptor.name")
    elif kind == "LEGACY":
        data = item.get("data")
        _take_legacy(data if isinstance(data, dict) else {}, out)
    else:
        raise ValueError(f"{where}: state message type {kind!r} is not supported")


def _take_stream(stream: Any, out: dict[str, Any], unnamed: str) -> None:
    """One stream's descriptor and state (a STREAM message's `stream`, or one of a GLOBAL's)."""
    name = _descriptor_name(stream)
    if name is None:
        raise ValueError(unnamed)
    if stream.get("stream_state") is not None:
        out[name] = stream["stream_state"]


def _take_legacy(data: dict, out: dict[str, Any]) -> None:
    for name, blob in data.items():
        if blob is not None:
            out[name] = blob


def _descriptor_name(stream: Any) -> Optional[str]:
    if not isinstance(stream, dict) or not isinstance(stream.get("stream_descriptor"), dict):
        return None
    name = stream["stream_descriptor"].get("name")
    return name if isinstance(name, str) else None


def _is_entry(key: str, value: Any) -> bool:
    """Whether `key: value` is an account's entry: a key of ASCII digits, an object under it."""
    return bool(_DIGITS.fullmatch(key)) and isinstance(value, dict)


def _parts(stream: str, blob: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stream's blob as (account entries, stream-level keys), or a `ValueError` for a blob that
    cannot be split by account."""
    if not isinstance(blob, dict):
        raise ValueError(f"stream {stream}: its state is not an object (got {_json(blob)[:80]})")
    if RESUME_KEY in blob:
        raise ValueError(
            f"stream {stream}: the state holds the mark of a time-boxed read ({RESUME_KEY}); "
            "finish the time-boxed chain of reads first (read again until a read ends without it), "
            "then split or merge its state"
        )
    entries = {k: v for k, v in blob.items() if _is_entry(k, v)}
    stream_keys = {k: v for k, v in blob.items() if k not in entries}
    if not entries and any(k in blob for k in FLAT_KEYS):
        raise ValueError(
            f"stream {stream}: a single-account state from an older version of Airbyte's connector "
            "(its cursor is not kept by account); read once with that account in account_ids, "
            "which rewrites it by account, then split or merge it"
        )
    return entries, stream_keys


# ------------------------------------------------------------------------------ cursors


def _cursor(entry: Any) -> Optional[tuple[str, Any]]:
    """An account entry's cursor as (key, value): the first of `CURSOR_KEYS` it holds."""
    if not isinstance(entry, dict):
        return None
    for key in CURSOR_KEYS:
        if entry.get(key) is not None:
            return key, entry[key]
    return None


def _cursor_text(entry: dict) -> str:
    cursor = _cursor(entry)
    return f"{cursor[0]} {_text(cursor[1])}" if cursor else "no cursor"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _later(a: Optional[tuple[str, Any]], b: Optional[tuple[str, Any]]) -> bool:
    """Whether cursor `a` is strictly later than `b`. A missing cursor is the earliest; values
    that do not both read as instants compare as text."""
    if a is None or b is None:
        return a is not None
    ia, ib = _instant(a[1]), _instant(b[1])
    if ia is None or ib is None:
        return _text(a[1]) > _text(b[1])
    return ia > ib


def _instant(value: Any) -> Optional[dt.datetime]:
    """A cursor as a UTC instant: `2024-01-01T00:00:00+0000`, `...+00:00`, `...Z` (with or
    without fractions of a second), or a bare date (midnight UTC); None for anything else."""
    if not isinstance(value, str):
        return None
    m = _INSTANT.fullmatch(value.strip())
    if not m:
        return None
    try:
        day = dt.date.fromisoformat(m["date"])
        if m["time"] is None:
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        clock = dt.time.fromisoformat(m["time"])
        micros = int((m["fraction"] or "0")[:6].ljust(6, "0"))
        if m["offset"] in ("Z", "z"):
            offset = dt.timedelta(0)
        else:
            sign = -1 if m["offset"][0] == "-" else 1
            digits = m["offset"][1:].replace(":", "")
            offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        local = dt.datetime.combine(day, clock.replace(microsecond=micros), dt.timezone(offset))
    except ValueError:  # the form fits, but no such day, time or offset (2024-02-30, 25:00)
        return None
    return local.astimezone(dt.timezone.utc)


# ------------------------------------------------------------------------------ writing a state


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _messages(blobs: dict[str, Any]) -> list:
    return [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": _sorted(blobs[name])}}
        for name in sorted(blobs)
    ]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
