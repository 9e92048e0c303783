"""State split by ad account and merged back (`fb.split`, `fb.merge`): the pieces of a state put
back together are the state; every form `read()` takes is read; where pieces overlap, the later
cursor is kept and a note says so; states that cannot be split by account are refused, saying
what to do."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import source_facebook_marketing_wasm as fb

A, B, C, D = "1000000000000001", "1000000000000002", "1000000000000003", "1000000000000004"


def stream(name, blob):
    return {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": blob}}


def entity(updated_time):
    return {"filter_statuses": ["ACTIVE", "PAUSED"], "updated_time": updated_time}


def insights(date_start, slices=()):
    return {"date_start": date_start, "slices": list(slices)}


# A state as the connector leaves it after a sync of four accounts: entity streams (one account
# never had a campaign updated, so it has statuses and no cursor), activities, and insights
# streams with their stream-level keys.
STATE = [
    stream("ads_insights", {
        A: insights("2026-06-10"), B: insights("2026-06-09", ["2026-06-11"]), C: insights("2026-06-10"),
        D: insights("2026-06-08"), "time_increment": 1,
    }),
    stream("ads", {A: entity("2026-06-10T08:00:00+0000"), B: entity("2026-06-09T23:59:59+0000"),
                   C: entity("2026-06-01T00:00:00+0000"), D: entity("2026-06-10T01:02:03+0000")}),
    stream("campaigns", {A: entity("2026-06-10T07:00:00+0000"), B: {"filter_statuses": []},
                         C: entity("2026-05-30T12:00:00+0000"), D: entity("2026-06-02T00:00:00+0000")}),
    stream("activities", {A: {"event_time": "2026-06-10T09:00:00+0000"}, C: {"event_time": "2026-06-09T00:00:00+0000"}}),
    stream("custom_weekly", {A: insights("2026-06-01"), D: insights("2026-06-01"),
                             "time_increment": 7, "time_increment_period": "weekly"}),
]  # fmt: skip


def by_name(messages):
    return {m["stream"]["stream_descriptor"]["name"]: m["stream"]["stream_state"] for m in messages}


def blob(messages, name):
    return by_name(messages)[name]


# ------------------------------------------------------------------------------ split and merge


def test_three_shards_merge_back_into_the_state():
    shards = [fb.split(STATE, [A]), fb.split(STATE, [B, C]), fb.split(STATE, [D])]
    merged = fb.merge(shards, names=["a", "bc", "d"])
    assert merged.notes == []
    assert merged.state == fb.split(STATE, [A, B, C, D])
    assert by_name(merged.state) == by_name(STATE)
    # Streams sorted by name, and each blob's keys sorted.
    names = [m["stream"]["stream_descriptor"]["name"] for m in merged.state]
    assert names == sorted(names)
    for m in merged.state:
        keys = list(m["stream"]["stream_state"])
        assert keys == sorted(keys)


def test_a_shard_holds_its_accounts_and_every_stream_level_key():
    shard = fb.split(STATE, [D])
    assert by_name(shard) == {
        "ads_insights": {D: insights("2026-06-08"), "time_increment": 1},
        "ads": {D: entity("2026-06-10T01:02:03+0000")},
        "campaigns": {D: entity("2026-06-02T00:00:00+0000")},
        "custom_weekly": {D: insights("2026-06-01"), "time_increment": 7, "time_increment_period": "weekly"},
    }, "activities has no entry of D's, so it is left out"
    assert all(m["type"] == "STREAM" for m in shard)


def test_account_ids_may_carry_act_and_spaces():
    assert fb.split(STATE, [f" act_{B} ", C]) == fb.split(STATE, [B, C])
    assert fb.split(STATE, [int(A)]) == fb.split(STATE, [A])
    for bad in ["act_", "", "12a", "act_act_1", "１２３"]:
        with pytest.raises(ValueError, match="is not an account id"):
            fb.split(STATE, [bad])


def test_an_account_with_no_entry_gets_an_empty_state():
    assert fb.split(STATE, ["999"]) == []


def test_merge_of_nothing_is_no_state():
    assert fb.merge([]).state == []
    assert fb.merge([None, "", []]).state == []


# ------------------------------------------------------------------------------ input forms


def full(message):
    return {"type": "STATE", "state": message}


@pytest.mark.parametrize(
    "form",
    [
        "inner messages",
        "full messages",
        "json text",
        "bytes",
        "global",
        "legacy message",
        "legacy object",
        "legacy data object",
    ],
)
def test_every_form_a_read_takes_is_read(form):
    blobs = by_name(STATE)
    value = {
        "inner messages": STATE,
        "full messages": [full(m) for m in STATE],
        "json text": json.dumps(STATE),
        "bytes": json.dumps([full(m) for m in STATE]).encode(),
        "global": {
            "type": "GLOBAL",
            "global": {
                "shared_state": None,
                "stream_states": [{"stream_descriptor": {"name": n}, "stream_state": b} for n, b in blobs.items()],
            },
        },
        "legacy message": {"type": "LEGACY", "data": blobs},
        "legacy object": blobs,
        "legacy data object": {"data": blobs},
    }[form]
    assert fb.split(value, [A, B, C, D]) == fb.split(STATE, [A, B, C, D])
    assert by_name(fb.merge([value]).state) == blobs


def test_a_single_message_is_read_inner_or_whole():
    one = STATE[1]
    assert fb.split(one, [A]) == [stream("ads", {A: entity("2026-06-10T08:00:00+0000")})]
    assert fb.split(full(one), [A]) == fb.split(one, [A])
    assert fb.split(json.dumps(full(one)), [A]) == fb.split(one, [A])


def test_no_state_and_null_stream_states_are_no_entries():
    for nothing in [None, "", "  ", b"", "null", [], {}]:
        assert fb.split(nothing, [A]) == []
    with_nulls = [stream("ads", None), full(stream("campaigns", None)), {"ads_insights": None}]
    assert fb.merge([with_nulls[:2], with_nulls[2]]).state == []


def test_a_later_message_for_a_stream_replaces_an_earlier_one():
    # The STATE messages of a whole read, in order: the last one of each stream counts.
    read = [stream("ads", {A: entity("2026-06-01T00:00:00+0000")}), stream("ads", {A: entity("2026-06-02T00:00:00+0000")})]
    assert blob(fb.split(read, [A]), "ads") == {A: entity("2026-06-02T00:00:00+0000")}


def test_keys_that_are_not_account_entries_are_stream_level():
    odd = [stream("ads", {A: entity("2026-06-01T00:00:00+0000"), "42": "not an entry", "x1": {"y": 1}})]
    assert blob(fb.split(odd, [B, A]), "ads") == {A: entity("2026-06-01T00:00:00+0000"), "42": "not an entry", "x1": {"y": 1}}
    assert fb.split(odd, [B]) == [], "stream-level keys alone do not keep a stream"


# ------------------------------------------------------------------------------ overlaps


def test_the_later_cursor_is_kept_in_either_order_with_a_note():
    old = [stream("ads_insights", {A: insights("2026-06-08"), "time_increment": 1})]
    new = [stream("ads_insights", {A: insights("2026-06-10"), "time_increment": 1})]
    note = "stream ads_insights, account {a}: in {x} and {y}; kept new's (date_start 2026-06-10)"

    merged = fb.merge([old, new], names=["old", "new"])
    assert blob(merged.state, "ads_insights")[A] == insights("2026-06-10")
    assert merged.notes == [note.format(a=A, x="old", y="new")]

    merged = fb.merge([new, old], names=["new", "old"])
    assert blob(merged.state, "ads_insights")[A] == insights("2026-06-10")
    assert merged.notes == [note.format(a=A, x="new", y="old")]


def test_cursors_compare_as_instants_across_their_forms():
    # 01:00 at +02:00 is 23:00 UTC the day before: earlier than midnight UTC.
    east = [stream("ads", {A: {"updated_time": "2026-06-10T01:00:00+02:00"}})]
    utc = [stream("ads", {A: {"updated_time": "2026-06-10T00:00:00Z"}})]
    merged = fb.merge([utc, east])
    assert blob(merged.state, "ads")[A] == {"updated_time": "2026-06-10T00:00:00Z"}
    assert merged.notes == [f"stream ads, account {A}: in state 1 and state 2; kept state 1's (updated_time 2026-06-10T00:00:00Z)"]

    # A bare date is midnight UTC; +0000 and +00:00 are the same instant.
    day = [stream("ads", {A: {"updated_time": "2026-06-10"}})]
    late = [stream("ads", {A: {"updated_time": "2026-06-09T23:59:59+0000"}})]
    assert blob(fb.merge([day, late]).state, "ads")[A] == {"updated_time": "2026-06-10"}
    same = [stream("ads", {A: {"updated_time": "2026-06-10T00:00:00+00:00", "filter_statuses": []}})]
    merged = fb.merge([day, same], names=["x", "y"])
    assert blob(merged.state, "ads")[A] == same[0]["stream"]["stream_state"][A], "equal cursors: the later input's"
    assert merged.notes == [f"stream ads, account {A}: in x and y; kept y's (updated_time 2026-06-10T00:00:00+00:00)"]


def test_cursors_that_do_not_parse_compare_as_text():
    a = [stream("activities", {A: {"event_time": "yesterday"}})]
    b = [stream("activities", {A: {"event_time": "2026-06-10T00:00:00+0000"}})]
    assert blob(fb.merge([a, b]).state, "activities")[A] == {"event_time": "yesterday"}  # "y" > "2"
    assert blob(fb.merge([b, a]).state, "activities")[A] == {"event_time": "yesterday"}


def test_without_cursors_the_later_input_is_kept_and_a_cursor_beats_none():
    a = [stream("campaigns", {A: {"filter_statuses": []}})]
    b = [stream("campaigns", {A: {"filter_statuses": ["ACTIVE"]}})]
    merged = fb.merge([a, b])
    assert blob(merged.state, "campaigns")[A] == {"filter_statuses": ["ACTIVE"]}
    assert merged.notes == [f"stream campaigns, account {A}: in state 1 and state 2; kept state 2's (no cursor)"]
    # An entry with a cursor is later than one without, whichever input comes last.
    c = [stream("campaigns", {A: entity("2026-06-01T00:00:00+0000")})]
    for order, kept in [([c, a], "state 1"), ([a, c], "state 2")]:
        merged = fb.merge(order)
        assert blob(merged.state, "campaigns")[A] == entity("2026-06-01T00:00:00+0000")
        assert merged.notes[0].endswith(f"kept {kept}'s (updated_time 2026-06-01T00:00:00+0000)")


def test_identical_entries_make_no_note():
    merged = fb.merge([STATE, copy.deepcopy(STATE), fb.split(STATE, [A])])
    assert merged.notes == []
    assert by_name(merged.state) == by_name(STATE)


def test_a_stream_level_key_that_differs_is_the_later_inputs():
    a = [stream("custom", {A: insights("2026-06-01"), "time_increment": 1})]
    b = [stream("custom", {B: insights("2026-06-01"), "time_increment": 7})]
    merged = fb.merge([a, b], names=["X", "Y"])
    assert blob(merged.state, "custom") == {A: insights("2026-06-01"), B: insights("2026-06-01"), "time_increment": 7}
    assert merged.notes == ["stream custom: time_increment 1 in X, 7 in Y; kept Y's"]


def test_names_must_match_the_states():
    with pytest.raises(ValueError, match="2 names for 1 states"):
        fb.merge([STATE], names=["a", "b"])


# ------------------------------------------------------------------------------ refusals


def test_a_time_boxed_reads_mark_is_refused():
    marked = [stream("ads", {A: entity("2026-06-01T00:00:00+0000"), "sfm_resume": {"sync_started": 1}})]
    for call in (lambda: fb.split(marked, [A]), lambda: fb.merge([STATE, marked])):
        with pytest.raises(ValueError, match="stream ads: .*sfm_resume.*finish the time-boxed chain of reads first"):
            call()


def test_a_single_account_state_of_airbytes_older_connector_is_refused():
    for flat in [{"updated_time": "2026-06-01T00:00:00+0000"}, {"date_start": "2026-06-01", "slices": []},
                 {"event_time": "2026-06-01T00:00:00+0000"}, {"slices": [], "time_increment": 1}]:  # fmt: skip
        with pytest.raises(ValueError, match="stream ads: a single-account state .* read once with that account in account_ids"):
            fb.split([stream("ads", flat)], [A])
        with pytest.raises(ValueError, match="single-account state"):
            fb.merge([{"ads": flat}])


def test_a_blob_that_is_not_an_object_is_refused_naming_its_stream():
    with pytest.raises(ValueError, match="stream ads: its state is not an object"):
        fb.split([stream("ads", [1, 2])], [A])


def test_what_is_not_a_state_is_refused():
    for bad, words in [("{", "not valid JSON"), ("3", "expected a list"), ([3], r"state\[0\]"),
                       ({"type": "RECORD"}, "'RECORD' is not supported"), ([{"type": "STREAM"}], "stream_descriptor")]:  # fmt: skip
        with pytest.raises(ValueError, match=words):
            fb.split(bad, [A])


# ------------------------------------------------------------------------------ the Rust twin

TWIN_CASES = {
    "round trip": [fb.split(STATE, [A]), fb.split(STATE, [B, C]), fb.split(STATE, [D])],
    "overlaps": [
        STATE,
        [full(stream("ads", {A: entity("2026-06-11T00:00:00Z"), B: entity("2026-06-09T23:00:00-02:00")})),
         stream("activities", {A: {"event_time": "yesterday"}}), stream("campaigns", {B: entity("2026-06-01")})],
        {"ads_insights": {A: insights("2026-06-10"), C: {"slices": []}, "time_increment": 7},
         "custom_weekly": {D: insights("2026-06-01T00:00:00.5+00:00"), "time_increment_period": "monthly"}},
    ],
    "forms": [
        {"type": "GLOBAL", "global": {"stream_states": [{"stream_descriptor": {"name": "ads"}, "stream_state": {A: {}}}]}},
        {"type": "LEGACY", "data": {"ads": {A: {"updated_time": "2026-06-10"}}, "campaigns": None}},
        {"data": {"ads": {A: {"updated_time": "2026-06-09T00:00:00+0000"}, "42": "x"}}},
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TWIN_CASES))
def test_host_test_state_splits_and_merges_alike(case, tmp_path):
    """`host-test state split|merge` (the Rust twin) gives the same states and the same notes."""
    from conftest import HOST_TEST, run

    states = TWIN_CASES[case]
    paths = []
    for i, value in enumerate(states):
        paths.append(str(tmp_path / f"s{i}.json"))
        Path(paths[-1]).write_text(json.dumps(value))
    merged = run([str(HOST_TEST), "state", "merge", *paths])
    assert merged.returncode == 0, merged.stderr
    want = fb.merge(states, names=paths)
    assert json.loads(merged.stdout) == want.state
    assert merged.stderr.splitlines() == want.notes
    for accounts in ([A], [f"act_{B}", C], [D, "999"]):
        split = run([str(HOST_TEST), "state", "split", paths[0], "--accounts", ",".join(accounts)])
        assert split.returncode == 0, split.stderr
        assert json.loads(split.stdout) == fb.split(states[0], accounts)


def test_host_test_state_refuses_alike(tmp_path):
    from conftest import HOST_TEST, run

    for i, bad in enumerate([[stream("ads", {A: {}, "sfm_resume": {}})], {"ads": {"date_start": "2026-06-01"}}, {"ads": 3}]):
        path = tmp_path / f"bad{i}.json"
        path.write_text(json.dumps(bad))
        answer = run([str(HOST_TEST), "state", "split", str(path), "--accounts", A])
        assert answer.returncode == 1 and "stream ads: " in answer.stderr, answer.stderr
        with pytest.raises(ValueError, match="stream ads: "):
            fb.split(bad, [A])
