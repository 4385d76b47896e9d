"""What the fast path saves per diagnosis, each checked without a server: the proxy not read again on every request,
kopf's diff base built the same without copying the status, an absent optional API not asked again, the events
informer selecting out our own Events, and the runbooks read from the watch-fed cache."""

from __future__ import annotations

import kopf
import pytest
from kubernetes import client
from kubernetes.client import configuration as client_configuration
from kubernetes.client.exceptions import ApiException

from aiops import API_VERSION
from aiops.clusters import informer
from aiops.core import kube
from aiops.diagnosis.collectors import kubernetes as k8s
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops.operator import Essence
from aiops.sops.remediation import flow

pytestmark = pytest.mark.unit


def test_a_pinned_proxy_is_not_read_from_the_environment_again_when_the_host_is_set(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    settings = kube.pin_proxy(client.Configuration(host="https://api.example:6443"))
    assert settings.proxy == "http://proxy.example:3128"

    def read_again():
        raise AssertionError("the environment's proxies were read again")

    monkeypatch.setattr(client_configuration, "getproxies", read_again)
    settings.host = "https://api.example:6443"  # what the token refresh hook does before every request
    assert settings.proxy == "http://proxy.example:3128"


def test_the_diff_base_is_kopfs_own_without_the_copy_of_the_status():
    body = kopf.Body({
        "apiVersion": "aiops.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "a", "namespace": "shop", "uid": "u", "resourceVersion": "7",
                     "managedFields": [{"manager": "kubectl"}], "labels": {"app": "checkout"},
                     "annotations": {"aiops.dev/last-handled-configuration": "{}", "team": "payments",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
        "spec": {"title": "checkout down", "target": {"kind": "Deployment", "name": "checkout"}},
        "status": {"phase": "Diagnosed", "timeline": [{"reason": "Triaging"}] * 50},
    })  # fmt: skip
    ours = Essence(prefix="aiops.dev", key="last-handled-configuration")
    theirs = kopf.AnnotationsDiffBaseStorage(prefix="aiops.dev", key="last-handled-configuration")
    assert ours.build(body=body) == theirs.build(body=body)
    assert ours.build(body=body) == {
        "spec": {"title": "checkout down", "target": {"kind": "Deployment", "name": "checkout"}},
        "metadata": {"labels": {"app": "checkout"}, "annotations": {"team": "payments"}},
    }
    assert ours.build(body=body, extra_fields=["status.phase"])["status"] == {"phase": "Diagnosed"}


def test_an_optional_api_that_is_not_served_is_not_asked_again_for_a_while(monkeypatch):
    asked = []

    def request(api, method, path, query=None, timeout=None):
        asked.append(path)
        raise ApiException(status=404, reason="Not Found")

    monkeypatch.setattr(kube, "request", request)
    monkeypatch.setattr(k8s, "_absent", {})
    api = client.ApiClient(client.Configuration(host="https://api.example:6443"))
    reader = k8s.Reader(api, EvidenceBundle(Target("Deployment", "checkout", "shop"), None, None))
    certificates = "/apis/cert-manager.io/v1/namespaces/{}/certificates"
    for namespace in ("shop", "shop", "billing"):
        assert reader.items(certificates.format(namespace), "kubernetes/certificates", optional=True) == []
    assert asked == [certificates.format("shop")]  # one answer for every namespace of that server
    assert reader.bundle.missing == []  # optional: not a gap
    reader.get("/api/v1/namespaces/shop/pods/checkout-1", "kubernetes/pod checkout-1", optional=True)
    reader.get("/api/v1/namespaces/shop/pods/checkout-1", "kubernetes/pod checkout-1", optional=True)
    assert asked[1:] == ["/api/v1/namespaces/shop/pods/checkout-1"] * 2  # a missing object says nothing of its API

    monkeypatch.setattr(k8s.time, "monotonic", lambda: 1e12)  # long after: asked again (a CRD installed meanwhile)
    reader.items(certificates.format("shop"), "kubernetes/certificates", optional=True)
    assert asked[-1] == certificates.format("shop")


def test_the_events_informer_asks_the_server_to_leave_out_our_own_objects_events():
    assert informer.Informer(None, "/api/v1/events").selector == {
        "fieldSelector": f"involvedObject.apiVersion!={API_VERSION}"
    }
    assert informer.Informer(None, "/api/v1/pods").selector == {}


def test_a_runbook_already_matched_is_followed_from_the_watch_fed_cache(monkeypatch):
    def listed(*_):
        raise AssertionError("SOPs listed although the cache holds them")

    cache = informer.Cache(api=None, resources=(informer.SOPS_PATH,))
    sops = cache.informers[informer.SOPS_PATH]
    for name, ns, spec in (("oom", "shop", {"title": "OOM", "steps": [{"id": "a", "type": "check", "title": "A"}]}),
                           ("broken", "shop", {"title": "no steps"}),
                           ("elsewhere", "billing", {"title": "OOM", "steps": [{"id": "a", "type": "check",
                                                                                "title": "A"}]})):  # fmt: skip
        obj = {"kind": "SOP", "metadata": {"name": name, "namespace": ns}, "spec": spec}
        sops.objects[informer._key(obj)] = informer.pack(obj)
    sops.synced.set()
    monkeypatch.setattr(informer, "_local", cache)
    monkeypatch.setattr(kube.API, "list", listed)
    assert list(flow.valid_sops(kube.API, "shop", cached=True)) == ["oom"]  # the invalid one left out, as listed
    sops.synced.clear()  # its watch is down: listed from the server again
    monkeypatch.setattr(kube.API, "list", lambda kind, namespace: [])
    assert flow.valid_sops(kube.API, "shop", cached=True) == {}
    sops.synced.set()
    assert flow.valid_sops(kube.API, "shop") == {}  # a match is decided on the server's list, never the cache's
