"""An SOP's steps in the knowledge index, kept by the SOP controller on a real control plane and PostgreSQL: indexed
when applied (found by `aiops search`), steps that leave the runbook and a deleted runbook leave the index, and an
indexing failure says so in `Indexed` without failing validation, and kopf's retry heals it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aiops.knowledge.embed import MODEL_PACKAGE
from harness import OperatorProcess, aiops_cli, condition, wait_for
from support.servers import query

STEPS = [
    {"id": "confirm", "type": "check", "title": "Confirm the last termination was an OOM kill",
     "command": "kubectl get pods -o wide", "onSuccess": "trend"},
    {"id": "trend", "type": "check", "title": "Working set near the memory limit",
     "promql": "container_memory_working_set_bytes / container_spec_memory_limit_bytes > 0.8"},
]  # fmt: skip


def sop(steps: list[dict]) -> dict:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "SOP",
        "metadata": {"name": "oom"},
        "spec": {
            "title": "Container killed for exceeding its memory limit",
            "description": "The kernel's OOM killer ended a container whose cgroup reached its memory limit.",
            "match": {"symptoms": ["OOMKilled"]},
            "steps": steps,
        },
    }


def indexed_keys(dsn: str, namespace: str) -> set[str]:
    rows = query(dsn, "SELECT key FROM knowledge_documents WHERE kind = 'sop-step' AND starts_with(key, $1)",
                 f"{namespace}/")  # fmt: skip
    return {r["key"] for r in rows}


def search(dsn: str, *words: str) -> list[str]:
    out = aiops_cli("search", *words, "--kind", "sop-step", dsn=dsn)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def indexed(obj: dict) -> dict | None:
    return condition(obj, "Indexed")


@pytest.fixture
def operator_here(alone, kubeconfig, namespace, tmp_path):
    """Starts (again) an operator that watches the test's namespace only: on its start with history on it
    indexes every SOP it sees, and SOPs other tests left elsewhere would only slow this one down."""
    running: list[OperatorProcess] = []

    def start(env: dict[str, str]) -> OperatorProcess:
        for proc in running:
            proc.stop()
        proc = OperatorProcess(kubeconfig, tmp_path / f"operator-{len(running)}.log", env, ("run", "-n", namespace))
        proc.start()
        running.append(proc)
        wait_for(lambda: "history is on" in proc.log(since_start=True), 30, "the operator to say history is on")
        return proc

    yield start
    for proc in running:
        proc.stop()


def test_sop_steps_are_indexed_kept_in_line_and_removed(dsn, operator_here, kubectl, namespace):
    operator_here({"AIOPS_POSTGRES_DSN": dsn})
    kubectl.apply(sop(STEPS), namespace)
    obj = kubectl.wait("sop", "oom", namespace, until=lambda o: (indexed(o) or {}).get("status") == "True",
                       timeout=90, what="Indexed=True")  # fmt: skip
    assert indexed(obj)["message"] == "2 steps indexed for search" and condition(obj)["status"] == "True"
    assert indexed_keys(dsn, namespace) == {f"{namespace}/oom#confirm", f"{namespace}/oom#trend"}
    # Found by meaning: none of these words is the runbook's.
    lines = search(dsn, "pods", "ended", "for", "using", "more", "RAM", "than", "allowed")
    assert lines and lines[0].split()[2] in (f"{namespace}/oom#confirm", f"{namespace}/oom#trend"), lines

    # A step leaves the runbook: it leaves the index; the other keeps its row (its content did not change).
    before = query(dsn, "SELECT updated_at FROM knowledge_documents WHERE key = $1", f"{namespace}/oom#confirm")
    kubectl.apply(sop([{k: v for k, v in STEPS[0].items() if k != "onSuccess"}]), namespace)
    wait_for(lambda: indexed_keys(dsn, namespace) == {f"{namespace}/oom#confirm"}, 60, "the trend step to go")
    obj = kubectl.wait("sop", "oom", namespace, until=lambda o: "1 steps" in (indexed(o) or {}).get("message", ""))
    assert indexed(obj)["status"] == "True"
    after = query(dsn, "SELECT updated_at FROM knowledge_documents WHERE key = $1", f"{namespace}/oom#confirm")
    assert after[0]["updated_at"] == before[0]["updated_at"]  # same content hash: not rewritten

    kubectl("delete", "sop", "oom", "-n", namespace)
    wait_for(lambda: not indexed_keys(dsn, namespace), 30, "the deleted SOP's steps to leave the index")


def test_an_indexing_failure_keeps_the_sop_valid_and_heals_on_retry(dsn, operator_here, kubectl, namespace, tmp_path):
    model = tmp_path / "model.zip"  # not there yet: the embedder fails to load
    operator_here({"AIOPS_POSTGRES_DSN": dsn, "AIOPS_EMBEDDINGS_MODEL_PATH": str(model)})
    kubectl.apply(sop(STEPS), namespace)
    obj = kubectl.wait("sop", "oom", namespace, until=lambda o: (indexed(o) or {}).get("status") == "False",
                       timeout=60, what="Indexed=False")  # fmt: skip
    failed = indexed(obj)
    assert failed["reason"] == "IndexFailed" and str(model) in failed["message"], failed
    assert "retrying in" in failed["message"]
    assert condition(obj)["status"] == "True" and obj["status"]["stepCount"] == 2  # validation stands
    assert any(e["reason"] == "IndexFailed" and e["type"] == "Warning" for e in kubectl.events(namespace, "oom"))
    assert not indexed_keys(dsn, namespace)

    # The model appears where it was configured; kopf's retry (5 s, 10 s, ... after the failure) indexes the steps.
    model.symlink_to(Path(importlib.util.find_spec(MODEL_PACKAGE).submodule_search_locations[0]) / "model.zip")
    obj = kubectl.wait("sop", "oom", namespace, until=lambda o: (indexed(o) or {}).get("status") == "True",
                       timeout=90, what="Indexed=True")  # fmt: skip
    assert indexed(obj)["reason"] == "Indexed"
    assert indexed_keys(dsn, namespace) == {f"{namespace}/oom#confirm", f"{namespace}/oom#trend"}
