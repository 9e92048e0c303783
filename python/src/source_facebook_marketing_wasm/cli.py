"""`source-facebook-marketing`: the connector as an Airbyte source's entrypoint, as host-test
runs it. Protocol messages go to stdout, one JSON object per line and nothing else; logs and
progress go to stderr. Exit codes: 0, 1 when the connector reports a failure (an error TRACE),
2 when the host itself fails, 141 (quietly) when whatever reads stdout closes it early.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from typing import IO, Any, Callable, Optional

from . import HostError, allowlist
from ._guest import Guest, Limits
from .messages import Log, Message, Trace, error_trace
from .progress import ProgressView

BROKEN_PIPE_EXIT = 141
# Secrets shorter than this are not redacted: it would mangle ordinary text.
MIN_SECRET = 4


def config_secrets(config: str) -> list[str]:
    """The access token and client secret of a config, wherever Airbyte's forms put them."""
    try:
        v = json.loads(config)
    except ValueError:
        return []
    found = []
    for path in (("credentials", "access_token"), ("access_token",), ("credentials", "client_secret"), ("client_secret",)):
        cur: Any = v
        for key in path:
            cur = cur.get(key) if isinstance(cur, dict) else None
        if isinstance(cur, str) and len(cur) >= MIN_SECRET:
            found.append(cur)
    return found


def redactor(secrets: list[str]) -> Callable[[str], str]:
    def redact(text: str) -> str:
        for s in secrets:
            if s in text:
                text = text.replace(s, "**********")
        return text

    return redact


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="source-facebook-marketing",
        description="Run the Meta Marketing API source connector (a WebAssembly component) like an Airbyte source.",
        epilog="Examples:\n"
        "  source-facebook-marketing spec\n"
        "  source-facebook-marketing check --config secrets/config.json\n"
        "  source-facebook-marketing discover --config secrets/config.json > catalog.json\n"
        "  source-facebook-marketing read --config config.json --catalog catalog.json --state state.json > messages.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Global options go before or after the command, as host-test's do.
    common = argparse.ArgumentParser(add_help=False)
    for target, default in ((p, None), (common, argparse.SUPPRESS)):
        target.add_argument(
            "--graph-url",
            metavar="URL",
            default=default,
            help="where Graph API calls go instead of https://graph.facebook.com (a proxy or `host-test simulate`; "
            "default: $GRAPH_URL, as the wasi:cli command and function read it)",
        )
        target.add_argument(
            "--memory-mb",
            type=int,
            default=512 if default is None else default,
            metavar="MIB",
            help="memory cap of the guest (default 512)",
        )
    sub = p.add_subparsers(dest="command", required=True, metavar="{spec,check,discover,read}")
    sub.add_parser("spec", parents=[common], help="print the connector specification (one SPEC message)")
    for name, text in (
        ("check", "validate a config and try the API with it (one CONNECTION_STATUS message)"),
        ("discover", "list the streams a config offers (one CATALOG message)"),
    ):
        s = sub.add_parser(name, parents=[common], help=text)
        s.add_argument("--config", required=True, help="the connector config (JSON file)")
    r = sub.add_parser("read", parents=[common], help="run a sync; progress and a closing summary go to stderr")
    r.add_argument("--config", required=True, help="the connector config (JSON file)")
    r.add_argument("--catalog", required=True, help="the configured catalog (JSON file)")
    r.add_argument("--state", help="the state the last sync left (JSON file)")
    r.add_argument("--output", help="write messages to this file instead of stdout")
    return p


def read_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise HostError(f"cannot read the {what} file {path}: {getattr(e, 'strerror', None) or e}") from e


def now_ms() -> int:
    return int(time.time() * 1000)


def one_malloc_arena() -> None:
    """One glibc malloc arena for the process, as host-test has. Each fetch thread would
    otherwise get an arena of its own, and the answers it read, handed to the main thread and
    freed there, would leave that arena's memory resident: peak RSS 240 MiB instead of 158 on
    a read of 48 000 messages. Only the console script does this: it owns its process."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        pass


# glibc's mallopt parameter for the number of arenas.
M_ARENA_MAX = -8


def main(argv: Optional[list[str]] = None) -> int:
    one_malloc_arena()
    args = parser().parse_args(argv)
    if args.graph_url is None:
        # PyAirbyte and other launchers pass no flags of their own: the environment carries it.
        args.graph_url = os.environ.get("GRAPH_URL") or None
    try:
        return run(args)
    except BrokenPipeError:
        # Whatever read stdout went away: stop quietly, as a tool killed by SIGPIPE does (and
        # keep Python from complaining when it flushes stdout on exit).
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return BROKEN_PIPE_EXIT


def run(args: argparse.Namespace) -> int:
    secrets: list[str] = []
    out: IO[str] = sys.stdout
    try:
        config = read_file(args.config, "config") if args.command != "spec" else None
        secrets = config_secrets(config) if config else []
        redact = redactor(secrets)
        catalog = read_file(args.catalog, "catalog") if args.command == "read" else None
        state = read_file(args.state, "state") if args.command == "read" and args.state else None
        if args.command == "read" and args.output:
            try:
                out = open(args.output, "w", encoding="utf-8", buffering=1 << 16)
            except OSError as e:
                raise HostError(f"cannot create {args.output}: {e.strerror or e}") from e
        guest = Guest(allowlist(config, args.graph_url), graph_url=args.graph_url, limits=Limits(args.memory_mb))
    except HostError as e:
        return host_failure(out, redactor(secrets), str(e))
    failed = False
    view = ProgressView() if args.command == "read" else None

    def emit(batch: list[Message]) -> None:
        nonlocal failed
        lines = []
        for m in batch:
            if isinstance(m, Trace) and m.is_error:
                failed = True
            elif isinstance(m, Log):
                if view is not None:
                    view.clear()
                print(redact(m.message), file=sys.stderr)
            lines.append(redact(m.line()))
        lines.append("")
        out.write("\n".join(lines))

    try:
        with guest:
            if args.command == "spec":
                emit(guest.spec())
            elif args.command == "check":
                emit(guest.check(config or ""))
            elif args.command == "discover":
                emit(guest.discover(config or ""))
            else:
                assert view is not None
                try:
                    for batch in guest.read(config or "", catalog or "", state):
                        emit(batch)
                        if view.due():
                            view.update(guest.progress())
                finally:
                    view.finish(guest.final_progress)
            out.flush()
    except HostError as e:
        return host_failure(out, redact, f"the connector stopped abnormally: {e}")
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug of this host is still a host failure, exit 2
        return host_failure(out, redact, f"the host failed: {e!r}")
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


def host_failure(out: IO[str], redact: Callable[[str], str], message: str) -> int:
    """The host's own failure: an error TRACE on stdout, the words on stderr, exit 2."""
    message = redact(message)
    try:
        out.write(error_trace("system_error", message, message, now_ms()).line() + "\n")
        out.flush()
    except (OSError, ValueError):
        pass
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
