"""The host-test CLI speaks the Airbyte protocol.

Runs the built `target/debug/host-test` (with the built component) for `spec`, `check` and
`discover`, serving Graph calls from the in-process simulator (`--simulator calm`: no network,
virtual time), and validates every line it prints on stdout with the Airbyte protocol models.
"""

from __future__ import annotations

import copy
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airbyte_protocol.models import AirbyteMessage, Status, Type

ROOT = Path(__file__).resolve().parents[2]
HOST_TEST = ROOT / "target" / "debug" / "host-test"
COMPONENT = ROOT / "target" / "wasm32-wasip2" / "release" / "source_facebook_marketing.wasm"

# The calm simulator's world (graph-sim's SimConfig::default): two ad accounts numbered from
# 1000000000000001, one valid token, and a virtual clock that starts at 2026-06-15T10:00:00Z with
# 90 days of history. `host-test --simulator calm demo` shows the same ids.
SIM_ACCOUNT_IDS = ["1000000000000001", "1000000000000002"]
SIM_TOKEN = "sim-token"
START_DATE = "2026-05-01T00:00:00Z"

# 120 s: generous for one CLI call (they take well under a second), short enough that a hung
# guest fails the test instead of the CI run.
CALL_TIMEOUT_S = 120

BASE_CONFIG: dict[str, Any] = {
    "account_ids": SIM_ACCOUNT_IDS[:1],
    "credentials": {"auth_type": "Service", "access_token": SIM_TOKEN},
    "start_date": START_DATE,
}


def config_with(**changes: Any) -> dict[str, Any]:
    """The base config with top-level keys replaced (a value of `...` removes the key)."""
    config = copy.deepcopy(BASE_CONFIG)
    for key, value in changes.items():
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def with_insight(**fields: Any) -> dict[str, Any]:
    """The base config with one custom insight named MyInsight, plus `fields`."""
    insight: dict[str, Any] = {"name": "MyInsight", "fields": ["clicks", "impressions"]}
    insight.update(fields)
    return config_with(custom_insights=[insight])


def parse_message(line: str) -> AirbyteMessage:
    """One stdout line as an Airbyte message, failing the test if it is not one."""
    try:
        if hasattr(AirbyteMessage, "model_validate_json"):
            return AirbyteMessage.model_validate_json(line)
        return AirbyteMessage.parse_raw(line)
    except Exception as e:  # pydantic's ValidationError, or a JSON error under pydantic v1
        pytest.fail(f"stdout line is not an Airbyte protocol message ({e}):\n{line}")


@dataclass
class Run:
    returncode: int
    messages: list[AirbyteMessage]
    stdout: str
    stderr: str

    def of_type(self, kind: Type) -> list[AirbyteMessage]:
        return [m for m in self.messages if m.type == kind]

    def describe(self) -> str:
        return f"exit code {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@pytest.fixture(scope="session")
def host_test() -> Path:
    if not HOST_TEST.is_file():
        pytest.fail(f"{HOST_TEST} is missing; build it with `cargo build -p host-test` (scripts/test.sh does)")
    if not COMPONENT.is_file():
        pytest.fail(
            f"{COMPONENT} is missing; build it with "
            "`cargo build --release --target wasm32-wasip2 -p source-facebook-marketing` (scripts/test.sh does)"
        )
    return HOST_TEST


@pytest.fixture
def run(host_test: Path, tmp_path: Path):
    """Runs `host-test --simulator calm COMMAND`, with `config` written to a file when given."""

    def _run(command: str, config: Any = None) -> Run:
        args = [str(host_test), "--simulator", "calm", command]
        if config is not None:
            path = tmp_path / "config.json"
            path.write_text(config if isinstance(config, str) else json.dumps(config))
            args += ["--config", str(path)]
        proc = subprocess.run(
            args, cwd=ROOT, capture_output=True, text=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
        assert proc.stdout == "" or proc.stdout.endswith("\n"), f"stdout does not end with a newline:\n{proc.stdout}"
        lines = proc.stdout.splitlines()
        assert all(line.strip() for line in lines), f"stdout has blank lines:\n{proc.stdout}"
        return Run(proc.returncode, [parse_message(line) for line in lines], proc.stdout, proc.stderr)

    return _run


def the_connection_status(result: Run):
    statuses = result.of_type(Type.CONNECTION_STATUS)
    assert len(statuses) == 1, f"expected exactly one CONNECTION_STATUS\n{result.describe()}"
    return statuses[0].connectionStatus


def the_catalog(result: Run):
    catalogs = result.of_type(Type.CATALOG)
    assert len(catalogs) == 1, f"expected exactly one CATALOG\n{result.describe()}"
    return catalogs[0].catalog


def test_spec_prints_exactly_one_spec_message(run):
    result = run("spec")
    assert result.returncode == 0, result.describe()
    assert len(result.messages) == 1, result.describe()
    (message,) = result.messages
    assert message.type == Type.SPEC
    properties = message.spec.connectionSpecification["properties"]
    for key in ("account_ids", "credentials", "start_date", "custom_insights"):
        assert key in properties, f"the spec lacks {key}"


def test_check_succeeds_with_the_simulators_accounts_and_token(run):
    result = run("check", config_with(account_ids=SIM_ACCOUNT_IDS))
    assert result.returncode == 0, result.describe()
    status = the_connection_status(result)
    assert status.status == Status.SUCCEEDED, result.describe()


def test_check_succeeds_with_a_valid_custom_insight(run):
    result = run("check", with_insight(breakdowns=["age"], level="adset", time_increment_period="weekly"))
    assert result.returncode == 0, result.describe()
    assert the_connection_status(result).status == Status.SUCCEEDED, result.describe()


@pytest.mark.parametrize("account_ids", [..., []], ids=["missing", "empty"])
def test_check_without_account_ids_lists_the_accounts_the_token_reaches(run, account_ids):
    result = run("check", config_with(account_ids=account_ids))
    assert result.returncode == 0, result.describe()
    assert the_connection_status(result).status == Status.SUCCEEDED, result.describe()
    logs = [m.log.message for m in result.of_type(Type.LOG)]
    assert any(line.startswith("account discovery: the token reaches") for line in logs), logs


def test_check_fails_naming_account_ids_when_the_account_is_unknown(run):
    result = run("check", config_with(account_ids=["4242424242"]))
    assert result.returncode == 0, result.describe()
    status = the_connection_status(result)
    assert status.status == Status.FAILED, result.describe()
    assert "account_ids" in status.message
    assert "4242424242" in status.message


def test_check_fails_naming_credentials_when_the_token_is_wrong(run):
    result = run("check", config_with(credentials={"auth_type": "Service", "access_token": "not-the-sim-token"}))
    assert result.returncode == 0, result.describe()
    status = the_connection_status(result)
    assert status.status == Status.FAILED, result.describe()
    assert "access token" in status.message.replace("_", " "), status.message
    assert "not-the-sim-token" not in result.stdout, "the token was printed"


BAD_CONFIGS = [
    pytest.param(config_with(start_date="2024-13-45"), "start_date", id="malformed start_date"),
    pytest.param(config_with(start_date="last tuesday"), "start_date", id="start_date that is not a date"),
    pytest.param(config_with(end_date="2026/05/20"), "end_date", id="malformed end_date"),
    pytest.param(config_with(start_date="2099-01-01T00:00:00Z"), "start_date", id="start_date in the future"),
    pytest.param(config_with(end_date="2099-01-01T00:00:00Z"), "end_date", id="end_date in the future"),
    pytest.param(
        config_with(start_date="2026-05-10T00:00:00Z", end_date="2026-05-01T00:00:00Z"),
        "end_date",
        id="end_date before start_date",
    ),
    pytest.param(config_with(account_ids=["abc"]), "account_ids[0]", id="non-numeric account id"),
    pytest.param(config_with(account_ids=[SIM_ACCOUNT_IDS[0], "12-34"]), "account_ids[1]", id="second account id non-numeric"),
    pytest.param(config_with(account_ids=[1000000000000001]), "account_ids[0]", id="account id as a number"),
    pytest.param(config_with(account_ids="1000000000000001"), "account_ids", id="account_ids a string"),
    pytest.param(config_with(credentials=...), "credentials", id="missing credentials"),
    pytest.param(config_with(credentials="sim-token"), "credentials", id="credentials that are a string"),
    pytest.param(
        config_with(credentials={"auth_type": "Service", "access_token": ""}),
        "credentials.access_token",
        id="empty access token",
    ),
    pytest.param(
        config_with(credentials={"auth_type": "Password", "access_token": SIM_TOKEN}),
        "credentials.auth_type",
        id="unknown auth_type",
    ),
    pytest.param(config_with(campaign_statuses=["RUNNING"]), "campaign_statuses[0]", id="unknown campaign status"),
    pytest.param(config_with(adset_statuses=["ACTIVE", "SLEEPING"]), "adset_statuses[1]", id="unknown ad set status"),
    pytest.param(config_with(ad_statuses=["active"]), "ad_statuses[0]", id="lower-case ad status"),
    pytest.param(config_with(page_size=0), "page_size", id="page_size 0"),
    pytest.param(config_with(page_size="100"), "page_size", id="page_size as a string"),
    pytest.param(config_with(insights_lookback_window=29), "insights_lookback_window", id="lookback window 29"),
    pytest.param(config_with(insights_job_timeout=61), "insights_job_timeout", id="job timeout 61"),
    pytest.param(config_with(fetch_thumbnail_images="yes"), "fetch_thumbnail_images", id="string for fetch_thumbnail_images"),
    pytest.param(config_with(api_version="25"), "api_version", id="malformed api_version"),
    pytest.param(
        config_with(default_ads_insights_action_breakdowns=["action_colour"]),
        "default_ads_insights_action_breakdowns[0]",
        id="unknown default action breakdown",
    ),
    pytest.param(config_with(custom_insights={"name": "MyInsight"}), "custom_insights", id="custom_insights as an object"),
    pytest.param(with_insight(name=""), "custom_insights[0].name", id="custom insight without a name"),
    pytest.param(
        with_insight(fields=["clicks", "clickz"]), "custom_insights[0].fields[1]", id="custom insight with an unknown field"
    ),
    pytest.param(
        with_insight(fields=["unique_clicks"]), "custom_insights[0].fields[0]", id="custom insight with a refused field"
    ),
    pytest.param(with_insight(breakdowns=["dma"]), "custom_insights[0].breakdowns[0]", id="retired breakdown dma"),
    pytest.param(
        with_insight(action_breakdowns=["action_mood"]),
        "custom_insights[0].action_breakdowns[0]",
        id="unknown action breakdown",
    ),
    pytest.param(with_insight(level="region"), "custom_insights[0].level", id="bad level"),
    pytest.param(
        with_insight(time_increment=7, time_increment_period="weekly"),
        "custom_insights[0].time_increment",
        id="both time_increment and time_increment_period",
    ),
    pytest.param(
        with_insight(time_increment_period="hourly"), "custom_insights[0].time_increment_period", id="unknown period"
    ),
    pytest.param(
        with_insight(start_date="2026-05-10", end_date="2026-05-01"),
        "custom_insights[0].end_date",
        id="custom insight ending before it starts",
    ),
    pytest.param("{not json", "config", id="config that is not JSON"),
    pytest.param("", "config", id="empty config file"),
    pytest.param([BASE_CONFIG], "config", id="config that is a JSON list"),
]


@pytest.mark.parametrize(("config", "field"), BAD_CONFIGS)
def test_check_fails_naming_the_offending_field_for_a_bad_config(run, config, field):
    result = run("check", config)
    assert result.returncode == 0, result.describe()
    status = the_connection_status(result)
    assert status.status == Status.FAILED, result.describe()
    assert field in (status.message or ""), f"the message should name {field!r}: {status.message!r}"


# Stream name -> (primary key, cursor field or None when the stream has no cursor); Airbyte's own.
EXPECTED_STREAMS: dict[str, tuple[list[list[str]], list[str] | None]] = {
    "ad_account": ([["id"]], None),
    "campaigns": ([["id"]], ["updated_time"]),
    "ad_sets": ([["id"]], ["updated_time"]),
    "ads": ([["id"]], ["updated_time"]),
    "ad_creatives": ([["id"]], None),
    "ad_creatives_from_ads": ([["id"]], ["updated_time"]),
    "activities": ([], ["event_time"]),
    "images": ([["id"]], ["updated_time"]),
    "videos": ([["id"]], ["updated_time"]),
    "custom_conversions": ([["id"]], None),
    "custom_audiences": ([["id"]], None),
    "ads_insights": ([["date_start"], ["account_id"], ["ad_id"]], ["date_start"]),
    "ads_insights_age_and_gender": (
        [["date_start"], ["account_id"], ["ad_id"], ["age"], ["gender"]],
        ["date_start"],
    ),
    "ads_insights_comscore_market": ([["date_start"], ["account_id"], ["ad_id"], ["comscore_market"]], ["date_start"]),
    "custom_my_insight": ([["date_start"], ["account_id"], ["ad_id"], ["age"]], ["date_start"]),
}


def test_discover_lists_the_airbyte_streams_with_their_keys_and_cursors(run):
    result = run("discover", with_insight(breakdowns=["age"]))
    assert result.returncode == 0, result.describe()
    streams = {s.name: s for s in the_catalog(result).streams}
    missing = sorted(set(EXPECTED_STREAMS) - set(streams))
    assert not missing, f"discover lacks {missing}; it listed {sorted(streams)}"
    for name, (primary_key, cursor) in EXPECTED_STREAMS.items():
        stream = streams[name]
        assert (stream.source_defined_primary_key or []) == primary_key, f"{name}: primary key"
        if cursor is None:
            assert not stream.default_cursor_field, f"{name}: has cursor {stream.default_cursor_field}"
        else:
            assert stream.default_cursor_field == cursor, f"{name}: cursor"
            assert stream.source_defined_cursor, f"{name}: the cursor should be source-defined"
            assert "incremental" in [m.value for m in stream.supported_sync_modes], f"{name}: no incremental mode"


def test_discover_gives_a_custom_insight_a_snake_case_stream_with_its_fields(run):
    result = run("discover", with_insight(breakdowns=["age"]))
    assert result.returncode == 0, result.describe()
    streams = {s.name: s for s in the_catalog(result).streams}
    assert "custom_my_insight" in streams, f"no custom_my_insight among {sorted(streams)}"
    properties = streams["custom_my_insight"].json_schema["properties"]
    for field in ("clicks", "impressions", "age", "date_start", "account_id", "ad_id"):
        assert field in properties, f"custom_my_insight's schema lacks {field}"


def test_discover_without_custom_insights_lists_thirty_one_streams(run):
    result = run("discover", BASE_CONFIG)
    assert result.returncode == 0, result.describe()
    names = [s.name for s in the_catalog(result).streams]
    assert len(names) == 31, names
    assert len(set(names)) == len(names), f"duplicate stream names: {names}"
    custom = [n for n in names if n.startswith("custom_") and n not in ("custom_conversions", "custom_audiences")]
    assert not custom, f"custom insight streams without custom insights: {custom}"


def test_read_prints_only_airbyte_messages_with_status_estimate_and_state_traces(run, host_test, tmp_path):
    discovered = run("discover", BASE_CONFIG)
    assert discovered.returncode == 0, discovered.describe()
    wanted = {"campaigns", "ads_insights"}
    catalog = {
        "streams": [
            {
                "stream": s.model_dump(mode="json", exclude_none=True) if hasattr(s, "model_dump") else s.dict(),
                "sync_mode": "incremental",
                "destination_sync_mode": "append",
            }
            for s in the_catalog(discovered).streams
            if s.name in wanted
        ]
    }
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(BASE_CONFIG))
    proc = subprocess.run(
        [str(host_test), "--simulator", "calm", "read", "--config", str(config_path), "--catalog", str(catalog_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    messages = [parse_message(line) for line in proc.stdout.splitlines()]
    records = [m for m in messages if m.type == Type.RECORD]
    assert {m.record.stream for m in records} == wanted
    traces = [m.trace for m in messages if m.type == Type.TRACE]
    statuses = {(t.stream_status.stream_descriptor.name, t.stream_status.status.value) for t in traces if t.stream_status}
    for stream in wanted:
        for status in ("STARTED", "RUNNING", "COMPLETE"):
            assert (stream, status) in statuses, f"no {status} status trace for {stream}"
    estimates = [t.estimate for t in traces if t.estimate]
    assert estimates and estimates[-1].name == "ads_insights"
    insights_rows = sum(1 for m in records if m.record.stream == "ads_insights")
    assert estimates[-1].row_estimate == insights_rows
    assert any(m.type == Type.STATE for m in messages)
