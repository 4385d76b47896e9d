"""How well the `query` agent answers questions about the failure scenarios, with evidence it cites.

Per question: the expected facts found and cited, schema-valid tool calls, steps, tokens and time.

    aiops-dev eval questions [--llm-base-url URL --llm-model NAME | --local-model NAME]
                             [--only SCENARIO ...] [--questions SCENARIO/ID ...] [--limit N]
                             [--mode json|native]

Starts its own local control plane with the CRDs (as `aiops-dev eval scenarios` does), writes each scenario
of aiops_dev.eval.cases that has questions (questions/<scenario>.yaml) into a namespace of its own, and
asks each question through aiops.inference.agent in-process, with the read-only tools limited to that
namespace and the budgets and context of a `query` run there (aiops.runs.query). --local-model serves a
real llama.cpp model on loopback for the run. Scoring (aiops_dev.eval.question_set) is deterministic: a
question is correct when every expected fact is in the answer and in the output of a call it cites.
Progress on stderr per question; a table and the totals on stdout (Ctrl-C stops asking and still reports
what was asked); --out appends every exchange as JSON lines. It reports figures and does not judge them:
exit 0 once it ran.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kubernetes import client

from aiops.api.analysisrun import AnalysisRunSpec
from aiops.inference import agent
from aiops.inference.gateway import GatewayConfig
from aiops.runs import query
from aiops.tools import ToolContext
from aiops_dev.controlplane import ControlPlaneError, cache_root, free_port
from aiops_dev.eval.cases import CASES
from aiops_dev.eval.question_set import Question, Score, load_all, schema_valid, score
from aiops_dev.eval.scenario_suite import add_llm_arguments, eval_cluster, llm_config, say
from aiops_dev.eval.workloads import Writer
from aiops_dev.localmodel import MODELS, ModelError, start_server

SLOW_S = 300  # a question over this long is counted apart: a person asking would have given up


@dataclass(frozen=True)
class Result:
    question: Question
    outcome: agent.Outcome
    score: Score

    @property
    def valid_calls(self) -> int:
        return sum(schema_valid(c) for c in self.outcome.calls)

    @property
    def tokens(self) -> int:
        return self.outcome.prompt_tokens + self.outcome.completion_tokens


def ask(config: GatewayConfig, api: client.ApiClient, namespace: str, question: Question, mode: agent.Mode) -> Result:
    """One question, answered as a `query` run in `namespace` would answer it (aiops.runs.query.execute)."""
    spec = AnalysisRunSpec.model_validate({"type": "query", "inputs": {"question": question.question}})
    tools_ctx = ToolContext(api=api, namespaces=frozenset({namespace}))
    outcome = query.ask(config, spec, namespace, False, tools_ctx, agent.Budget(), mode)
    text = outcome.answer.answer if outcome.status == "answered" and outcome.answer else None
    return Result(question, outcome, score(question, text, (c.output for c in outcome.cited())))


def _line(r: Result) -> str:
    o, s = r.outcome, r.score
    return (
        f"{r.question.scenario:<30} {r.question.id:<24} {'yes' if s.correct else 'no':<7} "
        f"{s.found}/{s.cited}/{s.facts:<5} {o.status:<11} {len(o.calls):>5} {r.valid_calls:>5} "
        f"{o.steps:>5} {r.tokens:>7} {o.seconds:>7.1f}"
    )


def table(results: list[Result]) -> str:
    header = (
        f"{'scenario':<30} {'question':<24} {'correct':<7} {'f/c/of':<7} {'status':<11} {'calls':>5} "
        f"{'valid':>5} {'steps':>5} {'tokens':>7} {'seconds':>7}"
    )
    return "\n".join([header, "-" * len(header), *map(_line, results)])


def _spread(label: str, values: list[float], unit: str = "") -> str:
    return (
        f"{label}: mean {statistics.fmean(values):,.1f}{unit}, p50 {statistics.median(values):,.1f}{unit}, "
        f"max {max(values):,.1f}{unit}"
    )


def totals(results: list[Result]) -> str:
    n = len(results)
    correct = sum(r.score.correct for r in results)
    answered = sum(r.outcome.status == "answered" for r in results)
    refused = sum(r.outcome.status == "refused" for r in results)
    calls = sum(len(r.outcome.calls) for r in results)
    valid = sum(r.valid_calls for r in results)
    facts = sum(r.score.facts for r in results)
    endings = ", ".join(
        f"{e} {sum(r.outcome.status == e for r in results)}" for e in ("budget", "invalid", "unreachable")
    )
    return "\n".join(
        [
            f"correct (every fact said and cited): {correct}/{n} ({correct / n:.0%})",
            f"facts said: {sum(r.score.found for r in results)}/{facts}, said and cited: "
            f"{sum(r.score.cited for r in results)}/{facts}",
            f"answered {answered}/{n}, refused {refused}/{n}, {endings}",
            f"schema-valid tool calls: {valid}/{calls}" + (f" ({valid / calls:.0%})" if calls else ""),
            _spread("steps per question", [r.outcome.steps for r in results]),
            _spread("tokens per question", [r.tokens for r in results]),
            _spread("seconds per question", [r.outcome.seconds for r in results], "s"),
            f"questions over {SLOW_S // 60} minutes: {sum(r.outcome.seconds > SLOW_S for r in results)}/{n}",
        ]
    )


def _progress(r: Result, done: int, total: int, out: Path | None) -> None:
    """One line on stderr; with --out, the whole exchange appended as one JSON line (what the model said and
    called, to read why an answer missed)."""
    o, s = r.outcome, r.score
    say(
        f"[{done}/{total}] {r.question.key}: {'correct' if s.correct else 'wrong'} ({o.status}, facts "
        f"{s.found} said {s.cited} cited of {s.facts}, {len(o.calls)} calls, {o.seconds:.0f}s)"
        + (f" {o.error[:200]}" if o.error else "")
    )
    if out is None:
        return
    record = {
        "question": r.question.key,
        "status": o.status,
        "correct": s.correct,
        "answer": o.answer.model_dump() if o.answer else None,
        "calls": [{**asdict(c), "output": c.output[:2000]} for c in o.calls],
        "problems": o.problems,
        "error": o.error,
    }
    with out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")


def _model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[GatewayConfig, subprocess.Popen | None]:
    """The endpoint's config, and the local model server this run started (None when it was given a URL).
    The server's log stays in the cache, to be read when it failed."""
    if args.local_model is None:
        config = llm_config(parser, args)
        if config is None:
            parser.error("give --llm-base-url and --llm-model, or --local-model")
        return config, None
    if args.llm_base_url:
        parser.error("--local-model serves its own endpoint: leave out --llm-base-url")
    port = free_port()
    log = cache_root() / "eval-questions-model.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"serving {args.local_model} on 127.0.0.1:{port} (log: {log})")
    server = start_server(args.local_model, port, log)
    config = GatewayConfig(
        base_url=f"http://127.0.0.1:{port}/v1",
        model=args.local_model,
        timeout_s=args.llm_timeout_s,
        max_tokens=args.llm_max_tokens,
    )
    return config, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops-dev eval questions", description=__doc__.splitlines()[0])
    add_llm_arguments(parser)
    parser.add_argument("--local-model", choices=sorted(MODELS), help="serve this local llama.cpp model for the run")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", help="ask only these scenarios' questions")
    parser.add_argument("--limit", type=int, metavar="N", help="ask at most N questions per scenario")
    parser.add_argument("--questions", nargs="+", metavar="SCENARIO/ID", help="ask only these questions")
    parser.add_argument("--mode", choices=["json", "native"], default="json", help="tool calling (default json)")
    parser.add_argument("--out", type=Path, help="append each question's answer and tool calls here (JSON lines)")
    args = parser.parse_args(argv)
    questions = load_all()
    known = {c.name: c for c in CASES}
    if unknown := sorted(set(args.only or ()) - set(known)):
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if unknown := sorted(set(args.questions or ()) - {q.key for q in questions}):
        parser.error(f"unknown question(s) {', '.join(unknown)}: give them as scenario/id (the table's first columns)")
    if args.questions:
        questions = [q for q in questions if q.key in args.questions]
    by_scenario: dict[str, list[Question]] = {}
    for q in questions:
        if not args.only or q.scenario in args.only:
            by_scenario.setdefault(q.scenario, [])
            if args.limit is None or len(by_scenario[q.scenario]) < args.limit:
                by_scenario[q.scenario].append(q)
    total = sum(map(len, by_scenario.values()))

    started = time.monotonic()
    results: list[Result] = []
    try:
        config, server = _model(parser, args)
    except ModelError as exc:
        say(f"cannot start the model: {exc}")
        return 1
    try:
        with eval_cluster("aiops-questions") as api:
            for scenario, asked in by_scenario.items():
                namespace = f"scn-{scenario}"
                client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
                known[scenario].write(Writer(api, namespace))
                for q in asked:
                    results.append(ask(config, api, namespace, q, args.mode))
                    _progress(results[-1], len(results), total, args.out)
    except ControlPlaneError as exc:
        say(f"cannot start the control plane: {exc}")
        return 1
    except KeyboardInterrupt:  # a long run on CPU: Ctrl-C still reports what was asked so far
        say(f"interrupted: reporting the {len(results)} of {total} questions asked")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    if not results:
        say("no questions asked")
        return 0
    print(table(results))
    print()
    print(totals(results))
    print(f"\n{len(results)} questions on {config.model} ({args.mode} mode) in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
