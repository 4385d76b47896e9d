"""Every manifest in examples/ applied with real kubectl and reconciled by the real operator."""

from harness import REPO, condition, phase, ready_reason

TRIAGING = {"until": lambda obj: phase(obj) == "Triaging", "what": "phase Triaging"}


def test_examples_reconcile(kubectl, operator, namespace):
    # Files are numbered so that referenced objects come first, as Argo CD sync waves would.
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples"))

    inc = kubectl.wait("incident", "checkout-oomkilled", namespace, **TRIAGING)
    assert condition(inc)["status"] == "True" and ready_reason(inc) == "AnalysisScheduled"
    assert inc["status"]["observedGeneration"] == inc["metadata"]["generation"]
    assert [e["reason"] for e in inc["status"]["timeline"]] == ["New", "Triaging"]

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
    assert phase(run) == "Pending" and condition(run)["status"] == "True"

    alert = kubectl.wait("incident", "payments-crashloop", namespace, **TRIAGING)
    assert alert["status"]["detectedAt"] == "2026-11-23T14:07:00Z", "detection time is the alert's start"

    assert phase(kubectl.wait("analysisrun", "why-latency-up", namespace)) == "Pending"

    sop = kubectl.wait("sop", "oomkilled", namespace)
    assert ready_reason(sop) == "Valid" and sop["status"]["stepCount"] == 5

    hub = kubectl.wait("managedcluster", "hub", until=phase, what="a probe result")
    assert phase(hub) == "Ready"
    assert hub["status"]["kubernetesVersion"].startswith("v")
    assert hub["status"]["gpuInventory"]["total"] >= 0 and hub["status"]["nodeCount"] >= 0


def test_describe_reads_as_a_report(kubectl, operator, namespace):
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "21-incident-alertmanager.yaml"))
    kubectl.wait("incident", "payments-crashloop", namespace, **TRIAGING)
    kubectl.wait(
        "incident",
        "payments-crashloop",
        namespace,
        until=lambda _: len(kubectl.events(namespace, "payments-crashloop")) >= 2,
        what="two Events",
    )
    text = kubectl("describe", "incident", "payments-crashloop", "-n", namespace).stdout
    for expected in (
        "Phase:",
        "Triaging",
        "Conditions:",
        "AnalysisScheduled",
        "Timeline:",
        "Events:",
        "Normal  New",
        "Normal  Triaging",
        "aiops-operator",
    ):
        assert expected in text, f"{expected!r} missing from kubectl describe:\n{text}"
    table = kubectl("get", "incidents", "-n", namespace).stdout.splitlines()[0].split()
    assert table == ["NAME", "SEVERITY", "PHASE", "ROOT", "CAUSE", "CONFIDENCE", "AGE"]
    assert "payments-crashloop" in kubectl("get", "aiops", "-n", namespace).stdout, "category aiops lists it"
    names = kubectl("get", "inc", "-n", namespace, "-o", "name").stdout.strip()
    assert names == "incident.aiops.dev/payments-crashloop", "short name inc"
