"""Retrieval quality of the knowledge index: full-text vs vector vs hybrid on labelled incident descriptions.

    aiops-dev eval knowledge [--data DIR] [--limit N]

Two query sets, as data under knowledge/ (or --data DIR):

- sops.yaml: an incident description -> the runbook of sop-library/ that applies. The corpus is every step
  of every runbook (aiops.knowledge.sops.documents, as the SOP controller indexes them); a hit names a step, and
  the runbooks are ranked by their best step.
- incidents.yaml: an incident description -> the most similar past incident. The corpus is the failure scenarios
  (aiops_dev.eval.cases) as Incident documents (aiops.knowledge.incidents.document): the Incident's title, and
  the expected diagnosis (failure mode, resource, what happened) as its root cause.

A real PostgreSQL (aiops_dev.postgres) is started and migrated, the corpus indexed with the real LocalEmbedder,
and each query run through aiops.knowledge.index.search in the three modes. Printed: recall@1, recall@3 and MRR
per set and overall, the indexing time, and the search latency p50/p95 per mode. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import yaml

from aiops.knowledge import incidents, sops
from aiops.knowledge.embed import Embedder, LocalEmbedder
from aiops.knowledge.index import MODES, Document, search, upsert
from aiops.sops import sopfile
from aiops.stores.history import migrate
from aiops.stores.history.store import PastIncident
from aiops_dev.eval.cases import CASES, Case

DATA_DIR = Path(__file__).with_name("knowledge")
LIBRARY = Path(__file__).resolve().parents[3] / "sop-library"
NAMESPACE = "library"  # the namespace the runbooks are indexed under
SETS = {"sops": ("sop", "sop-step"), "incidents": ("incident", "incident")}  # file stem: (label field, kind)
DEPTH = 10  # distinct runbooks / incidents ranked per query; a label below this counts 0 in the MRR
STEP_HITS = 100  # steps fetched per runbook query: runbooks have up to 13 steps, so 10 distinct ones fit
TRAIN_DATE = datetime(2026, 1, 5, tzinfo=UTC)  # a fixed date in the incidents' summaries: reruns index the same


@dataclass(frozen=True)
class Query:
    set: str  # "sops" or "incidents"
    text: str
    expect: frozenset[str]  # runbook names, or scenario names: any of them is a right answer


def load_queries(data_dir: Path = DATA_DIR) -> list[Query]:
    """The labelled queries of every set; ValueError naming the file and entry for a malformed one."""
    queries = []
    for stem, (field, _) in SETS.items():
        path = data_dir / f"{stem}.yaml"
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(entries, list):
            raise ValueError(f"{path}: a list of {{query, {field}}} entries expected")
        for i, entry in enumerate(entries):
            label = entry.get(field) if isinstance(entry, dict) else None
            labels = [label] if isinstance(label, str) else label
            text = entry.get("query") if isinstance(entry, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}: entry {i}: `query` must be a non-empty string")
            if not labels or not all(isinstance(x, str) and x for x in labels):
                raise ValueError(f"{path}: entry {i}: `{field}` must be a name or a list of names")
            queries.append(Query(stem, text.strip(), frozenset(labels)))
    return queries


def runbooks(root: Path = LIBRARY) -> dict[str, dict]:
    """The SOP library: runbook name -> its SOP spec (as the SOP object carries it)."""
    found, issues = sopfile.check_files([root])
    errors = [i for i in issues if i.severity == sopfile.IssueSeverity.ERROR]
    if errors:
        raise ValueError(f"{root}: {len(errors)} runbook error(s), first: {errors[0]}")
    return {runbook.name: sopfile.manifest(runbook)["spec"] for _, runbook in found}


def past_incident(case: Case) -> Document:
    """A scenario as the index holds a diagnosed past incident; keyed by the scenario's name."""
    spec = case.incident["spec"]
    past = PastIncident(
        uid=case.name,
        key=f"history/{case.name}",
        title=spec["title"],
        severity=spec.get("severity"),
        created_at=TRAIN_DATE,
        rank=0.0,
        root_cause=f"{case.resource}: {case.failure_mode}. {case.description}",
        confidence=90,
        failure_modes=[case.failure_mode],
    )
    return incidents.document(past, spec.get("description") or "", version="eval")


def corpus(library: dict[str, dict], cases: tuple[Case, ...] = CASES) -> list[Document]:
    docs = [d for name, spec in sorted(library.items()) for d in sops.documents(NAMESPACE, name, spec)]
    return docs + [past_incident(c) for c in cases]


def labels_in(hits, query_set: str) -> list[str]:
    """The distinct runbooks (by their best step) or incidents of `hits`, in order."""
    names: list[str] = []
    for hit in hits:
        name = hit.meta["sop"].partition("/")[2] if query_set == "sops" else hit.key
        if name not in names:
            names.append(name)
    return names[:DEPTH]


def score(ranks: list[int | None]) -> dict[str, float]:
    """recall@1, recall@3 and MRR of 1-based ranks (None: not in the first DEPTH)."""
    n = len(ranks) or 1
    return {
        "r@1": sum(1 for r in ranks if r == 1) / n,
        "r@3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "mrr": sum(1 / r for r in ranks if r is not None) / n,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def evaluate(dsn: str, queries: list[Query], docs: list[Document], embedder: Embedder) -> dict:
    """Indexes `docs` into the migrated database at `dsn`, runs every query in every mode; the figures."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn)
        start = time.perf_counter()
        for i, doc in enumerate(docs, 1):
            await upsert(conn, doc, embedder)
            if i % 25 == 0 or i == len(docs):
                say(f"indexed {i}/{len(docs)} documents ({time.perf_counter() - start:.1f}s)")
        indexing = time.perf_counter() - start
        start = time.perf_counter()
        rewritten = sum([await upsert(conn, doc, embedder) for doc in docs])
        unchanged = time.perf_counter() - start
        ranks: dict[str, dict[str, list[int | None]]] = {mode: {s: [] for s in SETS} for mode in MODES}
        latency: dict[str, list[float]] = {mode: [] for mode in MODES}
        misses: list[tuple[str, Query, list[str]]] = []
        for i, query in enumerate(queries, 1):
            kind = SETS[query.set][1]
            for mode in MODES:
                start = time.perf_counter()
                hits = await search(conn, query.text, kinds={kind}, k=STEP_HITS, embedder=embedder, mode=mode)
                latency[mode].append(time.perf_counter() - start)
                names = labels_in(hits, query.set)
                rank = next((place for place, name in enumerate(names, 1) if name in query.expect), None)
                ranks[mode][query.set].append(rank)
                if mode == "hybrid" and (rank is None or rank > 3):
                    misses.append((mode, query, names[:3]))
            if i % 10 == 0 or i == len(queries):
                say(f"searched {i}/{len(queries)} queries")
    finally:
        await conn.close()
    sets = [s for s in SETS if ranks["hybrid"][s]]
    return {
        "scores": {
            mode: {s: score(ranks[mode][s]) for s in sets} | {"overall": score(sum(ranks[mode].values(), []))}
            for mode in MODES
        },
        "counts": {s: len(ranks["hybrid"][s]) for s in sets} | {"overall": len(queries)},
        "latency": {mode: (_percentile(v, 0.5), _percentile(v, 0.95)) for mode, v in latency.items()},
        "documents": len(docs),
        "steps": sum(1 for d in docs if d.kind == "sop-step"),
        "indexing_s": indexing,
        "unchanged_s": unchanged,
        "rewritten": rewritten,
        "misses": misses,
    }


def table(result: dict) -> str:
    header = f"{'set':<10} {'queries':>7}  " + "  ".join(f"{m:>20}" for m in MODES)
    sub = f"{'':<10} {'':>7}  " + "  ".join(f"{'r@1   r@3   MRR':>20}" for _ in MODES)
    rows = [header, sub, "-" * len(header)]
    for name, count in result["counts"].items():
        cells = []
        for mode in MODES:
            s = result["scores"][mode][name]
            cells.append(f"{s['r@1']:.2f}  {s['r@3']:.2f}  {s['mrr']:.2f}".rjust(20))
        rows.append(f"{name:<10} {count:>7}  " + "  ".join(cells))
    rows.append("")
    rows.append(
        f"indexing: {result['documents']} documents ({result['steps']} runbook steps) in {result['indexing_s']:.1f}s; "
        f"again unchanged in {result['unchanged_s']:.2f}s ({result['rewritten']} rewritten)"
    )
    rows.append(
        "search latency p50/p95: "
        + ", ".join(f"{m} {p50 * 1000:.0f}/{p95 * 1000:.0f} ms" for m, (p50, p95) in result["latency"].items())
    )
    if result["misses"]:
        rows.append("\nhybrid misses (label not in the top 3):")
        rows += [f"  [{q.set}] {q.text}\n      want {', '.join(sorted(q.expect))}; got {', '.join(got)}"
                 for _, q, got in result["misses"]]  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from aiops_dev.postgres import PostgresServer

    parser = argparse.ArgumentParser(prog="aiops-dev eval knowledge", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of sops.yaml, incidents.yaml")
    parser.add_argument("--limit", type=int, help="the first N queries of each set only")
    args = parser.parse_args(argv)
    try:
        queries = load_queries(args.data)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        parser.error(str(exc))
    if args.limit:
        queries = [q for s in SETS for q in [q for q in queries if q.set == s][: args.limit]]
    library = runbooks()
    docs = corpus(library)
    say(f"{len(queries)} queries; corpus: {len(library)} runbooks, {len(CASES)} past incidents")
    start = time.perf_counter()
    embedder = LocalEmbedder()
    say(f"embedding model loaded in {time.perf_counter() - start:.1f}s; starting PostgreSQL")
    server = PostgresServer().start()
    try:
        result = asyncio.run(evaluate(server.database(), queries, docs, embedder))
    finally:
        server.close()
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
