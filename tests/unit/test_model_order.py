"""The model may break a near tie between the analyzers' suspects, with evidence; it never overrides a clear
ranking, and when it is overruled the root cause is the evidence's."""

from aiops.api.incident import EvidenceItem, Suspect
from aiops.diagnosis.pipeline import model_diagnosis, model_order
from aiops.inference.gateway import ModelAnswer, ModelSuspect

OOM = Suspect(resource="Pod/checkout-1", failure_mode="OOMKilled", score=0.9, reason="exit 137", evidence=["oom-1"])
ROLLOUT = Suspect(
    resource="Deployment/checkout", failure_mode="RecentRollout", score=0.6, reason="new", evidence=["ro"]
)
NEAR = Suspect(resource="Pod/checkout-1", failure_mode="MemoryGrowth", score=0.85, reason="grows", evidence=["mem"])
EVIDENCE = [EvidenceItem(id=i, source="kubernetes", summary=i) for i in ("oom-1", "ro", "mem")]


def answer(first: Suspect | ModelSuspect, cites: list[str]) -> ModelAnswer:
    named = ModelSuspect(resource=first.resource, failure_mode=first.failure_mode, reason="the model says so")
    return ModelAnswer(
        root_cause=f"{first.resource} {first.failure_mode}", reasoning="r", mitigation="m", prevention="p",
        recommendation="c", confidence=90, evidence=cites, suspects=[named],
    )  # fmt: skip


def test_a_clear_ranking_stands_and_the_root_cause_is_the_evidences():
    ranked, overruled = model_order(answer(ROLLOUT, ["ro"]), [OOM, ROLLOUT])
    assert ranked == [OOM, ROLLOUT] and "clearly higher" in overruled
    d = model_diagnosis(answer(ROLLOUT, ["ro"]), [OOM, ROLLOUT], EVIDENCE, "qwen")
    assert d.suspects[0] == OOM and d.root_cause.startswith("Pod/checkout-1: OOMKilled")
    assert "The model said: Deployment/checkout RecentRollout" in d.reasoning
    assert d.confidence == 90 and {e.id for e in d.evidence} == {"ro", "oom-1"}


def test_the_model_breaks_a_near_tie_when_it_cites_the_suspects_evidence():
    ranked, overruled = model_order(answer(NEAR, ["mem"]), [OOM, NEAR, ROLLOUT])
    assert ranked == [NEAR, OOM, ROLLOUT] and overruled is None
    d = model_diagnosis(answer(NEAR, ["mem"]), [OOM, NEAR, ROLLOUT], EVIDENCE, "qwen")
    assert d.root_cause == "Pod/checkout-1 MemoryGrowth" and d.confidence == 90


def test_correlation_never_outranks_proof_on_the_models_word():
    quota = Suspect(resource="Pod/web-1", failure_mode="QuotaExceeded", score=0.88, reason="quota", evidence=["q"])
    rollout = ROLLOUT.model_copy(update={"score": 0.8})  # within TIE_BAND, but a correlation, not a proof
    ranked, overruled = model_order(answer(rollout, ["ro"]), [quota, rollout])
    assert ranked == [quota, rollout] and "clearly higher" in overruled


def test_without_citing_the_suspects_evidence_a_near_tie_is_not_broken():
    ranked, overruled = model_order(answer(NEAR, ["ro"]), [OOM, NEAR])
    assert ranked == [OOM, NEAR] and "without citing" in overruled


def test_a_suspect_no_analyzer_found_comes_after_theirs():
    invented = ModelSuspect(resource="Pod/coredns-1", failure_mode="DNSFailure", reason="the logs said so")
    ranked, overruled = model_order(answer(invented, ["oom-1"]), [OOM, ROLLOUT])
    assert [s.resource for s in ranked] == ["Pod/checkout-1", "Deployment/checkout", "Pod/coredns-1"]
    assert ranked[-1].evidence == [] and ranked[-1].score < ROLLOUT.score and "not in the evidence" in overruled
