"""Handlers are idempotent, and an operator killed mid-work duplicates nothing when it comes back."""

import time

import yaml

from harness import condition, symptom_incident, wait_for

TERMINAL = ("Diagnosed", "Failed")


def incident_phase(kubectl, name, namespace):
    return ((kubectl.get("incident", name, namespace) or {}).get("status") or {}).get("phase")


def test_second_pass_changes_nothing(kubectl, operator, namespace):
    kubectl.apply(symptom_incident("once"), namespace)
    wait_for(lambda: incident_phase(kubectl, "once", namespace) in TERMINAL, 30, "the analysis to end")
    time.sleep(1)  # Events are posted right after the status writes
    before = kubectl.get("incident", "once", namespace)
    events = len(kubectl.events(namespace, "once"))

    def handled():
        return sum(
            "Handler 'reconcile' succeeded" in line and f"[{namespace}/once]" in line
            for line in operator.log().splitlines()
        )

    runs = handled()
    assert runs >= 1
    # A metadata change makes kopf run the update handler again.
    kubectl("annotate", "incident", "once", "-n", namespace, "example.com/touched=yes")
    wait_for(lambda: handled() > runs, 20, "the handler to rerun")
    after = kubectl.get("incident", "once", namespace)
    assert after["status"] == before["status"]
    assert len(kubectl.events(namespace, "once")) == events
    assert len(kubectl.json("get", "analysisruns", "-n", namespace)["items"]) == 1


def test_killed_operator_duplicates_nothing(kubectl, operator, namespace):
    names = [f"burst-{i:02d}" for i in range(30)]
    kubectl(
        "apply", "-n", namespace, "-f", "-", input="\n---\n".join(yaml.safe_dump(symptom_incident(n)) for n in names)
    )

    # Kill the operator (SIGKILL: no cleanup) once part of the burst is handled, one Incident at least to the end.
    def progressed():
        items = kubectl.json("get", "incidents", "-n", namespace)["items"]
        phases = [(i.get("status") or {}).get("phase") for i in items]
        return sum(p is not None for p in phases) >= 3 and any(p in TERMINAL for p in phases)

    wait_for(progressed, 30, "some progress, one Incident done")
    operator.stop(kill=True)
    time.sleep(1)
    done_before = {n for n in names if incident_phase(kubectl, n, namespace) in TERMINAL}
    assert done_before, "no Incident had ended before the kill: nothing to check for repeated Events"
    events_before = {n: len(kubectl.events(namespace, n)) for n in done_before}

    operator.start()
    wait_for(lambda: all(incident_phase(kubectl, n, namespace) in TERMINAL for n in names), 90, "the whole burst")
    time.sleep(2)  # let resumed handlers finish posting anything they would post
    runs = kubectl.json("get", "analysisruns", "-n", namespace)["items"]
    owners = sorted(r["metadata"]["ownerReferences"][0]["name"] for r in runs)
    assert owners == sorted(names), "exactly one AnalysisRun per Incident"
    for n in names:
        obj = kubectl.get("incident", n, namespace)
        reasons = [e["reason"] for e in obj["status"]["timeline"]]
        assert len(reasons) == len(set(reasons)), f"{n}: timeline entries repeated: {reasons}"
        assert reasons[:2] == ["New", "Triaging"], reasons
        assert condition(obj, "Diagnosed")["reason"] == "AnalysisFailed"
        assert "spec.target is not set" in obj["status"]["diagnosis"]["rootCause"]
    for n in done_before:
        assert len(kubectl.events(namespace, n)) == events_before[n], f"{n} got Events again after the restart"
