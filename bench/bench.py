"""Helpers of bench/run.sh: the configured catalog, the record-set comparison and the table.

Standard library only, so it runs on the system Python (no venv needed).

    bench.py catalog  --discover FILE --streams a,b,c --out FILE
    bench.py compare  --catalog FILE --ours FILE --theirs FILE [--labels A,B] [--out FILE]
    bench.py table    --dir DIR

`compare` reads both message files, keeps RECORD messages only (LOG, TRACE, STATE, CONTROL
lines are skipped), keys every record by its stream's primary key and lists each difference
with a first guess at its cause. `table` prints metric | ours | theirs | ratio from the files
run.sh leaves in DIR (time -v reports, simulator counters, the comparison); when DIR also holds
a run of the Python wheel (wheel.*), a wheel column and its ratio to ours come between.
"""

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict

# Activities have no primary key in Airbyte's catalog; an event is one object at one time.
ACTIVITY_KEY = ["object_id", "event_time"]

# How many example keys a difference lists.
EXAMPLES = 5


def read_messages(path):
    """Yields the JSON messages of a file, one per line; other lines are ignored."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


# ---------------------------------------------------------------------------------- catalog


def cmd_catalog(args):
    streams = [s for s in args.streams.split(",") if s]
    catalog = None
    for m in read_messages(args.discover):
        if m.get("type") == "CATALOG":
            catalog = m["catalog"]
    if catalog is None:
        sys.exit(f"{args.discover}: no CATALOG message")
    by_name = {s["name"]: s for s in catalog["streams"]}
    missing = [s for s in streams if s not in by_name]
    if missing:
        sys.exit(f"streams not in the discovered catalog: {', '.join(missing)}")
    configured = []
    for name in streams:
        s = by_name[name]
        incremental = "incremental" in s.get("supported_sync_modes", [])
        c = {
            "stream": s,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append",
        }
        if incremental and s.get("default_cursor_field"):
            c["cursor_field"] = s["default_cursor_field"]
        if s.get("source_defined_primary_key"):
            c["primary_key"] = s["source_defined_primary_key"]
        configured.append(c)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"streams": configured}, f)


# ---------------------------------------------------------------------------------- compare


def primary_keys(catalog_path):
    """Primary key (list of top-level field names) per stream of a configured catalog."""
    with open(catalog_path, encoding="utf-8") as f:
        catalog = json.load(f)
    keys = {}
    for c in catalog["streams"]:
        s = c["stream"]
        pk = c.get("primary_key") or s.get("source_defined_primary_key")
        if s["name"] == "activities" or not pk:
            keys[s["name"]] = ACTIVITY_KEY if s["name"] == "activities" else ["id"]
        else:
            keys[s["name"]] = [p[0] for p in pk]
    return keys


def load_records(path, keys):
    """Records per stream: {stream: {pk tuple: [data, ...]}}, plus message counts by type."""
    records = defaultdict(lambda: defaultdict(list))
    types = Counter()
    for m in read_messages(path):
        t = m.get("type")
        types[t] += 1
        if t != "RECORD":
            continue
        r = m["record"]
        data = r.get("data", {})
        pk = tuple(json.dumps(data.get(k), sort_keys=True) for k in keys.get(r["stream"], ["id"]))
        records[r["stream"]][pk].append(data)
    return records, types


def fmt_key(names, pk):
    return "(" + ", ".join(f"{n}={json.loads(v)}" for n, v in zip(names, pk)) + ")"


def guess_missing(stream, side, rows, context):
    """A first guess at why records with these keys are on one side only."""
    other = "theirs" if side == "ours" else "ours"
    if stream.startswith("ads_insights") or stream.startswith("custom_"):
        dates = sorted({r[0].get("date_start") for r in rows})
        today = context["today_dates"]
        if dates and set(dates) <= today:
            return (
                f"only the newest day(s) {', '.join(dates)}: the two runs saw a different 'today' "
                "(account timezone vs. the moment each run asked), or one read the partial day"
            )
        return (
            f"dates {dates[0]}..{dates[-1]}: a report job or result page that one connector did "
            f"not read completely (check {other}'s log for failed or timed-out jobs)"
        )
    if stream == "activities":
        return "events in the window between the two runs (the simulated world keeps changing), or the `since` boundary"
    times = sorted(str(r[0].get("updated_time", "")) for r in rows if r and r[0].get("updated_time"))
    if times:
        return (
            f"updated_time {times[0]}..{times[-1]}: objects edited while the runs went on, or a "
            "cursor-boundary difference (we filter from cursor - 1 s)"
        )
    return f"{other} did not read these; its log may say why (errors, skipped accounts, different filters)"


def guess_field(kind, field, stream, examples):
    if kind == "only theirs":
        return f"we do not emit '{field}' (not in our schema / not requested)"
    if kind == "only ours":
        return f"Airbyte does not emit '{field}' (not requested or dropped by its transform)"
    a, b = examples
    sa, sb = json.dumps(a), json.dumps(b)
    if re.search(r'"False"', sa) and re.search(r'"True"', sb) and sa.replace('"False"', '"True"') == sb:
        return (
            "Airbyte turns the string 'False' into 'True': the Facebook SDK types this field as bool and "
            "its typechecker treats every string but 'false'/'0'/'null' as true; we pass the API's value through"
        )
    if re.match(r'^"\d{4}-\d\d-\d\dT', sa) and re.match(r'^"\d{4}-\d\d-\d\dT', sb):
        return "timestamp differs: the object changed between the two runs, or a format difference"
    if type(a) is not type(b):
        return f"type differs ({type(a).__name__} vs {type(b).__name__}): schema normalisation"
    return "value differs: the data changed between runs, or a transform differs"


def cmd_compare(args):
    keys = primary_keys(args.catalog)
    ours, ours_types = load_records(args.ours, keys)
    theirs, theirs_types = load_records(args.theirs, keys)
    # Dates that are "today" in some timezone at the time of the runs: the newest date seen.
    all_dates = set()
    for side in (ours, theirs):
        for s, rows in side.items():
            for pk, rs in rows.items():
                d = rs[0].get("date_start")
                if d:
                    all_dates.add(d)
    context = {"today_dates": set(sorted(all_dates)[-1:])}
    streams = sorted(set(keys) | set(ours) | set(theirs))
    report = {"streams": {}, "message_types": {"ours": dict(ours_types), "theirs": dict(theirs_types)}}
    # What the text calls each side (the JSON report keeps "ours" and "theirs").
    label = dict(zip(("ours", "theirs"), args.labels.split(",")))
    lines = []
    for s in streams:
        o, t = ours.get(s, {}), theirs.get(s, {})
        names = keys.get(s, ["id"])
        only_o = sorted(set(o) - set(t))
        only_t = sorted(set(t) - set(o))
        dup_o = sum(len(v) - 1 for v in o.values())
        dup_t = sum(len(v) - 1 for v in t.values())
        n_o = sum(len(v) for v in o.values())
        n_t = sum(len(v) for v in t.values())
        field_diffs = Counter()
        field_examples = {}
        for pk in set(o) & set(t):
            a, b = o[pk][-1], t[pk][-1]
            for f in sorted(set(a) | set(b)):
                if f not in b:
                    k = ("only ours", f)
                elif f not in a:
                    k = ("only theirs", f)
                elif a[f] != b[f]:
                    k = ("differs", f)
                else:
                    continue
                field_diffs[k] += 1
                field_examples.setdefault(k, (pk, a.get(f), b.get(f)))
        agree = not only_o and not only_t
        entry = {
            "pk": names,
            "ours": n_o,
            "theirs": n_t,
            "distinct_ours": len(o),
            "distinct_theirs": len(t),
            "only_ours": len(only_o),
            "only_theirs": len(only_t),
            "duplicates_ours": dup_o,
            "duplicates_theirs": dup_t,
            "records_with_field_differences": len(
                {pk for pk in set(o) & set(t) if o[pk][-1] != t[pk][-1]}
            ),
            "agree": agree,
        }
        report["streams"][s] = entry
        head = (
            f"{s}: {label['ours']} {n_o} ({len(o)} distinct), {label['theirs']} {n_t} ({len(t)} distinct), "
            f"key {'+'.join(names)} -> {'same key set' if agree else 'KEY SETS DIFFER'}"
        )
        lines.append(head)
        for side, only, src in (("ours", only_o, o), ("theirs", only_t, t)):
            if only:
                rows = [src[pk] for pk in only]
                ex = "; ".join(fmt_key(names, pk) for pk in only[:EXAMPLES])
                lines.append(f"  only in {label[side]}: {len(only)} keys, e.g. {ex}")
                lines.append(f"    guess: {guess_missing(s, side, rows, context)}")
        for side, dup in (("ours", dup_o), ("theirs", dup_t)):
            if dup:
                lines.append(
                    f"  {label[side]} emitted {dup} duplicate record(s) by key (same key twice)"
                    "    guess: overlapping slices or re-read pages; a destination deduplicates them"
                )
        for (kind, f), n in sorted(field_diffs.items()):
            pk, a, b = field_examples[(kind, f)]
            shown = a if kind == "only ours" else b if kind == "only theirs" else (a, b)
            lines.append(
                f"  field {f}: {kind} in {n} matched record(s), e.g. {fmt_key(names, pk)}: "
                f"{json.dumps(shown)[:160]}"
            )
            lines.append(f"    guess: {guess_field(kind, f, s, (a, b))}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=True)


# ---------------------------------------------------------------------------------- table


def parse_time_v(path):
    """Wall s, CPU s (user + sys), peak RSS MiB and exit status from a `time -v` report."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("User time (seconds):"):
                out["user"] = float(line.split(":")[-1])
            elif line.startswith("System time (seconds):"):
                out["sys"] = float(line.split(":")[-1])
            elif line.startswith("Maximum resident set size (kbytes):"):
                out["rss_mib"] = int(line.split(":")[-1]) / 1024
            elif line.startswith("Elapsed (wall clock) time"):
                v = line.split("): ")[-1].split(":")
                secs = 0.0
                for part in v:
                    secs = secs * 60 + float(part)
                out["wall"] = secs
            elif line.startswith("Exit status:"):
                out["exit"] = int(line.split(":")[-1])
    out["cpu"] = out.get("user", 0.0) + out.get("sys", 0.0)
    return out


def ratio(a, b):
    if a is None or b is None:
        return ""
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.3f}"


def num(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{x:.{digits}f}"


def cmd_brief(args):
    """Our run alone (OURS_ONLY=1): the table's rows for ours, '-' where theirs would be."""
    d = args.dir
    t = parse_time_v(os.path.join(d, "ours.time"))
    with open(os.path.join(d, "ours.counters.json"), encoding="utf-8") as f:
        counters = json.load(f)
    records = 0
    with open(os.path.join(d, "ours.jsonl"), encoding="utf-8") as f:
        for line in f:
            records += '"type":"RECORD"' in line
    rows = [("exit status", t.get("exit")), ("wall s", t["wall"]), ("CPU s (user+sys)", t["cpu"]),
            ("CPU ms per record", 1000 * t["cpu"] / max(records, 1)), ("peak RSS MiB", t["rss_mib"]),
            ("records", records), ("HTTP requests (total)", counters["http_requests"])]
    rows += [(f"  requests: {k}", v) for k, v in sorted(counters["requests"].items())]
    rows.append(("report jobs created", counters["jobs_created"]))
    w = max(len(r[0]) for r in rows) + 2
    print(f"{'metric':<{w}} {'ours':>12} {'theirs':>12} {'ratio':>9}")
    for name, value in rows:
        print(f"{name:<{w}} {num(value):>12} {'-':>12} {'-':>9}")
    print("ours only (OURS_ONLY=1): Airbyte's connector was not run")


def cmd_table(args):
    d = args.dir
    with open(os.path.join(d, "compare.json"), encoding="utf-8") as f:
        cmp = json.load(f)
    # ours (host-test), the wheel when it ran, theirs (Airbyte's connector).
    names = ["ours", "wheel", "theirs"] if os.path.exists(os.path.join(d, "wheel.time")) else ["ours", "theirs"]
    times = {n: parse_time_v(os.path.join(d, f"{n}.time")) for n in names}
    counters = {}
    for n in names:
        with open(os.path.join(d, f"{n}.counters.json"), encoding="utf-8") as f:
            counters[n] = json.load(f)
    per_stream = {"ours": {s: e["ours"] for s, e in cmp["streams"].items()},
                  "theirs": {s: e["theirs"] for s, e in cmp["streams"].items()}}
    if "wheel" in names:
        with open(os.path.join(d, "compare-wheel.json"), encoding="utf-8") as f:
            per_stream["wheel"] = {s: e["theirs"] for s, e in json.load(f)["streams"].items()}
    sim_cpu = {}
    for n in names:
        try:
            with open(os.path.join(d, f"{n}.sim.cpu"), encoding="utf-8") as f:
                sim_cpu[n] = float(f.read().strip())
        except (OSError, ValueError):
            sim_cpu[n] = None
    records = {n: sum(per_stream[n].values()) for n in names}

    def row(name, value, with_ratio=True):
        return (name, {n: value(n) for n in names}, with_ratio)

    rows = [
        row("exit status", lambda n: times[n].get("exit"), False),
        row("wall s", lambda n: times[n]["wall"]),
        row("CPU s (user+sys)", lambda n: times[n]["cpu"]),
        row("CPU ms per record", lambda n: 1000 * times[n]["cpu"] / max(records[n], 1)),
        row("peak RSS MiB", lambda n: times[n]["rss_mib"]),
        row("records", lambda n: records[n]),
        row("HTTP requests (total)", lambda n: counters[n]["http_requests"]),
    ]
    for kind in sorted(set().union(*(counters[n]["requests"] for n in names))):
        rows.append(row(f"  requests: {kind}", lambda n, k=kind: counters[n]["requests"].get(k, 0)))
    rows.append(row("report jobs created", lambda n: counters[n]["jobs_created"]))
    rows.append(row("report jobs failed", lambda n: counters[n]["jobs_failed"]))
    rows.append(row("throttled responses", lambda n: counters[n]["throttled_responses"]))
    rows.append(row("simulator CPU s (serving that run)", lambda n: sim_cpu[n]))
    for s in sorted(cmp["streams"]):
        rows.append(row(f"  records: {s}", lambda n, s=s: per_stream[n].get(s, 0)))
    agree = [s for s, e in sorted(cmp["streams"].items()) if e["agree"]]
    differ = [s for s, e in sorted(cmp["streams"].items()) if not e["agree"]]
    ratios = [("wheel", "ours")] if "wheel" in names else []
    ratios.append(("ours", "theirs"))
    w = max(len(r[0]) for r in rows) + 2
    head = f"{'metric':<{w}} " + " ".join(f"{n:>12}" for n in names) + " " + " ".join(f"{a + '/' + b:>11}" for a, b in ratios)
    rule = f"{'-' * w} " + " ".join("-" * 12 for _ in names) + " " + " ".join("-" * 11 for _ in ratios)
    print(head)
    print(rule)
    for name, values, with_ratio in rows:
        cells = " ".join(f"{num(values[n]):>12}" for n in names)
        rs = " ".join(f"{(ratio(values[a], values[b]) if with_ratio else ''):>11}" for a, b in ratios)
        print(f"{name:<{w}} {cells} {rs}")
    print(rule)
    for s, e in sorted(cmp["streams"].items()):
        mark = "y" if e["agree"] else "n"
        fields = e["records_with_field_differences"]
        extra = f" (same keys; {fields} records differ in some field)" if e["agree"] and fields else ""
        print(f"{'  key sets agree (ours, theirs): ' + s:<{w}} {mark:>12}{extra}")
    print(f"records per stream agree: {'y' if not differ else 'n'} ({len(agree)} of {len(agree) + len(differ)} streams)")
    if "wheel" in names:
        with open(os.path.join(d, "compare-wheel.json"), encoding="utf-8") as f:
            wheel = json.load(f)["streams"]
        same = all(e["agree"] and e["ours"] == e["theirs"] and not e["records_with_field_differences"] for e in wheel.values())
        print(f"the wheel's records equal ours, field for field: {'y' if same else 'n'}")
    print("ours = host-test (Rust host), wheel = the Python wheel's console script, theirs = Airbyte's connector")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("catalog")
    c.add_argument("--discover", required=True)
    c.add_argument("--streams", required=True)
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_catalog)
    c = sub.add_parser("compare")
    c.add_argument("--catalog", required=True)
    c.add_argument("--ours", required=True)
    c.add_argument("--theirs", required=True)
    c.add_argument("--labels", default="ours,theirs", help="what the text calls the two sides")
    c.add_argument("--out")
    c.set_defaults(func=cmd_compare)
    c = sub.add_parser("table")
    c.add_argument("--dir", required=True)
    c.set_defaults(func=cmd_table)
    c = sub.add_parser("brief")
    c.add_argument("--dir", required=True)
    c.set_defaults(func=cmd_brief)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
