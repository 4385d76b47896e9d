"""How often the diagnosis ranks each failure scenario's known root cause first, with the LLM off and on.

    python -m aiops_dev.eval.scenario_suite [--llm-base-url URL --llm-model NAME [--llm-timeout-s S]] [--only NAME ...]
        [--catalogue FILE] [--record-dsn DSN]

Starts its own local control plane (etcd + kube-apiserver; binaries from KUBEBUILDER_ASSETS or the
cache, see aiops_dev.controlplane), installs the CRDs, and for each scenario of aiops_dev.eval.cases writes
the failing objects into a namespace of its own, files its Incident through the API and runs the
root-cause pipeline on it: the collectors read the cluster, the analyzers rank suspects. With
--llm-base-url the same Incident is diagnosed again through the model. Per scenario it prints the rank
of the expected suspect (failure mode and resource) among the diagnosis' suspects, the execution status,
the duration and the tokens, then top-1/top-3 accuracy. It reports figures and does not judge them: exit 0 once it ran.

With --catalogue the model catalogue's rollouts.rootCause candidate is tried as in the operator (shadow beside
each diagnosis, or canary), and without --llm-base-url the primary is the catalogue's default for rootCause runs.
--record-dsn writes every model trial of the run into that history database (model_trials, as the operator does),
plus, per version and scenario, the suite's verdict (role suite: the known cause ranked first), for
`aiops models compare` (docs/model-rollouts.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config

from aiops.api import INCIDENT, KINDS
from aiops.api.incident import AnalysisOptions, IncidentSpec
from aiops.core import kube
from aiops.diagnosis import pipeline, rollout
from aiops.inference import catalogue, pools
from aiops.inference.gateway import GatewayConfig
from aiops.settings import Settings
from aiops.stores.history import migrate, trials
from aiops.stores.history.sink import describe
from aiops_dev import crdgen
from aiops_dev.controlplane import ControlPlane, ControlPlaneError
from aiops_dev.eval.cases import CASES, Case
from aiops_dev.eval.workloads import Writer

CRD_TIMEOUT_S = 30


@dataclass(frozen=True)
class Outcome:
    """One diagnosis of one scenario."""

    ranked: tuple[str, ...]  # the suspects' failure modes, best first; empty when a model was asked and did not answer
    resources: tuple[str, ...]  # the resources those suspects name (Kind/name), in the same order
    rank: int | None  # 1-based rank of the expected suspect (failure mode and resource); None when absent
    status: str  # the diagnosis' executionStatus, or "ERROR" when the run raised
    duration_s: float
    tokens: int  # prompt + completion, 0 without a model
    error: str | None = None  # why the model's answer (or the whole run) is missing


def diagnose_scenario(case: Case, incident: dict, settings: Settings, record: rollout.Record | None = None) -> Outcome:
    """Runs the pipeline on the scenario's Incident as stored by the API server; the model is asked only
    when `settings` configures one. `record` takes the model trials (default: the history, off here)."""
    spec = IncidentSpec.model_validate(incident["spec"]).model_copy(
        update={"analysis": AnalysisOptions(llm=settings.llm is not None)}
    )
    detected = datetime.fromisoformat(incident["metadata"]["creationTimestamp"])
    result = pipeline.diagnose_incident(incident, spec, settings, detected, datetime.now(UTC), record=record)
    diagnosis = result.diagnosis
    # With a model asked, only its answer counts: a fallback repeats the analyzers' ranking, measured LLM off.
    fell_back = settings.llm is not None and diagnosis.model == pipeline.ANALYZERS_ONLY
    suspects = () if fell_back else diagnosis.suspects
    return Outcome(
        ranked=tuple(s.failure_mode for s in suspects),
        resources=tuple(s.resource for s in suspects),
        rank=next((i for i, s in enumerate(suspects, 1) if case.expects(s.failure_mode, s.resource)), None),
        status=str(diagnosis.execution_status),
        duration_s=result.duration_s,
        tokens=result.prompt_tokens + result.completion_tokens,
        error=result.llm_error,
    )


@contextlib.contextmanager
def local_cluster(kubeconfig: str | Path) -> Iterator[client.ApiClient]:
    """Points kube.api_client(), through which the pipeline reads the local cluster, at `kubeconfig` for the
    block, and yields a client of that cluster. The client library reads $KUBECONFIG once, when imported, so
    setting the variable now would go unseen: its default location is what load_kube_config() reads."""
    own = config.new_client_from_config(config_file=str(kubeconfig))
    saved = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
    kube.api_client.cache_clear()
    try:
        host = kube.api_client().configuration.host
        if host != own.configuration.host:  # in a pod, the in-cluster configuration wins over any kubeconfig
            raise RuntimeError(f"kube.api_client() talks to {host}, not to {own.configuration.host}")
        yield own
    finally:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved
        kube.api_client.cache_clear()
        own.close()


def install_crds(api: client.ApiClient) -> None:
    """Creates the operator's CRDs and waits until the API server serves them."""
    ext = client.ApiextensionsV1Api(api)
    names = [ext.create_custom_resource_definition(crdgen.crd(kind)).metadata.name for kind in KINDS]
    deadline = time.monotonic() + CRD_TIMEOUT_S
    for name in names:
        while not any(
            c.type == "Established" and c.status == "True"
            for c in ext.read_custom_resource_definition(name).status.conditions or []
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} not Established after {CRD_TIMEOUT_S}s")
            time.sleep(0.2)


@contextlib.contextmanager
def eval_cluster(name: str) -> Iterator[client.ApiClient]:
    """A local control plane of its own, in a temporary folder, with the CRDs installed: a client of it for the
    block, through which kube.api_client() reads it too (local_cluster). Raises ControlPlaneError when the
    plane does not start."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        plane = ControlPlane(workdir=Path(tmp) / "control-plane", name=name)
        say("starting etcd + kube-apiserver ...")
        kubeconfig = plane.start()
        try:
            with local_cluster(kubeconfig) as api:
                install_crds(api)
                yield api
        finally:
            plane.stop()


@dataclass(frozen=True)
class Row:
    case: Case
    off: Outcome
    on: Outcome | None
    uid: str | None = None  # the scenario's Incident


class Recorder:
    """The model trials of the run, as the pipeline hands them over (from its background threads too)."""

    def __init__(self) -> None:
        self.trials: list[trials.Trial] = []
        self._lock = threading.Lock()

    def __call__(self, trial: trials.Trial) -> None:
        with self._lock:
            self.trials.append(trial)

    def with_verdicts(self, rows: list[Row]) -> list[trials.Trial]:
        """The trials, and per scenario and version that was asked a suite trial: its known cause ranked first."""
        by_uid = {r.uid: r.case for r in rows if r.uid}
        verdicts = [
            replace(t, role=trials.SUITE, agrees=None, correct=t.status == trials.COMPLETED
                    and by_uid[t.incident_uid].expects(t.top_failure_mode or "", t.top_resource or ""))
            for t in self.trials if t.incident_uid in by_uid
        ]  # fmt: skip
        return self.trials + verdicts


def write_trials(dsn: str, found: list[trials.Trial]) -> None:
    """Writes the trials into the history database at `dsn`, migrated first."""

    async def write() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await migrate.migrate(conn)
            for t in found:
                await trials.record(conn, t)
        finally:
            await conn.close()

    asyncio.run(write())


def _failed(exc: Exception) -> Outcome:
    """A run that raised; for the API server's refusals its own one-line message says what was wrong."""
    text = str(exc)
    if isinstance(exc, ApiException):
        try:
            text = f"HTTP {exc.status}: {json.loads(exc.body)['message']}"
        except (TypeError, ValueError, KeyError):
            text = f"HTTP {exc.status} {exc.reason}"
    return Outcome((), (), None, "ERROR", 0.0, 0, f"{type(exc).__name__}: {text[:500]}")


def run_scenario(api: client.ApiClient, case: Case, on: Settings | None, record: rollout.Record | None = None) -> Row:
    """Writes the scenario into namespace scn-NAME, files its Incident and diagnoses it: LLM off, then with the
    model of `on` (its trials to `record`)."""
    namespace = f"scn-{case.name}"
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        case.write(Writer(api, namespace))
        incident, _ = kube.create(INCIDENT, case.incident_manifest(namespace))
        off = diagnose_scenario(case, incident, Settings(llm=None))
    except Exception as exc:  # noqa: BLE001  (a broken scenario is reported in its row; the others still run)
        failed = _failed(exc)
        return Row(case, failed, None if on is None else failed)
    if on is None:
        return Row(case, off, None)
    try:
        with_model = diagnose_scenario(case, incident, on, record)
    except Exception as exc:  # noqa: BLE001
        with_model = _failed(exc)
    return Row(case, off, with_model, incident["metadata"]["uid"])


def _cell(outcome: Outcome) -> str:
    rank = "-" if outcome.rank is None else str(outcome.rank)
    top = outcome.ranked[0] if outcome.ranked else "(none)"
    return f"{rank:>4} {top:<24} {outcome.status:<18} {outcome.duration_s:>6.2f}s"


def table(rows: list[Row]) -> str:
    with_llm = any(r.on for r in rows)
    header = f"{'scenario':<30} {'expected':<24} {'rank':>4} {'top suspect (LLM off)':<24} {'status':<18} {'time':>7}"
    if with_llm:
        header += f" | {'rank':>4} {'top suspect (LLM on)':<24} {'status':<18} {'time':>7} {'tokens':>7}"
    lines = [header, "-" * len(header)]
    for r in rows:
        line = f"{r.case.name:<30} {r.case.failure_mode:<24} {_cell(r.off)}"
        if r.on:
            line += f" | {_cell(r.on)} {r.on.tokens:>7}"
        lines.append(line)
    notes = [
        f"  {r.case.name} ({which}): {o.error}"
        for r in rows
        for which, o in (("LLM off", r.off), ("LLM on", r.on))
        if o and o.error
    ]
    return "\n".join(lines + (["", "errors and fallbacks:", *notes] if notes else []))


def summary(rows: list[Row]) -> str:
    lines = []
    for label, outcomes in (("LLM off", [r.off for r in rows]), ("LLM on", [r.on for r in rows if r.on])):
        if not outcomes:
            continue
        n = len(outcomes)
        top1 = sum(o.rank == 1 for o in outcomes)
        top3 = sum(o.rank is not None and o.rank <= 3 for o in outcomes)
        mean = sum(o.duration_s for o in outcomes) / n
        line = f"{label}: top-1 {top1}/{n} ({top1 / n:.0%}), top-3 {top3}/{n} ({top3 / n:.0%}), mean {mean:.2f}s"
        if label == "LLM on":
            answered = sum(o.status == "COMPLETED" for o in outcomes)
            line += f", {sum(o.tokens for o in outcomes) / n:,.0f} tokens per diagnosis, model answered {answered}/{n}"
        lines.append(line)
    return "\n".join(lines)


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-base-url", help="also diagnose through this OpenAI-compatible endpoint")
    parser.add_argument("--llm-model", help="served model name (required with --llm-base-url)")
    # A small model on CPU needs minutes for a 2,000-token prompt: the operator's 60 s default would time out.
    parser.add_argument("--llm-timeout-s", type=float, default=600.0, help="per request (default 600)")
    parser.add_argument("--llm-max-tokens", type=int, default=1024, help="completion limit (default 1024)")


def llm_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> GatewayConfig | None:
    if not args.llm_base_url:
        return None
    if not args.llm_model:
        parser.error("--llm-base-url needs --llm-model")
    return GatewayConfig(
        base_url=args.llm_base_url, model=args.llm_model, timeout_s=args.llm_timeout_s, max_tokens=args.llm_max_tokens
    )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiops_dev.eval.scenario_suite", description=__doc__.splitlines()[0]
    )
    add_llm_arguments(parser)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    parser.add_argument(
        "--catalogue", metavar="FILE", help="a model catalogue: its rollouts.rootCause candidate is tried as in the "
        "operator; without --llm-base-url its default for rootCause runs is the primary",
    )  # fmt: skip
    parser.add_argument(
        "--record-dsn", metavar="DSN", help="write the model trials and the suite's verdict per version into this "
        "history database (postgresql://...), for `aiops models compare`",
    )  # fmt: skip
    args = parser.parse_args(argv)
    llm = llm_config(parser, args)
    try:
        models = catalogue.load(args.catalogue) if args.catalogue else None
    except catalogue.CatalogueError as exc:
        parser.error(f"--catalogue: {exc}")
    if llm is None and models is not None and (chosen := catalogue.route({"type": "rootCause"}, models)):
        served = pools.gateway_config(chosen.model, models.get(chosen.model), Settings().namespace, None)
        llm = replace(served, timeout_s=args.llm_timeout_s, max_tokens=args.llm_max_tokens)
    if (args.catalogue or args.record_dsn) and llm is None:
        parser.error("--catalogue and --record-dsn need a model: --llm-base-url, or a default in the catalogue")
    known = [c.name for c in CASES]
    if unknown := sorted(set(args.only or ()) - set(known)):
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    cases = [c for c in CASES if not args.only or c.name in args.only]
    on = Settings(llm=llm, models=models) if llm else None
    recorder = Recorder() if args.record_dsn else None

    started = time.monotonic()
    try:
        with eval_cluster("aiops-scenarios") as api:
            rows = []
            for i, case in enumerate(cases, 1):
                say(f"[{i}/{len(cases)}] {case.name}")
                rows.append(run_scenario(api, case, on, recorder))
            if not rollout.wait(timeout=len(cases) * 4 * args.llm_timeout_s):
                say("model trials still running (shadows): not all are recorded")
    except ControlPlaneError as exc:
        say(f"cannot start the control plane: {exc}")
        return 1
    print(table(rows))
    print()
    print(summary(rows))
    if recorder is not None:
        found = recorder.with_verdicts(rows)
        try:
            write_trials(args.record_dsn, found)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            say(f"--record-dsn: cannot record: {type(exc).__name__}: {exc}")
            return 1
        versions = sorted({t.version for t in found})
        print(f"\nrecorded {len(found)} model trial(s) of {', '.join(versions)} into {describe(args.record_dsn)}")
    print(f"\n{len(rows)} scenarios in {time.monotonic() - started:.1f}s (control plane start-up included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
