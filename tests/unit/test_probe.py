"""The cluster probe's logic: kubeconfig parsing, failures in plain words, nodes, GPUs, endpoints, verdicts."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops import settings
from aiops.clusters import probe
from aiops_dev.controlplane import free_port


def node(name, ready="True", gpus=None, product=None):
    labels = {probe.GPU_PRODUCT_LABEL: product} if product else {}
    capacity = {"cpu": "8", **({probe.GPU_RESOURCE: str(gpus)} if gpus is not None else {})}
    conditions = [client.V1NodeCondition(type="Ready", status=ready)] if ready else []
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        status=client.V1NodeStatus(capacity=capacity, conditions=conditions),
    )


def kubeconfig(server="https://127.0.0.1:1", token="t0ken"):
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
    ).encode()


# --- kubeconfig -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"clusters: [unclosed\n", "not valid YAML"),
        (b"clusters: []\n", "no clusters"),
        (b"just a string", "no clusters"),
        (yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": "https://x"}}]}).encode(), "context"),
        (kubeconfig(server="spoke.example.com:6443"), "is not an https:// URL"),
    ],
)
def test_unusable_kubeconfig_is_named(raw, words):
    with pytest.raises(probe.KubeconfigError) as err:
        probe.client_from_kubeconfig(raw)
    assert words in str(err.value) and "Traceback" not in str(err.value)


def test_kubeconfig_client_retries_once_and_keeps_the_token():
    api = probe.client_from_kubeconfig(kubeconfig(token="abc"))
    assert api.configuration.retries == probe.API_RETRIES
    assert "Bearer abc" in api.configuration.api_key.values()
    api.close()


# --- API failures in plain words ------------------------------------------------------------------


def test_401_is_unauthorized_and_403_forbidden():
    e401 = probe.classify_api_error(ApiException(status=401, reason="Unauthorized"), "https://spoke:6443")
    assert (
        e401.reason == "Unauthorized" and "invalid or expired" in e401.message and "https://spoke:6443" in e401.message
    )
    e403 = probe.classify_api_error(ApiException(status=403, reason="Forbidden"), "https://spoke:6443")
    assert e403.reason == "Forbidden"
    e500 = probe.classify_api_error(ApiException(status=500, reason="Internal Server Error"), "https://s")
    assert e500.reason == "APIError" and "500" in e500.message


def test_connection_refused_in_plain_words():
    conn = urllib3.connection.HTTPSConnection("127.0.0.1", 1)
    cause = urllib3.exceptions.NewConnectionError(conn, "Failed to establish a new connection: [Errno 111] refused")
    wrapped = urllib3.exceptions.MaxRetryError(None, "/version", reason=cause)
    err = probe.classify_api_error(wrapped, "https://127.0.0.1:1")
    assert err.reason == "Unreachable" and err.message.endswith("connection refused")
    assert "object at 0x" not in err.message


def test_a_real_closed_port_is_unreachable_quickly():
    port = free_port()
    api = probe.client_from_kubeconfig(kubeconfig(server=f"https://127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(probe.ProbeError) as err:
        probe.probe_api(api)
    api.close()
    assert time.monotonic() - started < 5, "no hot retry loop inside one probe"
    assert err.value.reason == "Unreachable" and f"127.0.0.1:{port}" in err.value.message
    assert "connection refused" in err.value.message and "\n" not in err.value.message


def test_timeout_in_plain_words():
    err = probe.classify_api_error(urllib3.exceptions.ReadTimeoutError(None, "/version", "read timed out"), "https://s")
    assert err.reason == "Unreachable" and "did not answer" in err.message


# --- nodes and GPUs -------------------------------------------------------------------------------


def test_gpu_inventory_by_product_and_nodes():
    nodes = [
        node("a", gpus=4, product="NVIDIA-H100-80GB-HBM3"),
        node("b", gpus=4, product="NVIDIA-H100-80GB-HBM3"),
        node("c", gpus=1),
        node("d", gpus=0, product="NVIDIA-A10"),
        node("e"),
    ]
    inv = probe.gpu_inventory(nodes)
    assert inv == {
        "total": 9,
        "models": [
            {"product": "NVIDIA-H100-80GB-HBM3", "count": 8, "nodes": ["a", "b"]},
            {"product": "unknown", "count": 1, "nodes": ["c"]},
        ],
    }


def test_not_ready_nodes_include_unknown_and_unreported():
    nodes = [node("ok"), node("down", ready="False"), node("lost", ready="Unknown"), node("new", ready=None)]
    assert probe.not_ready_nodes(nodes) == ["down", "lost", "new"]


# --- endpoints ------------------------------------------------------------------------------------


class Ready(http.server.BaseHTTPRequestHandler):
    token: str | None = None
    status = 200
    delay = 0.0

    def do_GET(self):
        time.sleep(self.delay)
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            self.end_headers()
            return
        body = b"ready\n" if self.path in ("/-/ready", "/ready", "/prefix/-/ready") else b"no"
        code = self.status if self.path != "/missing/-/ready" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    servers = []

    def start(**attrs):
        handler = type("H", (Ready,), attrs)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_endpoint_ready_paths(server):
    url = server()
    assert probe.check_endpoint("prometheus", url).ok
    assert probe.check_endpoint("alertmanager", url + "/").ok
    assert probe.check_endpoint("loki", url).ok
    assert probe.check_endpoint("prometheus", url + "/prefix").ok, "a path prefix is kept"
    check = probe.check_endpoint("prometheus", url)
    assert check.condition_type == "PrometheusReachable" and check.reason == "Ready"


def test_endpoint_not_ready_and_auth(server):
    busy = probe.check_endpoint("loki", server(status=503))
    assert not busy.ok and busy.reason == "NotReady" and "503" in busy.message and busy.message.startswith("Loki at")
    url = server(token="s3cret-token")
    denied = probe.check_endpoint("prometheus", url)
    assert not denied.ok and denied.reason == "Unauthorized" and "authSecretRef" in denied.message
    assert probe.check_endpoint("prometheus", url, token="s3cret-token").ok
    wrong = probe.check_endpoint("prometheus", url, token="wrong")
    assert wrong.reason == "Unauthorized" and "wrong" not in wrong.message, "the token never lands in status"


def test_endpoint_closed_port_and_timeout(server):
    closed = probe.check_endpoint("prometheus", f"http://127.0.0.1:{free_port()}")
    assert not closed.ok and closed.reason == "ConnectionFailed" and "connection refused" in closed.message
    slow = probe.check_endpoint("alertmanager", server(delay=2.0), timeout=0.3)
    assert not slow.ok and slow.reason == "Timeout"


def test_credentials_in_urls_are_not_shown():
    check = probe.check_endpoint("prometheus", f"http://admin:hunter2@127.0.0.1:{free_port()}")
    assert "hunter2" not in check.message and "127.0.0.1" in check.message


# --- verdicts -------------------------------------------------------------------------------------

FIELDS = {"kubernetesVersion": "v1.20.2", "nodeCount": 2, "gpuInventory": {"total": 4, "models": []}}


def test_verdicts():
    down = probe.verdict(probe.ProbeResult(error=probe.ProbeError("Unauthorized", "401")))
    assert (down.phase, down.ready, down.reason) == ("Unreachable", "False", "Unauthorized")
    ok = probe.verdict(probe.ProbeResult(fields=dict(FIELDS)))
    assert (ok.phase, ok.ready, ok.reason) == ("Ready", "True", "Probed") and "2 nodes, 4 GPUs" in ok.message
    prom = probe.EndpointCheck("prometheus", "http://p", False, "ConnectionFailed", "Prometheus at http://p: refused")
    degraded = probe.verdict(probe.ProbeResult(fields=dict(FIELDS), endpoints=[prom]))
    assert (degraded.phase, degraded.reason) == ("Degraded", "Degraded") and "Prometheus" in degraded.message
    nodes = probe.verdict(probe.ProbeResult(fields=dict(FIELDS), not_ready=["worker-3"]))
    assert nodes.phase == "Degraded" and "1 of 2 nodes NotReady: worker-3" in nodes.message


def test_probe_interval_setting():
    assert settings.from_env({}).cluster_probe_interval_s == 60
    assert settings.from_env({"AIOPS_CLUSTER_PROBE_INTERVAL_S": "5"}).cluster_probe_interval_s == 5
    for bad in ("0", "soon"):
        with pytest.raises(SystemExit, match="AIOPS_CLUSTER_PROBE_INTERVAL_S"):
            settings.from_env({"AIOPS_CLUSTER_PROBE_INTERVAL_S": bad})
