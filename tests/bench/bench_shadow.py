"""Benchmark: a shadow candidate adds no latency to the primary diagnosis.

    python tests/bench/bench_shadow.py [--n 40] [--primary-delay 0.2] [--candidate-delay 3]

Starts its own local control plane with the checkout-oomkilled scenario and diagnoses its Incident --n times
through the root-cause pipeline (collectors, analyzers, redaction, the model gateway), alternating without and
with a shadow (catalogue rollouts.rootCause mode shadow) so both see the same machine at the same time. The primary
is a scripted OpenAI-compatible server answering after --primary-delay seconds, the candidate a deliberately slow
one answering after --candidate-delay. Prints p50/p95/max of the primary diagnosis (diagnose_incident's return)
with and without the shadow and their ratio, then waits for the shadows and prints how many were asked, answered
and dropped (the shadows' queue is bounded: aiops.diagnosis.rollout.SHADOW_QUEUE).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from kubernetes import client  # noqa: E402

from aiops.api import INCIDENT  # noqa: E402
from aiops.api.incident import IncidentSpec  # noqa: E402
from aiops.core import kube, metrics  # noqa: E402
from aiops.diagnosis import pipeline, rollout  # noqa: E402
from aiops.inference import catalogue  # noqa: E402
from aiops.inference.gateway import GatewayConfig  # noqa: E402
from aiops.settings import Settings  # noqa: E402
from aiops_dev.eval import cases  # noqa: E402
from aiops_dev.eval.scenario_suite import eval_cluster  # noqa: E402
from aiops_dev.eval.workloads import Writer  # noqa: E402
from support.diagnoses import reply_for  # noqa: E402
from support.scripted_openai import ScriptedOpenAI, answer, delayed  # noqa: E402


def quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], max(values)


def settings_for(primary: ScriptedOpenAI, candidate: ScriptedOpenAI, shadow: bool) -> Settings:
    models = {
        "small": {"external": {"baseURL": primary.url}, "servedModelName": primary.model},
        "big": {"external": {"baseURL": candidate.url}, "servedModelName": candidate.model},
    }
    rollouts = {"rootCause": {"candidate": {"model": "big"}, "mode": "shadow"}} if shadow else {}
    llm = GatewayConfig(base_url=primary.url, model=primary.model, timeout_s=60)
    return Settings(llm=llm, models=catalogue.parse({"models": models, "rollouts": rollouts}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=40, help="diagnoses, half of them with a shadow (default 40)")
    p.add_argument("--primary-delay", type=float, default=0.2, help="the primary's answer time, s (default 0.2)")
    p.add_argument("--candidate-delay", type=float, default=3.0, help="the shadow's answer time, s (default 3)")
    args = p.parse_args()
    namespace = "bench-shadow"
    with eval_cluster("aiops-bench-shadow") as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        writer = Writer(api, namespace)
        cases.write("checkout-oomkilled", writer)
        incident, _ = kube.create(INCIDENT, cases.load("checkout-oomkilled").incident_manifest(namespace))
        spec = IncidentSpec.model_validate(incident["spec"])
        detected = datetime.fromisoformat(incident["metadata"]["creationTimestamp"])
        reply = answer(reply_for(writer), prompt_tokens=900, completion_tokens=100)
        times: dict[bool, list[float]] = {False: [], True: []}
        recorded: list = []
        with (
            ScriptedOpenAI(*[delayed(args.primary_delay, reply)] * args.n, model="qwen-0.5b") as primary,
            ScriptedOpenAI(*[delayed(args.candidate_delay, reply)] * args.n, model="qwen-1.5b") as candidate,
        ):
            configured = {shadow: settings_for(primary, candidate, shadow) for shadow in (False, True)}
            pipeline.diagnose_incident(incident, spec, configured[False], detected, datetime.now(UTC))  # warm-up
            primary.push(delayed(args.primary_delay, reply))
            for i in range(args.n):
                shadow = i % 2 == 1
                started = time.perf_counter()
                result = pipeline.diagnose_incident(
                    incident, spec, configured[shadow], detected, datetime.now(UTC), record=recorded.append
                )
                times[shadow].append(time.perf_counter() - started)
                assert result.diagnosis.execution_status == "COMPLETED", result.llm_error
            waited = time.perf_counter()
            done = rollout.wait(timeout=args.n * args.candidate_delay + 60)
            waited = time.perf_counter() - waited
    shadows = [t for t in recorded if t.role == "shadow"]
    dropped = metrics.MODEL_TRIALS_LOST.labels("shadow_dropped")._value.get()
    print(f"primary diagnosis (model answers in {args.primary_delay:g}s), {args.n // 2} each, interleaved:")
    for shadow in (False, True):
        p50, p95, top = quantiles(times[shadow])
        label = f"with a shadow ({args.candidate_delay:g}s)" if shadow else "without a shadow"
        print(f"  {label:<24} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  max {top * 1000:7.1f} ms")
    (a50, a95, _), (b50, b95, _) = quantiles(times[False]), quantiles(times[True])
    print(f"  ratio with/without: p50 {b50 / a50:.3f}, p95 {b95 / a95:.3f}")
    answered = sum(t.status == "completed" for t in shadows)
    print(
        f"shadows: {len(shadows)} asked, {answered} answered, {dropped:g} dropped; the last finished "
        f"{waited:.1f}s after the last primary diagnosis{'' if done else ' (still running at the timeout)'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
