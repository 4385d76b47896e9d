"""The `aiops` command line: the operator, its analysis workers, runbooks, the event stream, history (and its
exports), the knowledge index (search), notifications, model versions on trial (models compare), GPU telemetry and the
kill switch (suspend, resume).

Development commands (generators, the local control plane, the demo, evaluations) are `aiops-dev`.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import socket
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


def dump_stacks_on_sigusr1() -> None:
    """`kill -USR1` writes every thread's stack to stderr: what a long-running process that looks hung waits on."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def cmd_run(args: argparse.Namespace) -> int:
    from aiops.operator import run

    dump_stacks_on_sigusr1()
    run(namespaces=args.namespace, verbose=args.verbose, liveness_url=args.liveness)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from aiops.worker import run

    dump_stacks_on_sigusr1()
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


def cmd_ask(args: argparse.Namespace) -> int:
    from aiops.cli.ask import ask

    return ask(
        args.question,
        args.namespace,
        cluster=args.cluster,
        target=args.target,
        lookback=args.lookback,
        timeout=args.timeout,
        output=args.output,
    )


def cmd_review(args: argparse.Namespace) -> int:
    from aiops.cli.review import review

    return review(
        args.namespace,
        file=args.filename,
        configmap=args.configmap,
        patch=args.patch,
        target=args.target,
        cluster=args.cluster,
        fail_on=args.fail_on,
        timeout=args.timeout,
        output=args.output,
    )


def cmd_suspend(args: argparse.Namespace) -> int:
    from aiops.cli import suspend

    if args.command == "suspend":
        return suspend.suspend(args.cluster, args.reason, args.operator_namespace)
    return suspend.resume(args.cluster, args.operator_namespace)


def cmd_watch(args: argparse.Namespace) -> int:
    from aiops.cli import watch

    if not args.redis_url:
        print("aiops watch: set AIOPS_REDIS_URL or pass --redis-url", file=sys.stderr)
        return 2
    return watch.watch(
        args.redis_url,
        args.type,
        count=args.count,
        raw=args.json,
        since="0-0" if args.from_start else args.since,
        state=Path(args.state) if args.state else None,
        resume=not args.no_resume,
        group=args.group,
        consumer=args.consumer,
    )


def _history_dsn(args: argparse.Namespace) -> str | None:
    from aiops.stores import history

    dsn, reason = history.resolve_dsn(args.dsn, os.environ.get("AIOPS_POSTGRES_DSN_FILE"))
    if dsn is None:
        print(f"aiops history: {reason} (or pass --dsn)", file=sys.stderr)
    return dsn


def cmd_history(args: argparse.Namespace) -> int:
    import asyncpg

    from aiops.cli import database
    from aiops.stores.history import migrate, store

    dsn = _history_dsn(args)
    if dsn is None:
        return 2

    async def work(conn: asyncpg.Connection) -> int:
        if args.history_command == "migrate":
            applied = await migrate.migrate(conn)
            for m in applied:
                print(f"applied {m.version:04d}_{m.name}")
            print(f"schema version {await migrate.current_version(conn)}")
            return 0
        if await migrate.current_version(conn) is None:
            print("no history schema yet: run `aiops history migrate`", file=sys.stderr)
            return 1
        for past in await store.similar(conn, " ".join(args.text), args.limit):
            print(f"{past.rank:.3f} {past.summary()}")
        return 0

    return database.run("history", dsn, work)


def cmd_search(args: argparse.Namespace) -> int:
    from aiops.cli import search

    dsn = _history_dsn(args)
    if dsn is None:
        return 2
    return search.run(dsn, " ".join(args.text), set(args.kind) if args.kind else None, args.limit, args.mode)


def cmd_export(args: argparse.Namespace) -> int:
    from aiops.cli import database, export
    from aiops.stores.history import examples, migrate

    dsn = _history_dsn(args)
    if dsn is None:
        return 2

    try:
        found = migrate.read_migrated(dsn, "feedback_examples", examples.examples)
    except database.ERRORS as exc:
        print(f"aiops export: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if found is None:
        print(
            "aiops export: the history schema has no feedback examples yet: run `aiops history migrate`",
            file=sys.stderr,
        )
        return 1
    if args.output in (None, "-"):
        count = export.write_jsonl(found, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            count = export.write_jsonl(found, out)
    print(f"{count} labelled example(s) written to {args.output or 'stdout'}", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from aiops.cli import models

    dsn = _history_dsn(args)
    if dsn is None:
        return 2
    return models.compare(dsn, args.days)


def cmd_notifications(args: argparse.Namespace) -> int:
    import asyncpg

    from aiops.cli import database
    from aiops.notify import outbox

    dsn = _history_dsn(args)
    if dsn is None:
        return 2

    async def work(conn: asyncpg.Connection) -> int:
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

    return database.run("notifications", dsn, work)


def cmd_mcp(args: argparse.Namespace) -> int:
    import anyio

    from aiops import settings as config
    from aiops.clusters.access import ClusterAccessError, cluster_access
    from aiops.mcpserver import server
    from aiops.mcpserver.auth import MIN_TOKEN_CHARS
    from aiops.tools import ToolContext

    token = config.token_from_env(os.environ, "AIOPS_MCP_TOKEN")
    host, _, port = args.listen.rpartition(":")
    if args.transport == "http":
        if len(token) < MIN_TOKEN_CHARS:
            print(
                f"aiops mcp: HTTP needs a bearer token of at least {MIN_TOKEN_CHARS} characters: set AIOPS_MCP_TOKEN "
                "or AIOPS_MCP_TOKEN_FILE (clients send it as Authorization: Bearer ...), or use --transport stdio",
                file=sys.stderr,
            )
            return 2
        if not host or not port.isdigit():
            print(f"aiops mcp: --listen {args.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8765", file=sys.stderr)
            return 2
    settings = config.from_env()
    try:
        access = cluster_access(args.cluster, settings)
    except ClusterAccessError as exc:
        print(f"aiops mcp: {exc}", file=sys.stderr)
        return 1
    namespaces = frozenset(args.namespace) if args.namespace else None
    ctx = ToolContext.from_access(access, settings.postgres_dsn, settings.postgres_dsn_file, namespaces)
    # The caller's Kubernetes token from the environment only on stdio, where this process is the caller's own.
    caller_token = config.token_from_env(os.environ, "AIOPS_MCP_KUBE_TOKEN") if args.transport == "stdio" else ""
    mcp = server.build(ctx, caller_token or None)
    if args.transport == "stdio":
        anyio.run(server.serve_stdio, mcp)
    else:
        print(f"aiops mcp: serving streamable HTTP on http://{args.listen}/mcp", file=sys.stderr, flush=True)
        server.serve_http(mcp, token, host.strip("[]"), int(port))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    import json

    import yaml

    from aiops import settings as config
    from aiops.bundles import analyze, reader
    from aiops.bundles.archive import BundleError

    if bool(args.model_url) != bool(args.model):
        print(
            "aiops analyze: --model-url and --model go together (the endpoint and the model it serves)", file=sys.stderr
        )
        return 2
    try:
        target = analyze.parse_target(args.target) if args.target else None
    except ValueError as exc:
        print(f"aiops analyze: {exc}", file=sys.stderr)
        return 2
    # A model only when asked for; its other settings (API key, timeout, ...) are AIOPS_LLM_* as for the operator.
    llm_env = {k: v for k, v in os.environ.items() if k.startswith("AIOPS_LLM_")}
    llm = {**llm_env, "AIOPS_LLM_BASE_URL": args.model_url, "AIOPS_LLM_MODEL": args.model} if args.model_url else {}
    settings = config.from_env(llm)
    try:
        snap = reader.load(args.bundle)
    except BundleError as exc:
        print(f"aiops analyze: {exc}", file=sys.stderr)
        return 1
    result = analyze.analyze(snap, settings, target, args.max_targets)
    if args.output == "report":
        sys.stdout.write(analyze.report(result))
    elif args.output == "json":
        print(json.dumps(analyze.to_dict(result), indent=2))
    else:
        sys.stdout.write(yaml.safe_dump(analyze.to_dict(result), sort_keys=False, allow_unicode=True))
    return 0


def _event_types():
    from aiops.core.events import EventType

    return list(EventType)


def _stream_id(text: str) -> str:
    from aiops.stores.eventconsumer import STREAM_ID

    if not STREAM_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a stream id such as 1733472000000-0 (ms-sequence)")
    return text


def parser() -> argparse.ArgumentParser:
    from aiops.knowledge.index import KINDS, MODES

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

    ask = sub.add_parser("ask", help="ask the operator a question (a query AnalysisRun) and print the cited answer")
    ask.add_argument("question", help='e.g. "which pods restarted in shop today?"')
    ask.add_argument("-n", "--namespace", default="default", help="the run's namespace: what the tools may read")
    ask.add_argument("--cluster", help="a ManagedCluster to ask about (default: the operator's own cluster)")
    ask.add_argument("--target", help="Kind/name the question is about, e.g. Deployment/checkout")
    ask.add_argument("--lookback", type=int, help="minutes of history the question is about")
    ask.add_argument("--timeout", type=float, default=600, help="seconds to wait for the answer (default 600)")
    ask.add_argument("-o", "--output", choices=("text", "json"), default="text")
    ask.set_defaults(fn=cmd_ask)

    rev = sub.add_parser(
        "review",
        help="review a proposed Deployment/StatefulSet change (a changeReview run); exit 1 when it is too risky",
    )
    rev.add_argument("-f", "--filename", help="the proposed manifest (YAML or JSON, - for stdin), e.g. helm template")
    rev.add_argument("--configmap", help="NAME[/KEY]: the proposed manifest from a ConfigMap in the namespace")
    rev.add_argument("--patch", help="a JSON merge patch (file, - for stdin) to the live --target instead")
    rev.add_argument("--target", help="Kind/name: the live object the patch applies to, or one object of a manifest")
    rev.add_argument("-n", "--namespace", default="default", help="the run's namespace (and the objects' default)")
    rev.add_argument("--cluster", help="a ManagedCluster the change is for (default: the operator's own cluster)")
    rev.add_argument(
        "--fail-on", choices=("low", "medium", "high", "never"), default="high",
        help="exit 1 at this risk or above, unless the object carries aiops.dev/change-review-override (default high)",
    )  # fmt: skip
    rev.add_argument("--timeout", type=float, default=120, help="seconds to wait for the review (default 120)")
    rev.add_argument("-o", "--output", choices=("text", "json"), default="text")
    rev.set_defaults(fn=cmd_review)

    for name, text in (
        ("suspend", "the kill switch: no SOP action runs and no model call starts, fleet-wide or for one cluster"),
        ("resume", "lift the kill switch: runbooks go on where they stopped"),
    ):
        switch = sub.add_parser(name, help=text)
        switch.add_argument("--cluster", help="only this ManagedCluster (its spec.suspend); default: the whole fleet")
        if name == "suspend":
            switch.add_argument("--reason", help="why, shown on every Incident it holds")
        switch.add_argument(
            "--operator-namespace",
            default=os.environ.get("AIOPS_NAMESPACE") or "aiops-system",
            help="where the fleet-wide switch (ConfigMap aiops-suspend) lives: the operator's namespace "
            "(default: $AIOPS_NAMESPACE, else aiops-system)",
        )
        switch.set_defaults(fn=cmd_suspend)

    watch = sub.add_parser(
        "watch",
        help="print the operator's event stream (Redis stream aiops:events), one line an event; "
        "a restarted watch prints what it missed",
    )
    watch.add_argument(
        "--type", action="append", choices=[t.value for t in _event_types()], help="only this type (repeatable)"
    )
    watch.add_argument("--redis-url", default=os.environ.get("AIOPS_REDIS_URL"), help="default: $AIOPS_REDIS_URL")
    watch.add_argument("--count", type=int, help="exit after this many events")
    watch.add_argument("--json", action="store_true", help="print each event as its JSON payload")
    start = watch.add_mutually_exclusive_group()
    start.add_argument("--from-start", action="store_true", help="from the oldest event the stream keeps")
    start.add_argument("--since", type=_stream_id, metavar="ID", help="the events after this stream id")
    watch.add_argument(
        "--state",
        metavar="FILE",
        help="where the id of the last event printed is kept, to resume from "
        "(default: $AIOPS_CACHE_DIR/watch-<redis host-port-db>.id)",
    )
    watch.add_argument("--no-resume", action="store_true", help="start from now (or --since); keep no state file")
    watch.add_argument("--group", metavar="NAME", help="read as a member of this consumer group, acknowledging")
    watch.add_argument(
        "--consumer", metavar="NAME", default=socket.gethostname(), help="the member's name (default: the host name)"
    )
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

    srch = sub.add_parser("search", help="the knowledge index: SOP steps, past incidents, postmortems, documents")
    srch.add_argument("text", nargs="+", metavar="TEXT")
    srch.add_argument("--kind", action="append", choices=sorted(KINDS), help="only this kind (repeatable)")
    srch.add_argument("-k", "--limit", type=int, default=5, help="hits to print, default 5")
    srch.add_argument("--mode", choices=MODES, default="hybrid", help="hybrid (default), fulltext or vector alone")
    srch.add_argument("--dsn", default=os.environ.get("AIOPS_POSTGRES_DSN"), help="default: $AIOPS_POSTGRES_DSN")
    srch.set_defaults(fn=cmd_search)

    exp = sub.add_parser("export", help="data sets from the history, e.g. feedback as JSONL for fine-tuning")
    exp_sub = exp.add_subparsers(dest="export_command", required=True)
    fb = exp_sub.add_parser("feedback", help="corrected diagnoses as chat-format JSONL (docs/knowledge.md)")
    fb.add_argument("-o", "--output", metavar="FILE", help="default: stdout")
    fb.add_argument("--dsn", default=os.environ.get("AIOPS_POSTGRES_DSN"), help="default: $AIOPS_POSTGRES_DSN")
    fb.set_defaults(fn=cmd_export)

    models = sub.add_parser("models", help="model versions on trial (catalogue rollouts): their measures")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    cmp = models_sub.add_parser(
        "compare",
        help="per version: agreement with the primary, accuracy from feedback, suite score, valid JSON, latency "
        "p50/p95/p99, tokens and cost per diagnosis (docs/model-rollouts.md)",
    )
    cmp.add_argument("--days", type=float, default=30, help="trials of the last DAYS days (default 30)")
    cmp.add_argument("--dsn", default=os.environ.get("AIOPS_POSTGRES_DSN"), help="default: $AIOPS_POSTGRES_DSN")
    cmp.set_defaults(fn=cmd_models)

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

    mcp = sub.add_parser(
        "mcp",
        help="an MCP server: the read-only evidence tools, Incidents and runs; start runs, approve SOP steps",
        description="Over HTTP clients send Authorization: Bearer $AIOPS_MCP_TOKEN; changes (start_run, "
        "approve_step) act for the caller's Kubernetes token (header X-Kubernetes-Token, or AIOPS_MCP_KUBE_TOKEN "
        "for stdio), checked by TokenReview and SubjectAccessReview.",
    )
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    mcp.add_argument("--listen", default="127.0.0.1:8765", help="HOST:PORT for --transport http")
    mcp.add_argument("--cluster", help="a ManagedCluster to read (default: the kubeconfig's cluster)")
    mcp.add_argument("-n", "--namespace", action="append", help="read only this namespace (repeatable)")
    mcp.set_defaults(fn=cmd_mcp)

    analyze = sub.add_parser(
        "analyze",
        help="diagnose a support bundle offline: a kubectl cluster-info dump or a must-gather (folder or .tar.gz)",
        description="Without --target, diagnoses what the bundle shows broken (failing pods and workloads, "
        "NotReady nodes, Warning events), worst first, at most --max-targets. With --model-url and --model the "
        "diagnosis goes through the model as an Incident's does (AIOPS_LLM_API_KEY and the other AIOPS_LLM_* "
        "settings apply); without them the analyzers' diagnosis is shown.",
    )
    analyze.add_argument("bundle", metavar="BUNDLE", help="a folder, a .tar.gz, or a cluster-info dump's stdout")
    analyze.add_argument("--target", help="Kind/namespace/name (or Node/name): diagnose this one only")
    analyze.add_argument("--output", "-o", choices=("report", "yaml", "json"), default="report")
    analyze.add_argument("--max-targets", type=int, default=10, help="diagnoses at most, without --target")
    analyze.add_argument("--model-url", help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    analyze.add_argument("--model", help="the model that endpoint serves")
    analyze.set_defaults(fn=cmd_analyze)

    return p


def main(argv: list[str] | None = None) -> int:
    from kubernetes.config import ConfigException

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigException as exc:  # neither in a pod nor given a kubeconfig
        print(f"aiops: no Kubernetes configuration: {exc}; set KUBECONFIG (or run in a pod)", file=sys.stderr)
        return 2
