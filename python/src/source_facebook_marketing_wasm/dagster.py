"""The connector's streams as Dagster assets, one partition per ad account, loaded into DuckDB.

Needs `pip install source-facebook-marketing-wasm[dagster]` (Dagster and dagster-duckdb); this is
the only module of the package that imports them.

    import dagster as dg
    from source_facebook_marketing_wasm.dagster import facebook_marketing_definitions

    defs = facebook_marketing_definitions(
        database="facebook.duckdb",
        config={"credentials": {"access_token": dg.EnvVar("FB_TOKEN").get_value()},
                "start_date": "2026-01-01T00:00:00Z"},
        streams=["campaigns", "ad_sets", "ads", "ads_insights"],
        accounts=["1234567890", "act_2345678901"],
    )

A run materialises one partition: it reads that one account (`partition_config`) through the
package's Python API, from the state its last run saved, and writes to DuckDB (through
`dagster_duckdb.DuckDBResource`):

- one table per stream, named as the stream: `_account` (the partition), the stream's primary key
  fields as text (one column each, named as the field), and `_data`, the record as JSON;
- `_sfm_state(partition TEXT PRIMARY KEY, state JSON)`, each partition's state (the list of STATE
  messages a read starts from).

Writes are checkpointed at the STATE messages the connector emits (at most every 5 s,
`CHECKPOINT_INTERVAL_S`): the records read since the last checkpoint replace the rows of that
partition with the same primary key (streams without one, such as `activities`, match on the
whole record), and the partition's state is saved, in one transaction. A run that fails
part-way keeps what it checkpointed, the next run goes on from there, and a record read twice
is stored once. An error the connector reports (an error TRACE) fails the run with its message,
after what was read before it is written.

The asset is in the concurrency pool `pool`: the instance's limit for that pool (dagster.yaml
`concurrency: pools: default_limit: N`, or `dagster instance concurrency set POOL N`) caps how
many accounts are read at once, across runs.

For accounts that come and go, use a `DynamicPartitionsDefinition` instead of the static list:
pass `partitions_def=dg.DynamicPartitionsDefinition(name="facebook_ad_accounts")` (and no
`accounts`), then add or remove accounts with `instance.add_dynamic_partitions(...)` or from a
sensor's `dynamic_partitions_requests`; partition keys are account ids without `act_`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import dagster as dg
from dagster_duckdb import DuckDBResource

from . import HostError, discover, read
from .messages import Log, Record, State, Trace
from .state import normalize_account, split

__all__ = [
    "STATE_TABLE",
    "PartitionSync",
    "configured_catalog",
    "facebook_marketing_assets",
    "facebook_marketing_definitions",
    "partition_config",
    "seed_partition_states",
    "sync_partition",
]

# The table that holds each partition's state.
STATE_TABLE = "_sfm_state"

# 5 s: how often a partition's reads are written at most (at the first STATE message after it).
# Each write opens the DuckDB file, and closing it compresses what was written into the file:
# writing at every STATE message (one per day of insights) made a month of an account's
# `ads_insights_age_and_gender` (58,000 records) take 32 s instead of 24 s. A failed read loses
# at most the last few seconds of its reading, which the next run reads again.
CHECKPOINT_INTERVAL_S = 5.0

# 20,000 records: read without writing them, at most (a day of a large account's insights can
# hold more). Past it they are written with the last state, which may be older than some of
# them: safe, because a row replaces the one with its key, so the run that reads them again
# after a failure stores each once.
MAX_BUFFERED_RECORDS = 20_000

ConfigLike = Union[Mapping[str, Any], Callable[[str], Mapping[str, Any]]]
DatabaseLike = Union[str, DuckDBResource]


def partition_config(config: Mapping[str, Any], account: Any) -> dict[str, Any]:
    """`config` for one ad account: `account_ids` is `[account]` (its id without `act_`), and
    Airbyte's older single-account field `account_id` is dropped. `config` is not changed."""
    out = copy.deepcopy(dict(config))
    out.pop("account_id", None)
    out["account_ids"] = [normalize_account(account)]
    return out


def configured_catalog(catalog: Mapping[str, Any], streams: Sequence[str]) -> dict[str, Any]:
    """The configured catalog of `streams` from a discovered `catalog`: incremental on the
    stream's default cursor where it offers that, full refresh elsewhere, with its primary key.
    Raises `ValueError` naming the streams the catalog does not have."""
    offered = {s["name"]: s for s in catalog["streams"]}
    missing = [name for name in streams if name not in offered]
    if missing:
        raise ValueError(f"the connector has no stream {', '.join(missing)}; it offers {', '.join(sorted(offered))}")
    configured = []
    for name in streams:
        s = offered[name]
        pk = s.get("source_defined_primary_key") or []
        c: dict[str, Any] = {"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "append"}
        if "incremental" in s.get("supported_sync_modes", []):
            c["sync_mode"] = "incremental"
            c["cursor_field"] = s.get("default_cursor_field", [])
        if pk:
            c["primary_key"] = pk
            c["destination_sync_mode"] = "append_dedup"
        configured.append(c)
    return {"streams": configured}


# ------------------------------------------------------------------------------ DuckDB


def _resource(database: DatabaseLike) -> DuckDBResource:
    return database if isinstance(database, DuckDBResource) else DuckDBResource(database=database)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class _Layout:
    """Where a partition's rows and state live in the database."""

    schema: Optional[str] = None

    def table(self, name: str) -> str:
        return f"{_ident(self.schema)}.{_ident(name)}" if self.schema else _ident(name)

    def ensure_state_table(self, conn: Any) -> None:
        if self.schema:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.schema)}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table(STATE_TABLE)} (partition VARCHAR PRIMARY KEY, state JSON)")

    def load_state(self, conn: Any, partition: str) -> Optional[list]:
        self.ensure_state_table(conn)
        row = conn.execute(f"SELECT state FROM {self.table(STATE_TABLE)} WHERE partition = ?", [partition]).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def save_state(self, conn: Any, partition: str, state: list) -> None:
        conn.execute(
            f"INSERT INTO {self.table(STATE_TABLE)} VALUES (?, ?) "
            "ON CONFLICT (partition) DO UPDATE SET state = excluded.state",
            [partition, json.dumps(state, separators=(",", ":"))],
        )


@dataclass
class _Table:
    """A stream's table: `_account`, one text column per primary key field, `_data`."""

    name: str
    key: list[list[str]]  # the primary key as paths of fields; empty: the whole record

    @property
    def key_columns(self) -> list[str]:
        return [".".join(path) for path in self.key]

    def create(self, conn: Any, layout: _Layout) -> None:
        columns = ["_account VARCHAR NOT NULL", *(f"{_ident(c)} VARCHAR" for c in self.key_columns), "_data JSON NOT NULL"]
        conn.execute(f"CREATE TABLE IF NOT EXISTS {layout.table(self.name)} ({', '.join(columns)})")

    def text(self, record: Record) -> str:
        """The record as stored. Without a primary key, the record is its own key: it is stored
        as canonical JSON, so that the same record read twice is the same text."""
        if self.key:
            return record.raw
        return json.dumps(record.data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    def upsert(self, conn: Any, layout: _Layout, account: str, records: list[str]) -> None:
        """Replaces the partition's rows that have the keys of `records` with them; of records
        with the same key, the last one is kept. DuckDB reads the key fields out of the JSON
        (strings as they are, other values as JSON, absent as NULL): one parse of each record, in
        a fifth of the time Python's `json.loads` takes."""
        target = layout.table(self.name)
        if self.key:
            paths = ", ".join(_sql_text("$." + ".".join(_json_key(p) for p in path)) for path in self.key)
            columns = ", ".join(f"k[{i + 1}] AS {_ident(c)}" for i, c in enumerate(self.key_columns))
            same = " AND ".join(f"t.{_ident(c)} IS NOT DISTINCT FROM b.{_ident(c)}" for c in self.key_columns)
            rows = f"""
                SELECT ?::VARCHAR AS _account, {columns}, _data::JSON AS _data FROM (
                    SELECT _data, json_extract_string(_data, [{paths}]) AS k, seq
                    FROM (SELECT unnest(?::VARCHAR[]) AS _data, generate_subscripts(?::VARCHAR[], 1) AS seq)
                ) QUALIFY row_number() OVER (PARTITION BY k ORDER BY seq DESC) = 1"""
            params = [account, records, records]
        else:
            same = "t._data::VARCHAR = b._data::VARCHAR"
            rows = "SELECT DISTINCT ?::VARCHAR AS _account, _data::JSON AS _data FROM (SELECT unnest(?::VARCHAR[]) AS _data)"
            params = [account, records]
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _sfm_batch AS {rows}", params)
        conn.execute(f"DELETE FROM {target} AS t USING _sfm_batch AS b WHERE t._account = ? AND {same}", [account])
        conn.execute(f"INSERT INTO {target} SELECT * FROM _sfm_batch")
        conn.execute("DROP TABLE _sfm_batch")


def _json_key(name: str) -> str:
    """A field name as a JSON path step: quoted, so that any name is one step."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ------------------------------------------------------------------------------ one partition


@dataclass
class PartitionSync:
    """What `sync_partition` did: records read by stream, whether it started from a saved
    state, how many checkpoints it wrote, and the connector's error, if any."""

    account: str
    records: dict[str, int] = field(default_factory=dict)
    started_from_state: bool = False
    checkpoints: int = 0
    error: Optional[str] = None


class _Writer:
    """Buffers a partition's records by stream and writes them, with its state, at checkpoints:
    at a STATE message once the last write is `interval_s` old, and when the read ends."""

    def __init__(self, db: DuckDBResource, layout: _Layout, account: str, tables: dict[str, _Table], state: dict,
                 interval_s: float):  # fmt: skip
        self.db, self.layout, self.account, self.tables = db, layout, account, tables
        self.state = state  # stream name -> its last STATE message
        self.state_changed = False  # a STATE came since the state was last saved
        self.pending: dict[str, list[str]] = {}  # stream name -> its records since the last write
        self.buffered = 0
        self.checkpoints = 0
        self.interval_s = interval_s
        self.last_write = -math.inf

    def add(self, record: Record) -> None:
        table = self.tables.get(record.stream)
        if table is None:  # a stream that was not asked for; the connector reads only those
            return
        self.pending.setdefault(record.stream, []).append(table.text(record))
        self.buffered += 1
        if self.buffered >= MAX_BUFFERED_RECORDS:
            self.write()

    def checkpoint(self, message: State) -> None:
        name = message.state.get("stream", {}).get("stream_descriptor", {}).get("name")
        if name is not None:
            self.state[name] = message.state
            self.state_changed = True
        if time.monotonic() - self.last_write >= self.interval_s:
            self.write()

    def write(self) -> None:
        """Writes the records read so far, with the last state if a STATE came since the state
        was last saved: the state covers the records read before it, and those read after it
        are read again from it, each stored once."""
        with_state = self.state_changed
        if not self.pending and not with_state:
            return
        # A connection per checkpoint, not per run: DuckDB lets one process write to a file at a
        # time, and partitions read in other processes write to the same one.
        with self.db.get_connection() as conn:
            conn.begin()
            try:
                for stream, records in self.pending.items():
                    self.tables[stream].upsert(conn, self.layout, self.account, records)
                if with_state:
                    self.layout.save_state(conn, self.account, [self.state[k] for k in sorted(self.state)])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        self.pending.clear()
        self.buffered = 0
        self.last_write = time.monotonic()
        if with_state:
            self.checkpoints += 1
            self.state_changed = False


def sync_partition(
    database: DatabaseLike,
    config: Mapping[str, Any],
    streams: Sequence[str],
    account: Any,
    *,
    graph_url: Optional[str] = None,
    schema: Optional[str] = None,
    memory_mb: Optional[int] = None,
    log: Optional[Any] = None,
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
) -> PartitionSync:
    """Reads `streams` of one ad account into `database` (a path, or a `DuckDBResource`), from
    the state saved for it, checkpointing at STATE messages at most every
    `checkpoint_interval_s` (0: at every one; see the module's doc). Returns what it did; the
    connector's error is in `.error`, after what was read before it has been written. Raises
    `HostError` when the component cannot run, and DuckDB's errors."""
    partition = normalize_account(account)
    db, layout = _resource(database), _Layout(schema)
    cfg = partition_config(config, partition)
    catalog = configured_catalog(discover(cfg, graph_url=graph_url).catalog, streams)
    tables = {
        c["stream"]["name"]: _Table(c["stream"]["name"], c.get("primary_key") or []) for c in catalog["streams"]
    }
    with db.get_connection() as conn:
        saved = layout.load_state(conn, partition)
        for table in tables.values():
            table.create(conn, layout)
    # The saved state as it was written: one STATE message per stream (what `read` takes).
    state = {m["stream"]["stream_descriptor"]["name"]: m for m in saved or []}
    out = PartitionSync(account=partition, records={name: 0 for name in streams}, started_from_state=bool(state))
    writer = _Writer(db, layout, partition, tables, dict(state), checkpoint_interval_s)
    errors: list[str] = []
    for m in read(cfg, catalog, list(state.values()) or None, graph_url=graph_url, memory_mb=memory_mb):
        if isinstance(m, Record):
            out.records[m.stream] = out.records.get(m.stream, 0) + 1
            writer.add(m)
        elif isinstance(m, State):
            writer.checkpoint(m)
        elif isinstance(m, Trace) and m.is_error:
            errors.append(m.trace.get("error", {}).get("message") or m.raw)
        elif isinstance(m, Log) and log is not None:
            _forward(log, m)
    # The last state, and what came after it (full-refresh streams emit none): a row replaces
    # the one with its key, so a record read again is stored once.
    writer.write()
    out.checkpoints = writer.checkpoints
    out.error = "; ".join(errors) or None
    return out


def _forward(log: Any, m: Log) -> None:
    if m.level in ("FATAL", "ERROR"):
        log.error(m.message)
    elif m.level == "WARN":
        log.warning(m.message)
    else:
        log.debug(m.message)


def seed_partition_states(
    database: DatabaseLike,
    state: Any,
    accounts: Sequence[Any],
    *,
    schema: Optional[str] = None,
    replace: bool = False,
) -> dict[str, int]:
    """Saves each account's part of a one-process `state` (what `read()` takes: the last sync's
    STATE messages, for all accounts) as its partition's state, so that moving to one partition
    per account does not read everything again. Returns the number of streams seeded by
    partition (0: the state holds nothing of that account, and no row is written).

    A partition that already has a saved state is refused (`ValueError`, naming it) unless
    `replace`. The state is split by `state.split`, with its refusals."""
    partitions = [normalize_account(a) for a in accounts]
    pieces = {p: split(state, [p]) for p in partitions}
    layout = _Layout(schema)
    out = {}
    with _resource(database).get_connection() as conn:
        conn.begin()
        try:
            layout.ensure_state_table(conn)
            for p, piece in pieces.items():
                out[p] = len(piece)
                if not piece:
                    continue
                if not replace and layout.load_state(conn, p) is not None:
                    raise ValueError(f"partition {p} already has a saved state; pass replace=True to overwrite it")
                layout.save_state(conn, p, piece)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return out


# ------------------------------------------------------------------------------ Dagster


def facebook_marketing_assets(
    *,
    config: ConfigLike,
    streams: Sequence[str],
    accounts: Optional[Sequence[Any]] = None,
    name: str = "facebook_marketing",
    pool: Optional[str] = "facebook_marketing",
    graph_url: Optional[str] = None,
    key_prefix: Optional[Union[str, Sequence[str]]] = None,
    partitions_def: Optional[dg.PartitionsDefinition] = None,
    resource_key: str = "duckdb",
    schema: Optional[str] = None,
    group_name: Optional[str] = None,
    retry_policy: Optional[dg.RetryPolicy] = None,
    op_tags: Optional[Mapping[str, Any]] = None,
    memory_mb: Optional[int] = None,
    checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
) -> dg.AssetsDefinition:
    """A `multi_asset` of `streams` (one asset each, keyed `[*key_prefix, stream]`; the prefix
    defaults to `[name]`), partitioned by ad account, in the concurrency pool `pool`.

    `config` is the connector's config without `account_ids` (set per partition), or a function
    from an account id to its config (accounts of different businesses may need different
    tokens). The config stays in this definition: it is not run config, so the token is not
    written to the event log. Partitions are `accounts` (ids, with or without `act_`), or
    `partitions_def` (e.g. dynamic partitions) whose keys are account ids. The DuckDB resource
    is the one under `resource_key`; `schema` puts the tables in that DuckDB schema. `op_tags`
    go on the step (e.g. `dagster-k8s/config` for its pod). Each asset's materialisation records
    `records` (read in this run), `started_from_state` and `checkpoints`. Selecting some of the
    assets reads only those streams."""
    if not streams:
        raise ValueError("streams: name at least one stream")
    if (accounts is None) == (partitions_def is None):
        raise ValueError("give either accounts (a static list of ad account ids) or partitions_def")
    if partitions_def is None:
        keys = [normalize_account(a) for a in accounts or []]
        if not keys:
            raise ValueError("accounts: name at least one ad account")
        partitions_def = dg.StaticPartitionsDefinition(list(dict.fromkeys(keys)))
    prefix = [name] if key_prefix is None else [key_prefix] if isinstance(key_prefix, str) else list(key_prefix)
    by_key = {dg.AssetKey([*prefix, s]): s for s in streams}
    specs = [
        dg.AssetSpec(
            key=key,
            description=f"Meta Marketing API stream {stream}, one partition per ad account (table {stream})",
            group_name=group_name,
            kinds={"duckdb"},
            metadata={"stream": stream},
        )
        for key, stream in by_key.items()
    ]

    @dg.multi_asset(
        name=name,
        specs=specs,
        partitions_def=partitions_def,
        pool=pool,
        can_subset=True,
        required_resource_keys={resource_key},
        retry_policy=retry_policy,
        op_tags=op_tags,
    )
    def _facebook_marketing(context):  # no annotation: Dagster reads it, and this module's are strings
        account = context.partition_key
        selected = [by_key[k] for k in by_key if k in context.selected_asset_keys]
        base = config(account) if callable(config) else config
        try:
            result = sync_partition(
                getattr(context.resources, resource_key),
                base,
                selected,
                account,
                graph_url=graph_url,
                schema=schema,
                memory_mb=memory_mb,
                log=context.log,
                checkpoint_interval_s=checkpoint_interval_s,
            )
        except HostError as e:  # discover refused, or the component could not run
            raise dg.Failure(description=f"account {account}: {e}") from e
        if result.error is not None:
            raise dg.Failure(
                description=f"account {result.account}: {result.error}",
                metadata={"records": sum(result.records.values()), "checkpoints": result.checkpoints},
            )
        for key, stream in by_key.items():
            if stream in selected:
                yield dg.MaterializeResult(
                    asset_key=key,
                    metadata={
                        "records": result.records.get(stream, 0),
                        "started_from_state": result.started_from_state,
                        "checkpoints": result.checkpoints,
                    },
                )

    return _facebook_marketing


def facebook_marketing_definitions(
    *,
    database: DatabaseLike,
    config: ConfigLike,
    streams: Sequence[str],
    accounts: Optional[Sequence[Any]] = None,
    name: str = "facebook_marketing",
    executor: Optional[dg.ExecutorDefinition] = None,
    **assets_options: Any,
) -> dg.Definitions:
    """`Definitions` with the assets of `facebook_marketing_assets` (the same arguments), the
    DuckDB resource (`database`: a path, or a `DuckDBResource`), and a job named
    `<name>_job` that materialises them, one partition per run."""
    assets = facebook_marketing_assets(config=config, streams=streams, accounts=accounts, name=name, **assets_options)
    job = dg.define_asset_job(
        f"{name}_job", selection=dg.AssetSelection.assets(assets), partitions_def=assets.partitions_def
    )
    key = assets_options.get("resource_key", "duckdb")
    return dg.Definitions(assets=[assets], jobs=[job], resources={key: _resource(database)}, executor=executor)

