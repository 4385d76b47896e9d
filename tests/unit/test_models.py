"""The models accept the documented shapes and name the field of what they refuse."""

import pytest

from aiops.api import ANALYSIS_RUN, INCIDENT, MANAGED_CLUSTER, SOP
from aiops.api.incident import IncidentSpec
from aiops.controllers.common import InvalidSpec, parse_spec


def body(spec, name="x", **meta):
    return {"metadata": {"name": name, "namespace": "ns", "generation": 1, **meta}, "spec": spec}


def problems(kind, spec, name="x"):
    with pytest.raises(InvalidSpec) as exc:
        parse_spec(kind, body(spec, name))
    return exc.value.problems


def test_incident_round_trips_camel_case():
    wire = {
        "title": "t",
        "severity": "critical",
        "clusterRef": {"name": "hub"},
        "target": {"kind": "Deployment", "name": "checkout"},
        "window": {"lookbackMinutes": 30},
        "analysis": {"persona": "gpu", "llm": False},
        "sopRef": {"name": "oom"},
    }
    spec = IncidentSpec.model_validate(wire)
    assert spec.cluster_ref.name == "hub" and spec.window.lookback_minutes == 30
    assert spec.wire() == {**wire, "approvals": []}


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"title": "t", "severity": "doom"}, "spec.severity"),
        ({"title": "", "severity": "info"}, "spec.title"),
        ({"severity": "info"}, "spec.title"),
        ({"title": "t", "severity": "info", "extra": 1}, "spec.extra"),
        ({"title": "t", "severity": "info", "target": {"kind": "Pod", "name": "Bad_Name"}}, "spec.target.name"),
        (
            {
                "title": "t",
                "severity": "info",
                "window": {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T09:00:00Z"},
            },
            "spec.window",
        ),
        ({"title": "t", "severity": "info", "window": {"start": "2026-11-23T10:00:00"}}, "spec.window.start"),
        ({"title": "t", "severity": "info", "source": "alertmanager"}, "spec"),
    ],
)
def test_incident_errors_name_the_field(spec, field):
    first = problems(INCIDENT, spec)[0]
    assert first.startswith(field + ":"), first


def test_long_names_are_refused_with_the_reason():
    first = problems(INCIDENT, {"title": "t", "severity": "info"}, name="a" * 64)[0]
    assert first.startswith("metadata.name: 64 characters")


def test_one_person_approving_a_step_twice_is_refused_two_people_are_not():
    two = [{"step": "rollback", "approvedBy": "ana"}, {"step": "rollback", "approvedBy": "bo"}]
    assert (
        IncidentSpec.model_validate({"title": "t", "severity": "info", "approvals": two}).approvals[1].approved_by
        == "bo"
    )
    twice = [two[0], {"step": "check", "approvedBy": "ana"}, {**two[0], "comment": "again"}]
    [problem] = problems(INCIDENT, {"title": "t", "severity": "info", "approvals": twice})
    assert "approvals[2]: ana already approved step 'rollback' in approvals[0]" in problem


def sop(*steps):
    return {"title": "runbook", "steps": list(steps)}


def test_sop_graph_checks():
    check = {"id": "a", "type": "check", "title": "A", "onSuccess": "b"}
    assert problems(SOP, sop(check))[0] == "spec.steps[0].onSuccess: no step has id 'b'"
    action_without = {"id": "b", "type": "action", "title": "B"}
    assert problems(SOP, sop(check, action_without))[0].startswith("spec.steps[1].action:")
    loop_a = {"id": "a", "type": "check", "title": "A", "onFailure": "b"}
    loop_b = {"id": "b", "type": "check", "title": "B", "onSuccess": "a"}
    assert problems(SOP, sop(loop_a, loop_b))[0] == "spec.steps: the steps form a cycle (a -> b -> a)"
    dup = {"id": "a", "type": "check", "title": "again"}
    assert "used by more than one step" in problems(SOP, sop(loop_a | {"onFailure": None}, dup))[0]
    unknown_action = {"id": "x", "type": "action", "title": "X", "action": {"type": "deleteNamespace"}}
    assert problems(SOP, sop(unknown_action))[0].startswith("spec.steps[0].action.type:")


def test_sop_linear_and_branching_steps_are_valid():
    steps = [
        {"id": "check", "type": "check", "title": "C", "onSuccess": "act", "onFailure": "page"},
        {
            "id": "act",
            "type": "action",
            "title": "A",
            "action": {"type": "rollbackDeployment"},
            "automation": "auto",
            "approvalRequired": True,
        },
        {"id": "verify", "type": "check", "title": "V"},
        {"id": "page", "type": "escalate", "title": "P"},
    ]
    assert len(parse_spec(SOP, body(sop(*steps))).steps) == 4


@pytest.mark.parametrize(
    "spec, text",
    [
        ({"type": "rootCause"}, "incidentRef is required"),
        ({"type": "query"}, "inputs.question is required"),
        ({"type": "anomalyDetection", "inputs": {"queries": []}}, "inputs.queries"),
        (
            {"type": "query", "inputs": {"question": "q"}, "inference": {"endpoint": "http://x", "pool": "p"}},
            "either endpoint or pool",
        ),
        ({"type": "query", "inputs": {"question": "q"}, "inference": {"temperature": 3}}, "spec.inference.temperature"),
    ],
)
def test_analysis_run_inputs_fit_type(spec, text):
    assert text in problems(ANALYSIS_RUN, spec)[0]


def test_managed_cluster_endpoint_must_be_http():
    spec = {"endpoints": {"prometheus": {"url": "ftp://prom"}}}
    assert problems(MANAGED_CLUSTER, spec)[0].startswith("spec.endpoints.prometheus.url:")
