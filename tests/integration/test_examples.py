"""Every manifest in examples/ applied with real kubectl and carried to a diagnosis by the real operator."""

from aiops_dev.eval import cases
from harness import REPO, condition, phase, ready_reason


def done(obj):
    """Diagnosed (or failed); a matched SOP may already have moved the Incident on to Remediating."""
    return phase(obj) in ("Diagnosed", "Remediating", "Failed")


def done_run(obj):
    return phase(obj) in ("Succeeded", "Failed")


def in_order(reasons, expected):
    it = iter(reasons)
    return all(any(r == e for r in it) for e in expected)


def test_examples_reconcile(kubectl, operator, namespace, writer):
    # The workloads the example Incidents point at, failing as a real cluster would show them.
    cases.write("checkout-oomkilled", writer)
    cases.write("payments-crashloop", writer)
    # Files are numbered so that referenced objects come first, as Argo CD sync waves would.
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples"))

    inc = kubectl.wait("incident", "checkout-oomkilled", namespace, until=done, timeout=60, what="a diagnosis")
    assert phase(inc) in ("Diagnosed", "Remediating"), inc["status"]
    assert inc["status"]["observedGeneration"] == inc["metadata"]["generation"]
    assert ready_reason(inc) == "AnalysisScheduled"
    d = inc["status"]["diagnosis"]
    # The test operator has no model configured: the analyzers answer and say so.
    assert d["executionStatus"] == "RECOVERED_FALLBACK" and d["model"] == "deterministic-analyzers"
    assert d["suspects"][0]["failureMode"] == "OOMKilled", d["suspects"]
    assert d["confidence"] >= 85 and "OOMKilled" in d["rootCause"]
    assert {e["id"] for e in d["evidence"]} >= set(d["suspects"][0]["evidence"])
    assert condition(inc, "Diagnosed")["reason"] == "RootCauseIdentified"
    assert condition(inc, "ModelAnswered")["reason"] == "AnalysisFallback"
    timeline = [e["reason"] for e in inc["status"]["timeline"]]
    assert in_order(timeline, ["New", "Triaging", "Analyzing", "AnalysisFallback", "RootCauseIdentified", "Diagnosed"])
    assert any("prometheus: no endpoint configured" in g for g in inc["status"]["evidenceGaps"])

    run = kubectl.wait("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
    owner = run["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Incident",
        "checkout-oomkilled",
        inc["metadata"]["uid"],
        True,
    )
    assert run["spec"] == {
        "type": "rootCause",
        "incidentRef": {"name": "checkout-oomkilled"},
        "clusterRef": {"name": "hub"},
    }
    assert phase(run) == "Succeeded" and run["status"]["attempts"] == 1
    assert run["status"]["durationSeconds"] > 0 and run["status"]["result"]["diagnosis"] == d

    alert = kubectl.wait("incident", "payments-crashloop", namespace, until=done, timeout=60, what="a diagnosis")
    assert alert["status"]["detectedAt"] == "2026-11-23T14:07:00Z", "detection time is the alert's start"
    assert alert["status"]["diagnosis"]["suspects"][0]["failureMode"] == "CrashLoopBackOff"

    # A question needs a model; the test operator has none and says so.
    query = kubectl.wait("analysisrun", "why-latency-up", namespace, until=done_run, what="a finished run")
    assert phase(query) == "Failed" and ready_reason(query) == "Accepted"
    assert condition(query, "ModelAnswered")["reason"] == "NoModelConfigured"
    # A wiki runbook needs a model to become an SOP draft; the test operator has none and says so.
    sop_run = kubectl.wait("analysisrun", "payments-5xx-from-wiki", namespace, until=done_run, what="a finished run")
    assert phase(sop_run) == "Failed" and condition(sop_run, "ModelAnswered")["reason"] == "NoModelConfigured"
    assert sop_run["status"]["error"].startswith("no model is configured")

    sop = kubectl.wait("sop", "checkout-oomkilled", namespace)
    assert ready_reason(sop) == "Valid" and sop["status"]["stepCount"] == 5
    # The Incident names the SOP: its checks ran, and the rollback waits for a person.
    inc = kubectl.wait(
        "incident", "checkout-oomkilled", namespace, timeout=60, what="the rollback waiting for approval",
        until=lambda o: (o["status"].get("sop") or {}).get("current") == "rollback"
        and o["status"]["sop"]["steps"][2]["state"] == "AwaitingApproval",
    )  # fmt: skip
    assert phase(inc) == "Remediating" and condition(inc, "SOPMatched")["message"].endswith("named by spec.sopRef")
    steps = {s["id"]: s for s in inc["status"]["sop"]["steps"]}
    assert steps["confirm-oom"]["state"] == "Succeeded" and steps["confirm-oom"]["output"] == "condition holds: app app"
    assert steps["history"]["state"] == "Succeeded"

    hub = kubectl.wait("managedcluster", "hub", until=phase, what="a probe result")
    assert phase(hub) == "Ready"
    assert hub["status"]["kubernetesVersion"].startswith("v")
    # The local control plane's Nodes are the ones tests wrote: the scenarios' worker here, with no GPUs, and a GPU
    # node (one GPU) only if a GPU scenario ran earlier in the session. The probe counts exactly what they declare.
    nodes = kubectl.json("get", "nodes")["items"]
    gpus = {n["metadata"]["name"]: int(n["status"].get("capacity", {}).get("nvidia.com/gpu", 0)) for n in nodes}
    assert gpus and hub["status"]["nodeCount"] == len(nodes), (hub["status"], gpus)
    inventory = hub["status"]["gpuInventory"]
    assert inventory["total"] == sum(gpus.values()), (inventory, gpus)
    assert sorted(n for m in inventory["models"] for n in m["nodes"]) == sorted(n for n, c in gpus.items() if c > 0)
    if not any(gpus.values()):
        assert inventory == {"total": 0, "models": []} and "gpu" not in hub["status"]["capabilities"], hub["status"]
    history = condition(hub, "HistoryRecorded")  # the test operator has no PostgreSQL: it says so
    assert (history["status"], history["reason"]) == ("False", "Off")
    assert history["message"].startswith("history is off: AIOPS_POSTGRES_DSN is not set")


def test_describe_reads_as_a_report(kubectl, operator, namespace, writer):
    cases.write("payments-crashloop", writer)
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "21-incident-alertmanager.yaml"))
    kubectl.wait("incident", "payments-crashloop", namespace, until=done, timeout=60, what="a diagnosis")
    kubectl.wait(
        "incident",
        "payments-crashloop",
        namespace,
        until=lambda _: any(
            e["reason"] == "RootCauseIdentified" for e in kubectl.events(namespace, "payments-crashloop")
        ),
        what="the Events",
    )
    text = kubectl("describe", "incident", "payments-crashloop", "-n", namespace).stdout
    for expected in (
        "Phase:",
        "Diagnosed",
        "Root Cause:",
        "CrashLoopBackOff",
        "Confidence:",
        "Execution Status:",
        "RECOVERED_FALLBACK",
        "Suspects:",
        "Timeline:",
        "Events:",
        "Normal   Triaging",
        "RootCauseIdentified",
        "Warning  AnalysisFallback",
        "aiops-operator",
    ):
        assert expected in text, f"{expected!r} missing from kubectl describe:\n{text}"
    table = kubectl("get", "incidents", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SEVERITY", "PHASE", "ROOT", "CAUSE", "CONFIDENCE", "AGE"]
    assert "Diagnosed" in table[1] and "CrashLoopBackOff" in table[1]
    assert "payments-crashloop" in kubectl("get", "aiops", "-n", namespace).stdout, "category aiops lists it"
    names = kubectl("get", "inc", "-n", namespace, "-o", "name").stdout.strip()
    assert names == "incident.aiops.dev/payments-crashloop", "short name inc"
