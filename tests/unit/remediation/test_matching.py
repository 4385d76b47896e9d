from aiops.api.incident import Diagnosis, IncidentSpec
from aiops.api.sop import SOPSpec
from aiops.sops.remediation import matching

STEPS = [{"id": "look", "type": "check", "title": "Look", "command": "kubectl get pods"}]


def sop(**match) -> SOPSpec:
    return SOPSpec.model_validate({"title": "Container killed for exceeding its memory limit", "match": match,
                                   "steps": STEPS})  # fmt: skip


def incident(**spec) -> IncidentSpec:
    return IncidentSpec.model_validate({"title": "checkout keeps restarting", "severity": "critical", **spec})


def diagnosis(mode: str, score: float) -> Diagnosis:
    return Diagnosis.model_validate(
        {
            "rootCause": f"Pod/checkout-x: {mode}",
            "confidence": 90,
            "executionStatus": "COMPLETED",
            "suspects": [{"resource": "Pod/checkout-x", "failureMode": mode, "score": score, "reason": "seen"}],
        }
    )


ALERT = {"name": "KubePodOOMKilled", "labels": {"alertname": "KubePodOOMKilled", "team": "shop"}, "fingerprint": "ab"}


def test_alert_name_and_suspect_both_count_and_are_explained():
    score, reasons = matching.score(incident(alert=ALERT), diagnosis("OOMKilled", 0.9),
                                    sop(alertNames=["KubePodOOMKilled"], symptoms=["OOMKilled"]))  # fmt: skip
    assert score > matching.ALERT_WEIGHT + matching.SUSPECT_WEIGHT * 0.9
    assert reasons[:2] == ["alert KubePodOOMKilled", "suspect OOMKilled on Pod/checkout-x (0.90)"]


def test_filters_rule_an_sop_out():
    assert matching.score(incident(alert=ALERT), None, sop(labelSelector={"team": "payments"})) is None
    assert matching.score(incident(), None, sop(severities=["low"])) is None
    assert matching.score(incident(), None, sop(severities=["critical"])) is not None


def test_choose_picks_the_best_and_states_no_match():
    sops = {
        "oom": sop(symptoms=["OOMKilled"]),
        "crashloop": SOPSpec.model_validate(
            {"title": "Crash looping pods", "match": {"symptoms": ["CrashLoopBackOff"]}, "steps": STEPS}
        ),
    }
    match, why = matching.choose(incident(), diagnosis("OOMKilled", 0.9), sops)
    assert match and match.name == "oom" and "suspect OOMKilled" in why
    match, why = matching.choose(incident(), diagnosis("ImageNotFound", 0.9), sops)
    assert match is None and why.startswith("no SOP scored 0.3 or more; the closest")


def test_sop_ref_wins():
    match, why = matching.choose(incident(sopRef={"name": "by-hand"}), diagnosis("OOMKilled", 0.9), {})
    assert match == matching.Match("by-hand", 1.0, "named by spec.sopRef")
