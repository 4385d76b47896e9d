"""How close the SOP drafts of `sopAnalysis` runs come to the runbooks they were written from.

    aiops-dev eval sopanalysis --llm-base-url URL --llm-model NAME [--only NAME ...] [--data DIR] [--out FILE]

The input is sopprose/<name>.txt (or --data DIR): each runbook of sop-library/ rewritten by hand as an engineer
writes a wiki page or a pinned chat note, with the same queries, commands, actions, approvals, verification and
contacts, and none of the runbook format. Each file is drafted by aiops.sops.analysis.analyse with the run's model
settings (analysis.gateway_config: at least 2048 completion tokens), as a sopAnalysis AnalysisRun drafts
spec.inputs.text, without a cluster. Transport retries are off, so every request is a reply of the model and
"repairs" is exact: the replies rejected and sent back (a server that fails a request ends that draft as
unreachable, which the table shows).

Per runbook: validated (the draft converted into an SOP spec) or the first problem met, repairs, the steps of the
draft and of the original, and three closeness measures in [0, 1] against sop-library/<name>.md:

- types: 1 - the edit distance between the step-type sequences (check, decision, action, escalate, in order)
  divided by the longer one's length.
- actions: the share of the original's action steps matched one to one by draft action steps with the same
  catalogue action (rollbackDeployment, cordonNode, ...); n/a when the original has none.
- queries: the share of the original's PromQL queries and kubectl commands matched one to one by a draft query or
  command (either field) that is the same text at similarity >= 0.9 with whitespace removed (difflib's ratio):
  the prose gives them verbatim, so this is whether the draft kept them.

closeness is the mean of the measures that apply. Totals: drafts validated, each measure's mean over the validated
drafts, closeness over every runbook (a draft that did not validate counts 0), seconds and tokens per draft.
Progress on stderr per runbook; the table and totals on stdout (Ctrl-C stops drafting and still reports what was
drafted); --out appends each draft or its problems as one JSON line. It reports figures and does not judge them:
exit 0 once it ran.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from aiops.api.sop import SOPSpec, StepType
from aiops.inference.gateway import GatewayConfig
from aiops.sops import analysis, sopfile
from aiops_dev.eval.scenario_suite import add_llm_arguments, llm_config, say

DATA_DIR = Path(__file__).with_name("sopprose")
LIBRARY = Path(__file__).resolve().parents[3] / "sop-library"
SAME_QUERY = 0.9  # difflib ratio at or above which two queries count as the same


# --- closeness ----------------------------------------------------------------------------------


def _edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two sequences (insert, delete, substitute: 1 each)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def type_similarity(draft: SOPSpec, original: SOPSpec) -> float:
    types = [[str(s.type) for s in spec.steps] for spec in (draft, original)]
    return 1 - _edit_distance(*types) / max(map(len, types))


def _matched(originals: list[str], drafts: list[str], same: Callable[[str, str], bool]) -> int:
    """Originals paired one to one with a draft item, greedily in order."""
    free = list(drafts)
    found = 0
    for o in originals:
        if (hit := next((d for d in free if same(o, d)), None)) is not None:
            free.remove(hit)
            found += 1
    return found


def actions_found(draft: SOPSpec, original: SOPSpec) -> float | None:
    def actions(spec: SOPSpec) -> list[str]:
        return [str(s.action.type) for s in spec.steps if s.type == StepType.ACTION and s.action]

    wanted = actions(original)
    if not wanted:
        return None
    return sum((Counter(wanted) & Counter(actions(draft))).values()) / len(wanted)


def _compact(query: str) -> str:
    return re.sub(r"\s+", "", query)


def same_query(a: str, b: str) -> bool:
    a, b = _compact(a), _compact(b)
    return a == b or difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= SAME_QUERY


def queries_found(draft: SOPSpec, original: SOPSpec) -> float | None:
    def queries(spec: SOPSpec) -> list[str]:
        return [q for s in spec.steps for q in (s.promql, s.command) if q]

    wanted = queries(original)
    if not wanted:
        return None
    return _matched(wanted, queries(draft), same_query) / len(wanted)


@dataclass(frozen=True)
class Closeness:
    types: float
    actions: float | None
    queries: float | None

    @property
    def overall(self) -> float:
        return statistics.fmean(m for m in (self.types, self.actions, self.queries) if m is not None)


def closeness(draft: SOPSpec, original: SOPSpec) -> Closeness:
    return Closeness(type_similarity(draft, original), actions_found(draft, original), queries_found(draft, original))


# --- the evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    original: SOPSpec
    draft: analysis.SOPAnalysis
    close: Closeness | None  # None: no validated draft

    @property
    def validated(self) -> bool:
        return self.close is not None

    @property
    def repairs(self) -> int:
        return max(self.draft.requests - 1, 0)  # transport retries are off: every request after the first is one

    @property
    def tokens(self) -> int:
        return self.draft.prompt_tokens + self.draft.completion_tokens

    @property
    def problem(self) -> str | None:
        """The first problem met: a rejected reply that a repair may have fixed, or what ended the draft."""
        return self.draft.errors[0] if self.draft.errors else self.draft.error


def load(data_dir: Path, library: Path, only: list[str] | None = None) -> list[tuple[str, str, SOPSpec]]:
    """(name, prose, original spec) per prose file, by name; ValueError naming what is missing or unknown."""
    found, issues = sopfile.check_files([library])
    if errors := [i for i in issues if i.severity == sopfile.IssueSeverity.ERROR]:
        raise ValueError(f"{library}: {len(errors)} runbook error(s), first: {errors[0]}")
    runbooks = {rb.name: rb.spec for _, rb in found}
    files = {p.stem: p for p in sorted(data_dir.glob("*.txt"))}
    if not files:
        raise ValueError(f"{data_dir}: no *.txt prose files")
    if orphans := sorted(set(files) - set(runbooks)):
        raise ValueError(f"{data_dir}: no runbook in {library} for {', '.join(f'{o}.txt' for o in orphans)}")
    if unknown := sorted(set(only or ()) - set(files)):
        raise ValueError(f"unknown runbook(s) {', '.join(unknown)}; known: {', '.join(files)}")
    return [
        (name, path.read_text(encoding="utf-8"), runbooks[name])
        for name, path in files.items()
        if not only or name in only
    ]


def draft(config: GatewayConfig, name: str, prose: str, original: SOPSpec) -> Result:
    """One prose runbook drafted as a sopAnalysis run drafts spec.inputs.text (aiops.runs.sopanalysis.execute)."""
    run_config = replace(analysis.gateway_config(config, None), max_transport_retries=0)
    a = analysis.analyse(prose, run_config, name)
    validated = a.outcome == "completed" and a.spec is not None
    return Result(name, original, a, closeness(a.spec, original) if validated else None)


def _measure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _line(r: Result) -> str:
    c, d = r.close, r.draft
    steps = f"{len(d.spec.steps) if d.spec else 0}/{len(r.original.steps)}"
    measures = [_measure(c.types), _measure(c.actions), _measure(c.queries), f"{c.overall:.2f}"] if c else ["-"] * 4
    valid = "yes" if r.validated else "no" if d.outcome == "invalid" else d.outcome
    return (
        f"{r.name:<28} {valid:<11} {r.repairs:>7} {steps:>6} {measures[0]:>5} {measures[1]:>7} {measures[2]:>7} "
        f"{measures[3]:>5} {r.tokens:>7} {d.duration_s:>7.1f}  {(r.problem or '')[:100]}"
    )


def table(results: list[Result]) -> str:
    header = (
        f"{'runbook':<28} {'validated':<11} {'repairs':>7} {'steps':>6} {'types':>5} {'actions':>7} {'queries':>7} "
        f"{'close':>5} {'tokens':>7} {'seconds':>7}  first problem"
    )
    return "\n".join([header, "-" * len(header), *map(_line, results)])


def _mean(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.fmean(present):.2f}" if present else "n/a"


def totals(results: list[Result]) -> str:
    n = len(results)
    valid = [r for r in results if r.validated]
    close = [r.close for r in valid]
    seconds = [r.draft.duration_s for r in results]
    outcomes = Counter(r.draft.outcome for r in results)
    return "\n".join(
        [
            f"drafts validated: {len(valid)}/{n} ({len(valid) / n:.0%}); invalid {outcomes['invalid']}, "
            f"unreachable {outcomes['unreachable']}; repairs used {sum(r.repairs for r in results)}, "
            f"by validated drafts {sum(r.repairs for r in valid)}",
            f"closeness of the validated drafts: types {_mean([c.types for c in close])}, actions "
            f"{_mean([c.actions for c in close])}, queries {_mean([c.queries for c in close])}, overall "
            f"{_mean([c.overall for c in close])}",
            f"closeness over all {n} runbooks (no draft = 0): "
            f"{statistics.fmean(r.close.overall if r.close else 0.0 for r in results):.2f}",
            f"seconds per draft: mean {statistics.fmean(seconds):.1f}, p50 {statistics.median(seconds):.1f}, "
            f"max {max(seconds):.1f}",
            f"tokens per draft: prompt {statistics.fmean(r.draft.prompt_tokens for r in results):,.0f}, completion "
            f"{statistics.fmean(r.draft.completion_tokens for r in results):,.0f} (mean, repairs included)",
        ]
    )


def _progress(r: Result, done: int, total: int, out: Path | None) -> None:
    """One line on stderr; with --out, the draft (or its problems) appended as one JSON line."""
    d = r.draft
    if r.validated:
        what = f"validated, {r.repairs} repair(s), {len(d.spec.steps)}/{len(r.original.steps)} steps, " + (
            f"closeness {r.close.overall:.2f}"
        )
    else:
        what = f"{d.outcome} after {d.requests} request(s): {(r.problem or '')[:200]}"
    say(f"[{done}/{total}] {r.name}: {what} ({d.duration_s:.0f}s, {r.tokens} tokens)")
    if out is None:
        return
    record = {
        "runbook": r.name,
        "outcome": d.outcome,
        "requests": d.requests,
        "errors": d.errors,
        "error": d.error,
        "closeness": asdict(r.close) if r.close else None,
        "draft": d.spec.wire() if d.spec else None,
    }
    with out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops-dev eval sopanalysis", description=__doc__.splitlines()[0])
    add_llm_arguments(parser)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="draft only these runbooks (file stems)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help=f"the prose files (default {DATA_DIR})")
    parser.add_argument("--library", type=Path, default=LIBRARY, help=f"the runbooks (default {LIBRARY})")
    parser.add_argument("--out", type=Path, help="append each draft or its problems here (JSON lines)")
    args = parser.parse_args(argv)
    config = llm_config(parser, args)
    if config is None:
        parser.error("give --llm-base-url and --llm-model: drafting an SOP from prose needs a model")
    try:
        cases = load(args.data, args.library, args.only)
    except ValueError as exc:
        parser.error(str(exc))

    started = time.monotonic()
    results: list[Result] = []
    try:
        for name, prose, original in cases:
            results.append(draft(config, name, prose, original))
            _progress(results[-1], len(results), len(cases), args.out)
    except KeyboardInterrupt:  # hours on CPU: Ctrl-C still reports what was drafted
        say(f"interrupted: reporting the {len(results)} of {len(cases)} runbooks drafted")
    if not results:
        say("nothing drafted")
        return 0
    print(table(results))
    print()
    print(totals(results))
    print(f"\n{len(results)} runbooks on {config.model} in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
