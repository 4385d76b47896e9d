"""`aiops-dev eval nezha` end to end on the first faults of ../shared/eval: real Prometheus, real control plane,
the real pipeline with recorded traces and logs, BARO beside it."""

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "eval"
METHODS = (
    "operator, metrics only",
    "operator, all evidence",
    "BARO, all pod metrics",
    "BARO, the operator's 6 signals",
)


@pytest.mark.cluster  # starts its own control plane and Prometheus
@pytest.mark.evaldata("nezha-online-boutique")
@pytest.mark.evaldata("nezha-train-ticket")
@pytest.mark.timeout(600)
def test_nezha_eval_ranks_both_systems_with_and_without_traces():
    out = subprocess.run(
        [sys.executable, "-m", "aiops_dev.eval.nezha", str(DATA), "--faults", "6"],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    # inject time (2 fields), fault type, service, then the faulty service's rank per method
    rows = [line.split() for line in lines if line[:4] in ("2022", "2023") and line[4] == "-"]
    assert len(rows) == 12, out.stdout[-3000:]
    # The two CPU-contention faults among Online Boutique's first six (frontend at 03:53:54, cartservice at
    # 04:36:03) show in the pods' own CPU series: first on metrics alone.
    contention = [r for r in rows if r[2] == "cpu_contention"]
    assert [(r[3], r[4]) for r in contention] == [("frontend", "1"), ("cartservice", "1")]
    # With traces and logs, all 12 rank in the top 3 (metrics alone: the two above). frontend's contention at
    # 03:53:54 is third: it is the recorded day's first fault, with too few spans before it to weigh the trace
    # evidences against, and its callees' own time moved too (closing notes of issue 12).
    top3 = [r for r in rows if r[5] in ("1", "2", "3")]
    assert len(top3) == 12, rows
    for system in ("online-boutique", "train-ticket"):
        assert any(line.startswith(f"## {system}: 6 faults") for line in lines), system
    for method in METHODS:
        assert sum(line.startswith(f"{method} ") and line.split()[-5] == "all" for line in lines) == 2, method
    assert sum("operator, all evidence: diagnosis p50" in line for line in lines) == 2
