"""Canary and shadow trials of a candidate model (aiops.diagnosis.rollout): the catalogue's rollouts are refused with
the field named; the canary split is stable and takes its share; agreement; the trials of one diagnosis against
scripted OpenAI-compatible servers (a candidate that is down or slow never touches the primary's answer); and the
per-version figures of `aiops models compare` (percentiles, cost, accuracy from feedback)."""

from __future__ import annotations

import re
import statistics
import time
import uuid
from dataclasses import replace

import pytest

from aiops.api.incident import Diagnosis, EvidenceItem, ExecutionStatus, Suspect
from aiops.diagnosis import rollout
from aiops.diagnosis.pipeline import model_diagnosis
from aiops.inference import catalogue
from aiops.inference.gateway import GatewayConfig, diagnose
from aiops.inference.prompts import PROMPT_VERSION, IncidentContext
from aiops.settings import Settings
from aiops.stores.history.trials import Feedback, Trial, figures, percentile
from aiops_dev.controlplane import free_port
from support.scripted_openai import ScriptedOpenAI, answer, content, delayed

SMALL = {"external": {"baseURL": "http://small.example/v1"}, "servedModelName": "qwen-0.5b"}
BIG = {"external": {"baseURL": "http://big.example/v1"}, "servedModelName": "qwen-1.5b"}


def parse(rollouts: dict, models: dict | None = None) -> catalogue.ModelCatalogue:
    return catalogue.parse({"models": models or {"small": SMALL, "big": BIG}, "rollouts": rollouts})


def error(rollouts: dict, models: dict | None = None) -> str:
    with pytest.raises(catalogue.CatalogueError) as exc:
        parse(rollouts, models)
    return str(exc.value)


def test_a_rollout_parses_with_the_current_prompt_by_default():
    r = parse({"rootCause": {"candidate": {"model": "big"}, "mode": "canary", "canaryPercent": 12.5}}).rollouts
    assert r.root_cause.candidate.model == "big" and r.root_cause.candidate.prompt_version == PROMPT_VERSION
    assert (r.root_cause.mode, r.root_cause.canary_percent) == ("canary", 12.5)
    assert catalogue.parse({"models": {"small": SMALL}}).rollouts.root_cause is None


@pytest.mark.parametrize(
    ("rollouts", "message"),
    [
        ({"rootCause": {"candidate": {"model": "huge"}, "mode": "shadow"}},
         'rollouts.rootCause.candidate.model: no model "huge" in the catalogue (known: big, small)'),
        ({"rootCause": {"candidate": {"model": "big", "promptVersion": "rca-v4"}, "mode": "shadow"}},
         f"rollouts.rootCause.candidate.promptVersion: unknown prompt version 'rca-v4' (the operator has "
         f"{PROMPT_VERSION})"),
        ({"rootCause": {"candidate": {"model": "big"}, "mode": "blue-green"}},
         "rollouts.rootCause.mode: Input should be 'shadow' or 'canary'"),
        ({"rootCause": {"candidate": {"model": "big"}, "mode": "canary"}},
         "rollouts.rootCause.canaryPercent: required for mode canary"),
        ({"rootCause": {"candidate": {"model": "big"}, "mode": "shadow", "canaryPercent": 10}},
         "rollouts.rootCause.canaryPercent: only for mode canary"),
        ({"rootCause": {"candidate": {"model": "big"}, "mode": "canary", "canaryPercent": 101}},
         "rollouts.rootCause.canaryPercent: Input should be less than or equal to 100"),
        ({"rootCause": {"mode": "shadow"}}, "rollouts.rootCause.candidate: Field required"),
        ({"query": {"candidate": {"model": "big"}, "mode": "shadow"}}, "rollouts.query: unknown field"),
    ],
)  # fmt: skip
def test_a_bad_rollout_names_the_field(rollouts, message):
    assert message in error(rollouts)


def test_a_bad_price_names_the_field():
    priced = {**BIG, "pricePerMillionTokens": {"prompt": -1, "completion": 2}}
    assert "models.big.pricePerMillionTokens.prompt: Input should be greater than or equal to 0" in error({}, {
        "big": priced})  # fmt: skip
    prices = catalogue.parse({"models": {"big": {**BIG, "pricePerMillionTokens": {"prompt": 0.5, "completion": 2}}}})
    assert prices.get("big").price_per_million_tokens.cost(1_000_000, 250_000) == pytest.approx(1.0)


def test_the_canary_split_is_stable_monotonic_and_takes_its_share():
    uids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(20_000)]
    assert [rollout.in_canary(u, 10) for u in uids[:200]] == [rollout.in_canary(u, 10) for u in uids[:200]]
    for percent in (1, 10, 50):
        share = sum(rollout.in_canary(u, percent) for u in uids) / len(uids)
        assert abs(share - percent / 100) < 0.01, (percent, share)
    ten, twenty = ({u for u in uids if rollout.in_canary(u, p)} for p in (10, 20))
    assert ten < twenty, "raising the share keeps the Incidents already in the canary"
    assert not any(rollout.in_canary(u, 0) for u in uids) and all(rollout.in_canary(u, 100) for u in uids)


def diagnosis(*top: tuple[str, str]) -> Diagnosis:
    suspects = [Suspect(resource=r, failure_mode=m, score=0.9, reason="x") for r, m in top]
    return Diagnosis(root_cause="x", confidence=50, execution_status=ExecutionStatus.COMPLETED, suspects=suspects)


def test_agreement_is_the_same_top_suspect_target_and_failure_mode():
    a = diagnosis(("Deployment/checkout", "OOMKilled"), ("Pod/db-0", "CrashLoopBackOff"))
    assert rollout.agrees(a, diagnosis(("Deployment/checkout", "OOMKilled")))
    assert not rollout.agrees(a, diagnosis(("Deployment/checkout", "CrashLoopBackOff")))
    assert not rollout.agrees(a, diagnosis(("Pod/db-0", "CrashLoopBackOff"), ("Deployment/checkout", "OOMKilled")))
    assert not rollout.agrees(diagnosis(), diagnosis())


def test_the_version_names_the_catalogue_model_or_the_operator_endpoint():
    models = parse({})
    arm = rollout.serving(models, GatewayConfig(base_url="http://big.example/v1", model="qwen-1.5b"), "ns")
    assert arm.version == f"big/qwen-1.5b@{PROMPT_VERSION}" and arm.label == "big/qwen-1.5b"
    other = rollout.serving(models, GatewayConfig(base_url="http://big.example/v1", model="another"), "ns")
    assert other.version == f"AIOPS_LLM/another@{PROMPT_VERSION}"


# The trials of one diagnosis, against scripted model servers.
CONTEXT = IncidentContext(title="checkout OOMKilled", severity="critical", target="Deployment/shop/checkout")
SUSPECTS = [
    Suspect(resource="Deployment/checkout", failure_mode="OOMKilled", score=0.9, reason="3 OOM kills",
            evidence=["ev-oom"]),
    Suspect(resource="Deployment/checkout", failure_mode="BadRollout", score=0.85, reason="revision 12",
            evidence=["ev-rollout"]),
]  # fmt: skip
EVIDENCE = [
    EvidenceItem(id="ev-oom", source="kubernetes", summary="Pod/checkout-1 OOMKilled x3"),
    EvidenceItem(id="ev-rollout", source="rollout", summary="Deployment/checkout revision 12"),
]
INCIDENT = {"metadata": {"namespace": "shop", "name": "checkout", "uid": "uid-1", "generation": 1}}


def reply(first: str, root_cause: str = "checkout is OOMKilled") -> dict:
    return {
        "rootCause": root_cause, "reasoning": "r", "mitigation": "m", "prevention": "p", "recommendation": "r",
        "confidence": 80, "evidence": ["ev-oom", "ev-rollout"],
        "suspects": [{"resource": "Deployment/checkout", "failureMode": first, "reason": "x"}],
    }  # fmt: skip


def run(settings: Settings, primary: GatewayConfig, incident: dict = INCIDENT, named: bool = False):
    """One diagnosis through Trials as the pipeline makes it: (answer, shown diagnosis, trials recorded, object)."""
    recorded: list[Trial] = []
    t = rollout.Trials(settings, incident, primary, named, recorded.append)

    def ask(cfg):
        return diagnose(cfg, None, CONTEXT, SUSPECTS, EVIDENCE)

    def rank(a):
        return model_diagnosis(a, SUSPECTS, EVIDENCE, "")

    started = time.monotonic()
    got = t.ask(ask)
    shown = model_diagnosis(got.answer, SUSPECTS, EVIDENCE, t.label) if got.status == "completed" else diagnosis()
    t.finish(got, shown, ask, rank)
    elapsed = time.monotonic() - started
    assert rollout.wait(30)
    return got, shown, sorted(recorded, key=lambda r: r.role), t, elapsed


def catalogue_of(primary: ScriptedOpenAI, candidate_url: str, rollout_: dict, price: dict | None = None) -> Settings:
    models = {
        "small": {"external": {"baseURL": primary.url}, "servedModelName": primary.model},
        "big": {"external": {"baseURL": candidate_url}, "servedModelName": "qwen-1.5b",
                **({"pricePerMillionTokens": price} if price else {})},
    }  # fmt: skip
    cfg = GatewayConfig(base_url=primary.url, model=primary.model, max_transport_retries=0)
    return Settings(llm=cfg, models=catalogue.parse({"models": models, "rollouts": {"rootCause": rollout_}}))


SHADOW = {"candidate": {"model": "big"}, "mode": "shadow"}


def asked(server: ScriptedOpenAI) -> list[list[str]]:
    """The messages of each request, with the data fences' random boundary (one per request) taken out."""
    return [[re.sub(r"\b[0-9a-f]{24}\b", "", m["content"]) for m in r["messages"]] for r in server.requests]


def test_a_shadow_is_asked_the_same_question_after_the_primary_and_recorded_beside_it():
    price = {"prompt": 1000, "completion": 2000}
    with (
        ScriptedOpenAI(answer(reply("OOMKilled"), prompt_tokens=900, completion_tokens=100), model="qwen-0.5b") as p,
        ScriptedOpenAI(answer(reply("BadRollout", "the rollout"), prompt_tokens=800, completion_tokens=50),
                       model="qwen-1.5b") as c,
    ):  # fmt: skip
        settings = catalogue_of(p, c.url, SHADOW, price)
        got, shown, trials, t, _ = run(settings, settings.llm)
    assert got.status == "completed" and t.label == "small/qwen-0.5b" and shown.model == "small/qwen-0.5b"
    assert asked(c) == asked(p), "the same redacted question"
    primary, shadow = trials
    assert (primary.role, primary.version, primary.status) == ("primary", f"small/qwen-0.5b@{PROMPT_VERSION}",
                                                              "completed")  # fmt: skip
    assert (primary.top_resource, primary.top_failure_mode, primary.cost) == ("Deployment/checkout", "OOMKilled", None)
    assert (shadow.role, shadow.version, shadow.status) == ("shadow", f"big/qwen-1.5b@{PROMPT_VERSION}", "completed")
    # The model's first choice is a near tie with evidence: its ranking stands, and disagrees with the primary's.
    assert (shadow.top_failure_mode, shadow.root_cause, shadow.agrees) == ("BadRollout", "the rollout", False)
    assert (shadow.prompt_tokens, shadow.completion_tokens) == (800, 50)
    assert shadow.cost == pytest.approx((800 * 1000 + 50 * 2000) / 1e6)
    assert (primary.incident_uid, primary.generation, primary.incident_key) == ("uid-1", 1, "shop/checkout")


@pytest.mark.parametrize("how", ["down", "slow", "garbage"])
def test_a_candidate_that_is_down_slow_or_talks_garbage_leaves_the_primary_alone(how):
    with (
        ScriptedOpenAI(answer(reply("OOMKilled")), model="qwen-0.5b") as p,
        ScriptedOpenAI(delayed(1.5, answer(reply("OOMKilled"))) if how == "slow" else content("not json at all"),
                       content("still not"), content("no"), model="qwen-1.5b") as c,
    ):  # fmt: skip
        url = f"http://127.0.0.1:{free_port()}/v1" if how == "down" else c.url
        settings = catalogue_of(p, url, SHADOW)
        settings = replace(settings, llm=replace(settings.llm, timeout_s=1.0))
        got, shown, trials, _, elapsed = run(settings, settings.llm)
    assert got.status == "completed" and shown.suspects[0].failure_mode == "OOMKilled"
    assert elapsed < 1.0, "the primary's path never waits for the shadow"
    primary, shadow = trials
    assert primary.status == "completed"
    expected = {"down": "unreachable", "slow": "unreachable", "garbage": "invalid"}[how]
    assert (shadow.status, shadow.agrees, shadow.top_resource) == (expected, None, None)
    assert shadow.error and ("cannot connect" if how == "down" else "within 1s" if how == "slow" else "valid") in (
        shadow.error
    )


def test_canary_at_100_percent_serves_the_candidate_and_a_down_one_leaves_it_to_the_primary():
    canary = {"candidate": {"model": "big"}, "mode": "canary", "canaryPercent": 100}
    with (
        ScriptedOpenAI(answer(reply("OOMKilled")), model="qwen-0.5b") as p,
        ScriptedOpenAI(answer(reply("OOMKilled", "from the candidate")), model="qwen-1.5b") as c,
    ):
        settings = catalogue_of(p, c.url, canary)
        got, shown, trials, t, _ = run(settings, settings.llm)
        assert p.requests == [] and len(c.requests) == 1
        assert got.answer.root_cause == "from the candidate" and shown.model == "big/qwen-1.5b"
        assert t.config.base_url == c.url
        assert [(r.role, r.version, r.status) for r in trials] == [
            ("canary", f"big/qwen-1.5b@{PROMPT_VERSION}", "completed")
        ]

        down = catalogue_of(p, f"http://127.0.0.1:{free_port()}/v1", canary)
        got, shown, trials, t, _ = run(down, down.llm)
    assert got.status == "completed" and shown.model == "small/qwen-0.5b" and t.config.base_url == p.url
    (failed, served) = trials
    assert (failed.role, failed.status, failed.version) == ("canary", "unreachable", f"big/qwen-1.5b@{PROMPT_VERSION}")
    assert "cannot reach" in failed.error
    assert (served.role, served.status) == ("primary", "completed")


def test_an_incident_that_names_its_model_has_no_candidate():
    with ScriptedOpenAI(answer(reply("OOMKilled")), model="qwen-0.5b") as p, ScriptedOpenAI(model="qwen-1.5b") as c:
        settings = catalogue_of(p, c.url, SHADOW)
        named = replace(settings.llm, model="qwen-0.5b")
        _, shown, trials, t, _ = run(settings, named, named=True)
    assert c.requests == [] and [r.role for r in trials] == ["primary"]
    assert t.label == "qwen-0.5b" == shown.model, "no rollout: the diagnosis' model field is the served model"


# `aiops models compare`: the per-version figures.
def trial(version: str, role: str, uid: str, **kw) -> Trial:
    base = {"generation": 1, "status": "completed", "latency_s": 1.0}
    return Trial(incident_uid=uid, incident_key=f"ns/{uid}", version=version, role=role, **{**base, **kw})


def test_percentiles_tokens_and_cost_per_diagnosis():
    latencies = [0.5, 1.0, 1.5, 2.0, 10.0]
    rows = [
        (trial("a", "primary", f"u{i}", latency_s=s, prompt_tokens=900, completion_tokens=100, cost=0.002), None)
        for i, s in enumerate(latencies)
    ]
    rows.append((trial("a", "primary", "u9", status="invalid", latency_s=3.0, prompt_tokens=1000, cost=0.001), None))
    rows.append((trial("a", "primary", "u10", status="unreachable", latency_s=60.0), None))
    (f,) = figures(rows)
    answered = latencies + [3.0]
    assert f.latency_s == pytest.approx(tuple(statistics.quantiles(answered, n=100, method="inclusive")[p - 1]
                                              for p in (50, 95, 99)))  # fmt: skip
    assert f.latency_s[0] == pytest.approx(1.75) and f.latency_s[2] > 9.0, "unreachable trials do not count"
    assert (f.diagnoses, f.valid_json, f.failed) == (7, (5, 6), 1)
    assert f.tokens == pytest.approx((5 * 1000 + 1000) / 6)
    assert f.cost == pytest.approx((5 * 0.002 + 0.001) / 6)
    assert percentile([4.0], 95) == 4.0


def test_agreement_accuracy_from_feedback_and_the_suite_score():
    checkout, db = "Deployment/checkout", "Secret/checkout-db"
    p, s = "small/qwen-0.5b@rca-v5", "big/qwen-1.5b@rca-v5"
    right = Feedback(generation=2, correct=True, root_cause=None)
    wrong = Feedback(generation=2, correct=False, root_cause="the checkout-db Secret was rotated")
    rows = [
        # u1: judged right; the shadow agreed (right) ...
        (trial(p, "primary", "u1", top_resource=checkout, top_failure_mode="OOMKilled"), right),
        (trial(s, "shadow", "u1", top_resource=checkout, top_failure_mode="OOMKilled", agrees=True), right),
        # u2: judged wrong; the shadow named the Secret the engineer's correction names (right)
        (trial(p, "primary", "u2", top_resource=checkout, top_failure_mode="OOMKilled"), wrong),
        (trial(s, "shadow", "u2", top_resource=db, top_failure_mode="SecretRotated", agrees=False), wrong),
        # u3: judged wrong, and the shadow agreed with it (wrong)
        (trial(p, "primary", "u3", top_resource=checkout, top_failure_mode="OOMKilled"), wrong),
        (trial(s, "shadow", "u3", top_resource=checkout, top_failure_mode="OOMKilled", agrees=True), wrong),
        # u4: judged wrong; the shadow disagreed on the same resource: the correction cannot tell (not counted)
        (trial(p, "primary", "u4", top_resource=checkout, top_failure_mode="OOMKilled"), wrong),
        (trial(s, "shadow", "u4", top_resource=checkout, top_failure_mode="BadRollout", agrees=False), wrong),
        # u5: the primary's model fell back (the analyzers' diagnosis was judged) and the shadow failed: not counted
        (trial(p, "primary", "u5", status="invalid", top_resource=checkout, top_failure_mode="OOMKilled"), right),
        (trial(s, "shadow", "u5", status="unreachable"), right),
        # u6: judged at generation 2, but the trials are of generation 3 (a later diagnosis): not counted
        (trial(p, "primary", "u6", generation=3, top_resource=checkout), right),
        # u7: no feedback
        (trial(p, "primary", "u7", top_resource=checkout), None),
        (trial(s, "shadow", "u7", top_resource=checkout, agrees=True), None),
        # the scenario suite's verdicts
        (trial(p, "suite", "u8", correct=True), None),
        (trial(p, "suite", "u9", correct=False), None),
        (trial(s, "suite", "u8", correct=True), None),
    ]
    by = {f.version: f for f in figures(rows)}
    assert by[p].roles == ("primary", "suite") and by[s].roles == ("shadow", "suite")
    assert (by[p].diagnoses, by[s].diagnoses) == (7, 6)
    assert by[p].accuracy == (1, 4), "u1 right, u2 to u4 wrong"
    assert by[s].accuracy == (2, 3), "u1 and u2 right, u3 wrong"
    assert by[s].agreement == (3, 5) and by[p].agreement == (0, 0)
    assert (by[p].suite, by[s].suite) == ((1, 2), (1, 1))
    assert by[s].failed == 1 and by[s].valid_json == (5, 5)


def test_a_canary_served_diagnosis_is_judged_for_the_candidate():
    c = "big/qwen-1.5b@rca-v5"
    wrong = Feedback(generation=1, correct=False, root_cause=None)
    rows = [
        (trial(c, "canary", "u1", top_resource="Deployment/checkout"), wrong),
        (trial(c, "canary", "u2", status="unreachable"), Feedback(1, True, None)),
        (trial("small/qwen-0.5b@rca-v5", "primary", "u2"), Feedback(1, True, None)),
    ]
    by = {f.version: f for f in figures(rows)}
    assert by[c].accuracy == (0, 1) and by[c].failed == 1
    assert by["small/qwen-0.5b@rca-v5"].accuracy == (1, 1), "the primary served u2 when the canary could not"
