"""Every failure scenario, written onto the test cluster, diagnosed by the real collectors and analyzers
(LLM off): the scenario's known root cause must rank first."""

import pytest

from aiops.settings import Settings
from aiops_dev.eval.scenario_suite import diagnose_scenario, incident_manifest, local_cluster
from aiops_dev.eval.scenarios import SCENARIOS


@pytest.fixture(scope="module", autouse=True)
def pipeline_cluster(kubeconfig):
    """The pipeline reads the local cluster through kube.api_client(); point it at the session's cluster."""
    with local_cluster(kubeconfig):
        yield


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_ranked_first(scenario, kubectl, namespace, writer):
    scenario.build(writer)
    kubectl.apply(incident_manifest(scenario, namespace), namespace)
    incident = kubectl.json("get", "incident", scenario.name, "-n", namespace)

    outcome = diagnose_scenario(scenario, incident, Settings(llm=None))

    assert outcome.status == "COMPLETED", outcome
    assert outcome.rank == 1, f"expected {scenario.expected_failure_mode} first, got {outcome.ranked}"
