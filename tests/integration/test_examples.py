"""Every manifest in examples/ applied with real kubectl and reconciled by the real operator."""

from harness import REPO, condition, wait_for


def test_examples_reconcile(kubectl, operator, namespace):
    # Files are numbered so that referenced objects come first, as Argo CD sync waves would.
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples"))

    def triaging(name):
        inc = kubectl.get("incident", name, namespace)
        return inc if (inc.get("status") or {}).get("phase") == "Triaging" else None

    inc = wait_for(lambda: triaging("checkout-oomkilled"), 30, "checkout-oomkilled to reach Triaging")
    ready = condition(inc)
    assert ready["status"] == "True" and ready["reason"] == "AnalysisScheduled"
    assert inc["status"]["observedGeneration"] == inc["metadata"]["generation"]
    assert [e["reason"] for e in inc["status"]["timeline"]] == ["New", "Triaging"]

    run_name = inc["status"]["analysisRunRef"]["name"]
    run = wait_for(
        lambda: (r := kubectl.get("analysisrun", run_name, namespace)) and r.get("status") and r,
        20,
        "the AnalysisRun's status",
    )
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
    assert run["status"]["phase"] == "Pending" and condition(run)["status"] == "True"

    alert = wait_for(lambda: triaging("payments-crashloop"), 30, "payments-crashloop to reach Triaging")
    assert alert["status"]["detectedAt"] == "2026-11-23T14:07:00Z", "detection time is the alert's start"

    query = wait_for(
        lambda: (r := kubectl.get("analysisrun", "why-latency-up", namespace)) and r.get("status") and r,
        20,
        "the query AnalysisRun",
    )
    assert query["status"]["phase"] == "Pending"

    sop = wait_for(lambda: (s := kubectl.get("sop", "oomkilled", namespace)) and condition(s) and s, 20, "the SOP")
    assert condition(sop)["reason"] == "Valid" and sop["status"]["stepCount"] == 5

    hub = wait_for(
        lambda: (c := kubectl.get("managedcluster", "hub")) and (c.get("status") or {}).get("phase") and c,
        20,
        "the ManagedCluster probe",
    )
    assert hub["status"]["phase"] == "Ready"
    assert hub["status"]["kubernetesVersion"].startswith("v")
    assert hub["status"]["gpuInventory"]["total"] >= 0 and hub["status"]["nodeCount"] >= 0


def test_describe_reads_as_a_report(kubectl, operator, namespace):
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "21-incident-alertmanager.yaml"))
    wait_for(
        lambda: (
            (kubectl.get("incident", "payments-crashloop", namespace).get("status") or {}).get("phase") == "Triaging"
        ),
        30,
        "Triaging",
    )
    wait_for(lambda: len(kubectl.events(namespace, "payments-crashloop")) >= 2, 20, "the Events")
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
    assert (
        kubectl("get", "inc", "-n", namespace, "-o", "name").stdout.strip() == "incident.aiops.dev/payments-crashloop"
    )
