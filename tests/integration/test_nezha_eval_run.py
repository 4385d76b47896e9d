"""`aiops-dev eval nezha` end to end on the first faults of ../shared/eval: real Prometheus, real control plane,
the real pipeline, BARO beside it."""

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "nezha-online-boutique"


@pytest.mark.cluster  # starts its own control plane and Prometheus
@pytest.mark.evaldata("nezha-online-boutique")
def test_nezha_eval_ranks_cpu_contention_from_prometheus_evidence():
    out = subprocess.run(
        [sys.executable, "-m", "aiops_dev.eval.nezha", str(DATA), "--faults", "6"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("2022-")]
    assert len(rows) == 6
    # The two CPU-contention faults among the first six (frontend at 03:53:54, cartservice at 04:36:03)
    # show in the pods' own CPU series: the operator must rank the injected service first.
    contention = [r for r in rows if r[2] == "cpu_contention"]
    assert [(r[3], r[4]) for r in contention] == [("frontend", "1"), ("cartservice", "1")]
    for method in ("aiops-operator, LLM off", "BARO, all 14 pod metrics", "BARO, the operator's 6 signals"):
        assert any(line.startswith(method) for line in out.stdout.splitlines()), method
