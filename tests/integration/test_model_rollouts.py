"""Canary and shadow of a candidate model through the real operator, a real PostgreSQL and two scripted
OpenAI-compatible servers as the catalogue's models (external: the primary is the catalogue's default): a shadow
diagnosis stores both trials and the Incident shows only the primary's; a candidate that is down leaves the primary
untouched and stores a failed trial; a canary at 100% serves the candidate; `aiops models compare` prints the table.
"""

import json
import re
import subprocess
import sys

import yaml

from aiops.inference.prompts import PROMPT_VERSION
from aiops_dev.eval import cases
from harness import checkout_incident, condition, phase, wait_for
from support.diagnoses import reply_for
from support.scripted_openai import ScriptedOpenAI, answer
from support.servers import query

PRIMARY, CANDIDATE = f"small/qwen-0.5b@{PROMPT_VERSION}", f"big/qwen-1.5b@{PROMPT_VERSION}"
DIAGNOSED = {"until": lambda o: phase(o) in ("Diagnosed", "Failed"), "timeout": 60, "what": "a diagnosis"}


def start(operator_env, tmp_path, dsn: str, primary: ScriptedOpenAI, candidate_url: str, rollout: dict):
    """Restarts the operator with a catalogue of the two models, the primary as the default, `rollout` on trial."""
    models = {
        "small": {"external": {"baseURL": primary.url}, "servedModelName": "qwen-0.5b"},
        "big": {"external": {"baseURL": candidate_url}, "servedModelName": "qwen-1.5b",
                "pricePerMillionTokens": {"prompt": 0.5, "completion": 1.5}},
    }  # fmt: skip
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"models": models, "defaults": {"default": "small"}, "rollouts": rollout}))
    operator = operator_env({"AIOPS_MODEL_CATALOGUE": str(path), "AIOPS_POSTGRES_DSN": dsn})
    wait_for(lambda: "history is on" in operator.log(since_start=True), 30, "the operator to say history is on")


def trials(dsn: str, uid: str, n: int) -> dict[str, dict]:
    """The incident's `n` trial rows, by role."""
    rows = wait_for(
        lambda: (r := query(dsn, "SELECT * FROM model_trials WHERE incident_uid = $1", uid)) and len(r) >= n and r,
        30,
        f"{n} trial row(s)",
    )
    assert len(rows) == n, rows
    return {r["role"]: dict(r) for r in rows}


def shown(kubectl, namespace: str, name: str, reply: dict, model: str) -> dict:
    """The Incident, after checking it shows `reply` from `model` as a model's completed diagnosis."""
    inc = kubectl.wait("incident", name, namespace, **DIAGNOSED)
    d = inc["status"]["diagnosis"]
    assert (d["executionStatus"], d["rootCause"], d["model"]) == ("COMPLETED", reply["rootCause"], model), d
    assert d["promptVersion"] == PROMPT_VERSION
    answered = condition(inc, "ModelAnswered")
    assert (answered["status"], answered["reason"]) == ("True", "Completed"), answered
    return inc


def test_shadow_canary_and_a_candidate_that_is_down(dsn, kubectl, operator_env, namespace, writer, tmp_path):
    cases.write("checkout-oomkilled", writer)
    reply = reply_for(writer)
    other = {**reply, "rootCause": "SHADOW: the candidate's own words, never shown"}
    primary = ScriptedOpenAI(*[answer(reply, prompt_tokens=900, completion_tokens=100)] * 2, model="qwen-0.5b")
    candidate = ScriptedOpenAI(answer(other, prompt_tokens=800, completion_tokens=60), model="qwen-1.5b")
    with primary:
        with candidate:
            start(operator_env, tmp_path, dsn, primary, candidate.url, {
                "rootCause": {"candidate": {"model": "big"}, "mode": "shadow"}})  # fmt: skip
            kubectl.apply(checkout_incident("shadowed"), namespace)
            inc = shown(kubectl, namespace, "shadowed", reply, "small/qwen-0.5b")
            rows = trials(dsn, inc["metadata"]["uid"], 2)
            assert len(candidate.requests) == 1, "the candidate was asked once, beside the primary"
        assert "SHADOW" not in json.dumps(inc), "only the primary is shown"
        run = kubectl.get("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
        assert (run["status"]["model"], run["status"]["endpoint"]) == ("small/qwen-0.5b", primary.url)
        p, s = rows["primary"], rows["shadow"]
        assert (p["version"], p["status"], p["root_cause"]) == (PRIMARY, "completed", reply["rootCause"])
        assert (s["version"], s["status"], s["root_cause"]) == (CANDIDATE, "completed", other["rootCause"])
        assert (s["top_resource"], s["top_failure_mode"], s["agrees"]) == (p["top_resource"], "OOMKilled", True)
        assert (s["prompt_tokens"], s["completion_tokens"]) == (800, 60)
        assert s["cost"] == (800 * 0.5 + 60 * 1.5) / 1e6 and p["cost"] is None
        assert p["generation"] == s["generation"] == inc["metadata"]["generation"]

        # The candidate's server is gone (its port closed): the primary goes on as before, the shadow fails.
        kubectl.apply(checkout_incident("candidate-down"), namespace)
        inc = shown(kubectl, namespace, "candidate-down", reply, "small/qwen-0.5b")
        events = kubectl.events(namespace, "candidate-down")
        assert not [e for e in events if e["type"] == "Warning"], events
        rows = trials(dsn, inc["metadata"]["uid"], 2)
        assert rows["primary"]["status"] == "completed"
        down = rows["shadow"]
        assert (down["version"], down["status"], down["agrees"], down["root_cause"]) == (
            CANDIDATE, "unreachable", None, None)  # fmt: skip
        assert f"cannot connect to {candidate.url}/chat/completions" in down["error"], down["error"]

    # A canary at 100%: every Incident is served by the candidate, and says so.
    with ScriptedOpenAI(model="qwen-0.5b") as primary, ScriptedOpenAI(answer(other), model="qwen-1.5b") as candidate:
        start(operator_env, tmp_path, dsn, primary, candidate.url, {
            "rootCause": {"candidate": {"model": "big"}, "mode": "canary", "canaryPercent": 100}})  # fmt: skip
        kubectl.apply(checkout_incident("canaried"), namespace)
        inc = shown(kubectl, namespace, "canaried", other, "big/qwen-1.5b")
        assert primary.requests == [] and len(candidate.requests) == 1
    run = kubectl.get("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
    assert (run["status"]["model"], run["status"]["endpoint"]) == ("big/qwen-1.5b", candidate.url)
    assert run["status"]["catalogueModel"] == "small", "routed to the default; the canary took it from there"
    canary = trials(dsn, inc["metadata"]["uid"], 1)["canary"]
    assert (canary["version"], canary["status"], canary["root_cause"]) == (CANDIDATE, "completed", other["rootCause"])

    out = subprocess.run(
        [sys.executable, "-m", "aiops.cli", "models", "compare", "--dsn", dsn],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    table = {cells[0]: cells for line in out.splitlines() if (cells := re.split(r"\s{2,}", line.strip()))}
    header = table["version"]
    small, big = (dict(zip(header, table[v], strict=True)) for v in (PRIMARY, CANDIDATE))
    assert [small[k] for k in ("roles", "diagnoses", "valid JSON", "failed")] == ["primary", "2", "100% (2/2)", "0"]
    assert [big[k] for k in ("roles", "diagnoses", "agreement", "failed")] == ["canary+shadow", "3", "100% (1/1)", "1"]
    assert big["valid JSON"] == "100% (2/2)" and small["cost/diag"] == "-" and float(big["cost/diag"]) > 0
    assert small["tokens/diag"] == "1,000" and float(small["p95 s"]) >= 0
