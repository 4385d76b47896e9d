"""Every failure scenario, written onto the test cluster, diagnosed by the real collectors and analyzers
(LLM off): the scenario's known root cause must rank first."""

import pytest

from aiops.settings import Settings
from aiops_dev.eval.cases import CASES
from aiops_dev.eval.scenario_suite import diagnose_scenario, local_cluster


@pytest.fixture(scope="module", autouse=True)
def pipeline_cluster(kubeconfig):
    """The pipeline reads the local cluster through kube.api_client(); point it at the session's cluster."""
    with local_cluster(kubeconfig):
        yield


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ranked_first(case, kubectl, namespace, writer):
    case.write(writer)
    kubectl.apply(case.incident_manifest(namespace), namespace)
    incident = kubectl.json("get", "incident", case.name, "-n", namespace)

    outcome = diagnose_scenario(case, incident, Settings(llm=None))

    assert outcome.status == "COMPLETED", outcome
    got = list(zip(outcome.ranked, outcome.resources, strict=True))
    assert outcome.rank == 1, f"expected {case.failure_mode} on {case.resource} first, got {got}"
