"""The watch-fed cache's bookkeeping, and the cached reader's selectors, without a server."""

from __future__ import annotations

from aiops.clusters import informer
from aiops.diagnosis.collectors import kubernetes as k8s
from aiops.diagnosis.evidence import EvidenceBundle, Target


def pod(name, ns="shop", rv="1", **labels):
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "labels": labels,
                         "managedFields": [{"manager": "kubectl"}],
                         "annotations": {informer.LAST_APPLIED: "{...}", "keep": "me"}},
            "spec": {"nodeName": "n1"}}  # fmt: skip


class Scripted(informer.Informer):
    """An informer whose list and watch answers are scripted: the bookkeeping is the real one."""

    def __init__(self, pages, watches):
        super().__init__(api=None, path="/api/v1/pods")
        self.pages, self.watches = list(pages), list(watches)

    def _list(self):  # one page per list, as the server would answer it
        items, rv = self.pages.pop(0)
        with self.lock:
            self.objects = {informer._key(o): informer.pack(o) for o in items}
            self.resource_version = rv
        self.synced.set()

    def _stream(self, query):
        assert query["resourceVersion"] == self.resource_version
        if not self.watches:
            self.stop()
            return
        yield from self.watches.pop(0)


def test_watch_events_update_the_store_and_a_410_lists_again():
    inf = Scripted(
        pages=[([pod("a")], "10"), ([pod("a"), pod("c", rv="30")], "30")],
        watches=[
            [{"type": "ADDED", "object": pod("b", rv="11")}, {"type": "MODIFIED", "object": pod("a", rv="12", app="x")},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
             {"type": "DELETED", "object": pod("b", rv="16")}],
            [{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}],
        ],
    )  # fmt: skip
    inf._run()  # list, watch, 410 -> list again, watch until the script ends
    assert inf.relists == 1
    assert sorted(n for _, n in inf.objects) == ["a", "c"]  # the second list replaced the store
    assert inf.resource_version == "30"
    stored = inf.get("shop", "a")
    assert "managedFields" not in stored["metadata"] and stored["metadata"]["annotations"] == {"keep": "me"}


def test_the_cached_reader_serves_what_it_can_evaluate_and_nothing_else():
    cache = informer.Cache(api=None, resources=("/api/v1/pods",))
    pods = cache.informers["/api/v1/pods"]
    pods.objects = {
        ("shop", "a"): informer.pack(pod("a", app="web")),
        ("shop", "b"): informer.pack(pod("b", app="db")),
        ("web", "c"): informer.pack(pod("c")),
    }
    r = k8s.CachedReader(None, EvidenceBundle(Target("Deployment", "x", "shop"), None, None), cache)
    assert r._cached("/api/v1/namespaces/shop/pods", {}) is None  # not synced: the server answers
    pods.synced.set()
    names = lambda body: [o["metadata"]["name"] for o in body["items"]]  # noqa: E731
    assert names(r._cached("/api/v1/namespaces/shop/pods", {"labelSelector": "app=web"})) == ["a"]
    assert names(r._cached("/api/v1/pods", {"fieldSelector": "spec.nodeName=n1", "limit": 2})) == ["a", "b"]
    assert r._cached("/api/v1/namespaces/shop/pods/b", {})["metadata"]["name"] == "b"
    assert r._cached("/api/v1/namespaces/shop/pods/zz", {}) is None  # absent from the cache: ask the server
    assert r._cached("/api/v1/namespaces/shop/pods", {"labelSelector": "app in (web)"}) is None
    assert r._cached("/api/v1/namespaces/shop/pods", {"labelSelector": "app!=web"}) is None
    assert r._cached("/api/v1/namespaces/shop/pods/a/log", {"tailLines": 5}) is None
    assert r._cached("/apis/apps/v1/namespaces/shop/replicasets", {}) is None  # not cached
