"""The Python API: typed messages, the same records as the console script, state carried from
one read to the next, and messages handed out as the component reads them."""

from __future__ import annotations

import itertools

import pytest
import source_facebook_marketing_wasm as fb

from conftest import STREAMS, TOKEN, config, configured_catalog


def test_spec_check_discover(simulator):
    spec = fb.spec()
    assert isinstance(spec, fb.Spec)
    assert "account_ids" in spec.spec["connectionSpecification"]["properties"]
    status = fb.check(config(), graph_url=simulator.url)
    assert isinstance(status, fb.ConnectionStatus) and status.succeeded, status
    catalog = fb.discover(config(), graph_url=simulator.url)
    assert isinstance(catalog, fb.Catalog)
    assert {"ads", "ads_insights", "campaigns"} <= {s["name"] for s in catalog.catalog["streams"]}


def test_a_config_the_connector_refuses_is_a_failed_status():
    status = fb.check({"account_ids": []})
    assert not status.succeeded and status.message


def test_read_yields_typed_messages_and_the_state_carries_over(simulator):
    catalog = configured_catalog(fb.discover(config(), graph_url=simulator.url).catalog, STREAMS)
    messages = list(fb.read(config(), catalog, graph_url=simulator.url))
    records = [m for m in messages if isinstance(m, fb.Record)]
    states = [m for m in messages if isinstance(m, fb.State)]
    assert {r.stream for r in records} == set(STREAMS)
    assert all(isinstance(r.data, dict) and r.emitted_at > 0 for r in records)
    insights = [r.data for r in records if r.stream == "ads_insights"]
    assert all({"ad_id", "date_start", "account_id"} <= set(d) for d in insights)
    assert any(isinstance(m, fb.Log) and m.level == "INFO" for m in messages)
    assert not [m for m in messages if isinstance(m, fb.Trace) and m.is_error]
    assert all(TOKEN not in m.line() for m in messages)

    # The states, as the protocol carries them, start the next read; it reads less.
    last = {s.state["stream"]["stream_descriptor"]["name"]: s.state for s in states}
    again = list(fb.read(config(), catalog, list(last.values()), graph_url=simulator.url))
    assert not [m for m in again if isinstance(m, fb.Trace) and m.is_error]
    assert 0 < sum(isinstance(m, fb.Record) for m in again) < len(records)


def test_messages_come_as_the_component_reads_them(simulator):
    """The first record is in hand before the sync has made its requests: the API yields batch
    by batch (at most 500 messages or 256 KiB of text held at a time), it does not collect."""
    catalog = configured_catalog(fb.discover(config(), graph_url=simulator.url).catalog, STREAMS)
    before = simulator.counters()["http_requests"]
    stream = fb.read(config(), catalog, graph_url=simulator.url)
    first = next(m for m in stream if isinstance(m, fb.Record))
    during = simulator.counters()["http_requests"] - before
    rest = list(stream)
    after = simulator.counters()["http_requests"] - before
    assert first.stream in STREAMS and rest
    assert during < after, f"{during} requests before the first record, {after} in all"


def test_a_read_stopped_early_releases_its_instance(simulator):
    catalog = configured_catalog(fb.discover(config(), graph_url=simulator.url).catalog, ["campaigns", "ads"])
    stream = fb.read(config(), catalog, graph_url=simulator.url)
    taken = list(itertools.islice(stream, 3))
    stream.close()
    assert len(taken) == 3
    with pytest.raises(StopIteration):
        next(stream)
