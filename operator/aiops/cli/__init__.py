"""The `aiops` command line: the operator, its analysis workers, runbooks, the event stream, history,
notifications and GPU telemetry.

Development commands (generators, the local control plane, the demo, evaluations) are `aiops-dev`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cmd_gpu(args: argparse.Namespace) -> int:
    import json
    import time

    from aiops.clusters import gputelemetry

    if args.gpu_command == "status":
        reading = gputelemetry.read()
        print(json.dumps(gputelemetry.summary(reading), indent=2))
        return 0
    from prometheus_client import CollectorRegistry, start_http_server

    xids = gputelemetry.XidWatcher()
    registry = CollectorRegistry()
    registry.register(gputelemetry.GPUCollector(xids))
    watching = xids.start()
    start_http_server(args.port, registry=registry)
    reading = gputelemetry.read(xids)
    state = (
        f"{len(reading.gpus)} GPU(s), Xid watch {'on' if watching else 'off'}" if reading.available else reading.reason
    )
    print(f"serving GPU metrics on :{args.port}/metrics ({state})", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


def cmd_run(args: argparse.Namespace) -> int:
    from aiops.operator import run

    run(namespaces=args.namespace, verbose=args.verbose, liveness=args.liveness)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from aiops.worker import run

    run(namespaces=args.namespace, verbose=args.verbose)
    return 0


def _print_issues(issues, file=None) -> int:
    """Prints them as path:line: severity: message; the number of errors."""
    for issue in issues:
        print(issue, file=file)
    return sum(issue.severity == "error" for issue in issues)


def cmd_sop_lint(args: argparse.Namespace) -> int:
    from aiops.sops import sopfile

    runbooks, issues = sopfile.check_files(args.paths)
    errors = _print_issues(issues)
    warnings = len(issues) - errors
    print(f"{len(runbooks)} runbook(s) valid, {errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors or not (runbooks or issues) or (args.strict and warnings) else 0


def cmd_sop_render(args: argparse.Namespace) -> int:
    from aiops.sops import sopfile

    try:
        text = Path(args.path).read_text(encoding="utf-8")
        if args.markdown:
            runbook = sopfile.from_manifest(text, args.path)
            sys.stdout.write(sopfile.render(runbook.name, runbook.spec))
            return 0
        runbook = sopfile.parse(text, args.path)
    except (OSError, ValueError) as err:  # SOPFileError is a ValueError
        print(err, file=sys.stderr)
        return 1
    sys.stdout.write(sopfile.manifest_yaml(runbook, args.namespace))
    return 0


def cmd_sop_import(args: argparse.Namespace) -> int:
    from aiops.sops import importer, sopfile

    runbooks, issues = sopfile.check_files(args.paths)
    errors = _print_issues(issues, file=sys.stderr)  # stdout is for what happened to each object
    if errors or not runbooks:
        print(f"{errors} error(s): nothing imported", file=sys.stderr)
        return 1
    failed = 0
    for line, ok in importer.apply(runbooks, args.namespace, dry_run=args.dry_run):
        failed += not ok
        print(line)
    return 1 if failed else 0


def cmd_watch(args: argparse.Namespace) -> int:
    from aiops.cli import watch

    if not args.redis_url:
        print("aiops watch: set AIOPS_REDIS_URL or pass --redis-url", file=sys.stderr)
        return 2
    return watch.watch(args.redis_url, args.type, count=args.count, raw=args.json)


def _history_dsn(args: argparse.Namespace) -> str | None:
    from aiops.stores import history

    dsn, reason = history.resolve_dsn(args.dsn, os.environ.get("AIOPS_POSTGRES_DSN_FILE"))
    if dsn is None:
        print(f"aiops history: {reason} (or pass --dsn)", file=sys.stderr)
    return dsn


def cmd_history(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from aiops.stores.history import migrate, store

    dsn = _history_dsn(args)
    if dsn is None:
        return 2

    async def main() -> int:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if args.history_command == "migrate":
                applied = await migrate.migrate(conn)
                for m in applied:
                    print(f"applied {m.version:04d}_{m.name}")
                print(f"schema version {await migrate.current_version(conn)}")
            else:
                if await migrate.current_version(conn) is None:
                    print("no history schema yet: run `aiops history migrate`", file=sys.stderr)
                    return 1
                for past in await store.similar(conn, " ".join(args.text), args.limit):
                    print(f"{past.rank:.3f} {past.summary()}")
            return 0
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"aiops history: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def cmd_notifications(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from aiops.notify import outbox

    dsn = _history_dsn(args)
    if dsn is None:
        return 2

    async def main() -> int:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if not await conn.fetchval("SELECT to_regclass('notification_outbox') IS NOT NULL"):
                print("no notifications outbox yet: run `aiops history migrate`", file=sys.stderr)
                return 1
            if args.retry is not None:
                row = await outbox.requeue(conn, args.retry)
                if row is None:
                    print(f"aiops notifications: no dead letter with id {args.retry}", file=sys.stderr)
                    return 1
                print(row.line())
                return 0
            states = ("pending", "sending") if args.pending else ("dead",)
            rows = await outbox.listing(conn, states, args.limit)
            for row in rows:
                print(row.line())
            print(f"{len(rows)} {'pending' if args.pending else 'dead letter(s)'}", file=sys.stderr)
            return 0
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"aiops notifications: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _event_types():
    from aiops.core.events import EventType

    return list(EventType)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiops", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig context")
    run.add_argument("-n", "--namespace", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument(
        "--liveness",
        default=os.environ.get("AIOPS_LIVENESS"),
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    run.set_defaults(fn=cmd_run)

    worker = sub.add_parser(
        "worker", help="execute the AnalysisRuns the operator accepts (AIOPS_RUN_EXECUTION=workers), claimed by Lease"
    )
    worker.add_argument("-n", "--namespace", action="append", help="claim only in this namespace (repeatable)")
    worker.add_argument("-v", "--verbose", action="store_true")
    worker.set_defaults(fn=cmd_worker)

    sop = sub.add_parser("sop", help="runbooks as markdown (sop-library/): lint, render, import as SOP objects")
    sop_sub = sop.add_subparsers(dest="sop_command", required=True)
    lint = sop_sub.add_parser("lint", help="check runbooks; prints path:line: severity: message")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="markdown files, or folders of them (README.md skipped)")
    lint.add_argument("--strict", action="store_true", help="fail on warnings too")
    lint.set_defaults(fn=cmd_sop_lint)
    render = sop_sub.add_parser("render", help="a runbook as an SOP YAML manifest on stdout")
    render.add_argument("path", metavar="PATH")
    render.add_argument("--markdown", action="store_true", help="the other way: an SOP YAML manifest as markdown")
    render.add_argument("-n", "--namespace", help="metadata.namespace of the manifest")
    render.set_defaults(fn=cmd_sop_render)
    imp = sop_sub.add_parser("import", help="create or update SOP objects; nothing is imported if any file has errors")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="markdown files, or folders of them (README.md skipped)")
    imp.add_argument("-n", "--namespace", help="target namespace (default: the kubeconfig context's)")
    imp.add_argument("--dry-run", action="store_true", help="check and list, without contacting the cluster")
    imp.set_defaults(fn=cmd_sop_import)

    watch = sub.add_parser("watch", help="print the operator's event stream (Redis pub/sub) live, one line an event")
    watch.add_argument(
        "--type", action="append", choices=[t.value for t in _event_types()], help="only this type (repeatable)"
    )
    watch.add_argument("--redis-url", default=os.environ.get("AIOPS_REDIS_URL"), help="default: $AIOPS_REDIS_URL")
    watch.add_argument("--count", type=int, help="exit after this many events")
    watch.add_argument("--json", action="store_true", help="print each event as its JSON payload")
    watch.set_defaults(fn=cmd_watch)

    hist = sub.add_parser("history", help="the PostgreSQL history: apply migrations, find similar past incidents")
    hist_sub = hist.add_subparsers(dest="history_command", required=True)
    for name, text in (("migrate", "apply pending schema migrations"), ("similar", "past incidents like TEXT")):
        h = hist_sub.add_parser(name, help=text)
        h.add_argument("--dsn", default=os.environ.get("AIOPS_POSTGRES_DSN"), help="default: $AIOPS_POSTGRES_DSN")
        if name == "similar":
            h.add_argument("text", nargs="+", metavar="TEXT")
            h.add_argument("--limit", type=int, default=5)
        h.set_defaults(fn=cmd_history)

    notes = sub.add_parser(
        "notifications", help="the notifications outbox: dead letters (default) or pending rows; requeue one"
    )
    which = notes.add_mutually_exclusive_group()
    which.add_argument("--dead", action="store_true", help="list the dead letters (the default)")
    which.add_argument("--pending", action="store_true", help="list the rows not yet sent")
    which.add_argument("--retry", type=int, metavar="ID", help="put dead letter ID back to pending, due now")
    notes.add_argument("--limit", type=int, default=1000)
    notes.add_argument("--dsn", default=os.environ.get("AIOPS_POSTGRES_DSN"), help="default: $AIOPS_POSTGRES_DSN")
    notes.set_defaults(fn=cmd_notifications)

    gpu = sub.add_parser("gpu", help="GPU telemetry through NVML: print it, or serve it as Prometheus metrics")
    gpu_sub = gpu.add_subparsers(dest="gpu_command", required=True)
    gpu_sub.add_parser("status", help="the GPUs this machine's NVML sees, as JSON (or why there are none)")
    agent = gpu_sub.add_parser("agent", help="serve /metrics for a node agent or a vLLM pod's sidecar")
    agent.add_argument("--port", type=int, default=9400)
    gpu.set_defaults(fn=cmd_gpu)

    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.fn(args)
