"""The console script against host-test, the reference host, on the same simulated world: the
same protocol lines (records and states byte for byte, `emitted_at` aside), the same exit codes,
the token nowhere in what it prints."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import CLI, HOST_TEST, STREAMS, TOKEN, WORLD, Simulator, config, configured_catalog, final_states, lines, masked, run, write


def both(args: list[str], graph_url: str | None = None, **kw) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The same command through the wheel's console script and through host-test."""
    g = ["--graph-url", graph_url] if graph_url else []
    return run([str(CLI), *g, *args], **kw), run([str(HOST_TEST), *g, *args], **kw)


def records(stdout: str) -> list[str]:
    return sorted(line for line in masked(stdout) if line.startswith('{"type":"RECORD"'))


def test_spec_is_host_tests_byte_for_byte():
    ours, ref = both(["spec"])
    assert (ours.returncode, ref.returncode) == (0, 0), ours.stderr
    assert ours.stdout == ref.stdout
    assert json.loads(ours.stdout)["spec"]["connectionSpecification"]["required"]


def test_check_and_discover_equal_host_tests(simulator, workdir: Path):
    conf = write(workdir / "config.json", config())
    for command in ("check", "discover"):
        ours, ref = both([command, "--config", conf], simulator.url)
        assert (ours.returncode, ref.returncode) == (0, 0), ours.stderr
        assert ours.stdout == ref.stdout, command
    assert '"status":"SUCCEEDED"' in ours.stdout.replace(" ", "") or lines(ours.stdout)[0]["type"] == "CATALOG"


def test_a_read_and_the_read_after_it_give_host_tests_records_and_states(simulator, workdir: Path):
    conf = write(workdir / "config.json", config())
    discovered = lines(run([str(CLI), "--graph-url", simulator.url, "discover", "--config", conf]).stdout)[0]
    cat = write(workdir / "catalog.json", configured_catalog(discovered["catalog"], STREAMS))
    ours, ref = both(["read", "--config", conf, "--catalog", cat], simulator.url)
    assert (ours.returncode, ref.returncode) == (0, 0), ours.stderr
    got = records(ours.stdout)
    assert got == records(ref.stdout)
    streams = {json.loads(r)["record"]["stream"] for r in got}
    assert streams == set(STREAMS), f"every stream has records: {streams}"
    states = final_states(lines(ours.stdout))
    assert states == final_states(lines(ref.stdout))
    # Every incremental stream has a state (ad_account and ad_creatives are full refresh).
    assert set(states) == set(STREAMS) - {"ad_account", "ad_creatives"}
    # The closing table, as host-test prints it.
    assert "stream" in ours.stderr and "ads_insights" in ours.stderr and "complete" in ours.stderr
    assert TOKEN not in ours.stdout + ours.stderr

    # The next read starts from those states, in each host.
    state = write(workdir / "state.json", list(states.values()))
    ours2, ref2 = both(["read", "--config", conf, "--catalog", cat, "--state", state], simulator.url)
    assert (ours2.returncode, ref2.returncode) == (0, 0), ours2.stderr
    assert records(ours2.stdout) == records(ref2.stdout)
    assert final_states(lines(ours2.stdout)) == final_states(lines(ref2.stdout))
    assert len(records(ours2.stdout)) < len(got), "an incremental read from the state reads less"


def test_output_file_and_graph_url_from_the_environment(simulator, workdir: Path):
    conf = write(workdir / "config.json", config())
    discovered = lines(run([str(CLI), "--graph-url", simulator.url, "discover", "--config", conf]).stdout)[0]
    cat = write(workdir / "catalog-ads.json", configured_catalog(discovered["catalog"], ["ads"]))
    out = workdir / "ads.jsonl"
    env = {**os.environ, "GRAPH_URL": simulator.url}
    r = run([str(CLI), "read", "--config", conf, "--catalog", cat, "--output", str(out)], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert any(m["type"] == "RECORD" for m in lines(out.read_text()))


def test_a_refused_token_fails_as_host_test_does_and_is_never_printed(simulator, workdir: Path):
    secret = "EAAB-not-a-valid-token-0123456789"
    conf = write(workdir / "bad-config.json", config(token=secret))
    ours, ref = both(["check", "--config", conf], simulator.url)
    assert ours.returncode == ref.returncode
    assert ours.stdout == ref.stdout
    assert '"FAILED"' in ours.stdout
    good = write(workdir / "good-config.json", config())
    discovered = lines(run([str(HOST_TEST), "--graph-url", simulator.url, "discover", "--config", good]).stdout)[0]
    cat = write(workdir / "catalog-one.json", configured_catalog(discovered["catalog"], ["campaigns"]))
    ours, ref = both(["read", "--config", conf, "--catalog", cat], simulator.url)
    assert (ours.returncode, ref.returncode) == (1, 1), ours.stderr
    last = lines(ours.stdout)[-1]
    assert last["type"] == "TRACE" and last["trace"]["error"]["failure_type"] == "config_error"
    assert secret not in ours.stdout + ours.stderr


def test_the_hosts_own_failures_exit_2_with_an_error_trace(workdir: Path):
    r = run([str(CLI), "check", "--config", str(workdir / "no-such-config.json")])
    assert r.returncode == 2
    trace = lines(r.stdout)[-1]["trace"]
    assert trace["error"]["failure_type"] == "system_error"
    assert "no-such-config.json" in trace["error"]["message"]
    assert "no-such-config.json" in r.stderr


def test_a_closed_stdout_ends_the_command_quietly_with_141(simulator, workdir: Path):
    # Whatever reads stdout is gone before the first line is written (a pipe may hold more
    # than a whole catalog, so closing it after a first read would race the write).
    conf = write(workdir / "config.json", config())
    p = subprocess.Popen(
        [str(CLI), "--graph-url", simulator.url, "discover", "--config", conf],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 141, err.decode()
    assert err == b"", err.decode()


def test_a_hostile_world_reads_as_host_test_reads_it(workdir: Path):
    """A proxy gone wrong (`--preset hostile`): one account's campaigns redirect to another origin,
    and half the answers hold names that are not valid UTF-8 (those cross as bytes, not text).
    Both hosts follow no redirect, fail that account alone naming it, and read the rest, with
    the broken names as U+FFFD; the keys they emit are the same (which answers break depends on
    the order of requests, so the names may not be)."""
    sim = Simulator(workdir, ["--preset", "hostile", *WORLD])
    try:
        conf = write(workdir / "hostile-config.json", config())
        discovered = lines(run([str(HOST_TEST), "--graph-url", sim.url, "discover", "--config", conf]).stdout)[0]
        cat = write(workdir / "hostile-catalog.json", configured_catalog(discovered["catalog"], ["campaigns", "ads"]))
        ours, ref = both(["read", "--config", conf, "--catalog", cat], sim.url)
    finally:
        sim.stop()
    assert ours.returncode == ref.returncode == 1, ours.stderr
    keys = lambda out: sorted((m["record"]["stream"], m["record"]["data"]["id"]) for m in lines(out) if m["type"] == "RECORD")  # noqa: E731
    assert keys(ours.stdout) == keys(ref.stdout) and keys(ours.stdout)
    assert "\ufffd" in ours.stdout, "names that were not UTF-8 read as U+FFFD"
    errors = [m["trace"]["error"]["message"] for m in lines(ours.stdout) if m["type"] == "TRACE" and "error" in m["trace"]]
    assert any("redirect" in e.lower() for e in errors), errors
    assert sum(1 for m in lines(ours.stdout) if m["type"] == "RECORD" and m["record"]["stream"] == "campaigns") > 0


def test_the_compiled_component_is_cached_per_user_and_a_bad_cache_file_is_replaced(tmp_path: Path):
    env = {**os.environ, "SFM_CACHE_DIR": str(tmp_path)}
    first = run([str(CLI), "spec"], env=env)
    assert first.returncode == 0, first.stderr
    cached = list(tmp_path.glob("py-*.cwasm"))
    assert len(cached) == 1, "one file, keyed by the component's and wasmtime's hash"
    cached[0].write_bytes(b"not a compiled component")
    again = run([str(CLI), "spec"], env=env)
    assert again.returncode == 0 and again.stdout == first.stdout, again.stderr
    assert cached[0].read_bytes() != b"not a compiled component", "compiled again and cached"
