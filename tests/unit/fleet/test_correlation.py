"""Fleet correlation rules on an in-memory API server: who is folded, into which parent, and who is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiops.api import INCIDENT
from aiops.api.incident import Cause
from aiops.diagnosis.causes import claims
from aiops.fleet import correlation
from support.fakekube import FakeClient

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
IMAGE = {"kind": "image", "value": "registry.example.com/shop/cart@sha256:" + "ab" * 32}


def incident(name, cluster, minutes=0, causes=(IMAGE,), score=0.8, top=None, namespace="shop", severity="high"):
    suspects = [{"resource": "Deployment/cart", "failureMode": "RecentRollout", "score": score, "reason": "r",
                 "causes": list(causes)}]  # fmt: skip
    if top is not None:  # a stronger suspect without causes ahead of it
        suspects.insert(0, {"resource": "Node/n1", "failureMode": "NodeNotReady", "score": top, "reason": "n"})
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"title": name, "severity": severity, **({"clusterRef": {"name": cluster}} if cluster else {})},
        "status": {
            "phase": "Diagnosed",
            "detectedAt": (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "diagnosis": {
                "rootCause": f"{name} broke",
                "confidence": 70,
                "executionStatus": "COMPLETED",
                "suspects": suspects,
            },  # fmt: skip
        },
    }


def fleet(*incidents) -> FakeClient:
    client = FakeClient()
    for i in incidents:
        client.put(INCIDENT, i)
    return client


def parents(client):
    return [i for i in client.list(INCIDENT) if i["spec"].get("source") == "correlation"]


def test_one_bad_image_on_three_clusters_is_one_parent_with_three_children():
    client = fleet(incident("a", "east"), incident("b", "west", 3), incident("c", None, 9, severity="critical"))
    [key] = correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=10))
    [parent] = parents(client)
    assert key == f"aiops-system/{parent['metadata']['name']}"
    status = parent["status"]
    assert status["phase"] == "Diagnosed"
    assert status["clusters"] == ["east", "local", "west"]
    assert [c["name"] for c in status["children"]] == ["a", "b", "c"]
    assert parent["spec"]["severity"] == "critical"
    assert parent["spec"]["sharedCause"] == IMAGE
    assert len(status["diagnosis"]["evidence"]) == 3  # one citation of each child's own diagnosis
    for name in "abc":
        child = client.get(INCIDENT, name, "shop")
        assert child["status"]["parentRef"] == {"name": parent["metadata"]["name"], "namespace": "aiops-system"}
        assert any(c["type"] == "Correlated" and c["status"] == "True" for c in child["status"]["conditions"])


def test_a_second_pass_writes_nothing():
    client = fleet(incident("a", "east"), incident("b", "west", 3))
    correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=10))
    writes = len(client.writes)
    correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=11))
    assert len(client.writes) == writes


def test_distractors_are_never_folded_in():
    client = fleet(
        incident("a", "east"),
        incident("b", "west", 3),
        incident("other-image", "north", 1, causes=({"kind": "image", "value": "shop/cart:v2"},)),
        incident("too-late", "south", 45),  # same image, outside the window of the group's first
        incident("same-cluster", "east", 2, namespace="web"),  # joins: same cause, another Incident on east
        incident("weak-claim", "north", 2, score=0.3, top=0.9),  # the image only in a weak, lower suspect
        incident("no-causes", "south", 2, causes=()),
    )
    correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=50))
    [parent] = parents(client)
    assert sorted(c["name"] for c in parent["status"]["children"]) == ["a", "b", "same-cluster"]
    for name, ns in [("other-image", "shop"), ("too-late", "shop"), ("weak-claim", "shop"), ("no-causes", "shop")]:
        assert "parentRef" not in client.get(INCIDENT, name, ns)["status"]


def test_one_cluster_alone_is_no_fleet_problem():
    client = fleet(incident("a", "east"), incident("b", "east", 2, namespace="web"))
    assert correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=5)) == []
    assert parents(client) == []


def test_a_late_child_joins_the_existing_parent_and_the_parent_resolves_with_its_last_child():
    client = fleet(incident("a", "east", 5), incident("b", "west", 8))
    [first] = correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=10))
    client.put(INCIDENT, incident("c", "north", 2))  # detected before the others: the group's first moves
    [again] = correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=12))
    assert again == first
    [parent] = parents(client)
    assert [c["name"] for c in parent["status"]["children"]] == ["c", "a", "b"]
    for name in "abc":
        client.patch_status(INCIDENT, name, "shop", {"phase": "Resolved"})
    correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=30))
    [parent] = parents(client)
    assert parent["status"]["phase"] == "Resolved"
    assert parent["status"]["resolvedAt"]


def test_a_storm_past_the_status_limit_is_folded_counted_and_does_not_hold_up_other_groups():
    other = {"kind": "image", "value": "shop/search@sha256:" + "cd" * 32}
    storm = [incident(f"s{i:03d}", f"c{i % 3}", i % 20) for i in range(230)]
    client = fleet(*storm, incident("x", "east", 1, causes=(other,)), incident("y", "west", 2, causes=(other,)))
    assert len(correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=25))) == 2
    big = next(p for p in parents(client) if p["spec"]["sharedCause"] == IMAGE)
    assert big["status"]["childCount"] == 230 and len(big["status"]["children"]) == correlation.MAX_CHILDREN
    assert "230 Incidents on 3 clusters" in big["status"]["conditions"][0]["message"]
    assert all(client.get(INCIDENT, i["metadata"]["name"], "shop")["status"].get("parentRef") for i in storm)
    # The parent resolves with its last child, listed or not.
    for i in storm[:-1]:
        client.patch_status(INCIDENT, i["metadata"]["name"], "shop", {"phase": "Resolved"})
    correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=26))
    assert client.get(INCIDENT, big["metadata"]["name"], "aiops-system")["status"]["phase"] == "Diagnosed"
    client.patch_status(INCIDENT, storm[-1]["metadata"]["name"], "shop", {"phase": "Resolved"})
    correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=27))
    assert client.get(INCIDENT, big["metadata"]["name"], "aiops-system")["status"]["phase"] == "Resolved"


def test_one_failing_group_does_not_hold_up_the_others(monkeypatch):
    other = {"kind": "image", "value": "shop/search@sha256:" + "cd" * 32}
    client = fleet(incident("a", "east"), incident("b", "west", 3),
                   incident("x", "east", 1, causes=(other,)), incident("y", "west", 2, causes=(other,)))  # fmt: skip
    fold = correlation.fold

    def broken_for_one(client, group, *args):
        if group.cause.value == IMAGE["value"]:
            raise RuntimeError("the API server refused the parent")
        return fold(client, group, *args)

    monkeypatch.setattr(correlation, "fold", broken_for_one)
    [parent] = correlation.sweep(client, "aiops-system", T0 + timedelta(minutes=10))
    assert client.get(INCIDENT, parent.split("/")[1], "aiops-system")["spec"]["sharedCause"] == other


def test_claims_take_the_top_suspects_only():
    assert claims(incident("a", "east")) == [Cause.model_validate(IMAGE)]
    assert claims(incident("a", "east", score=0.3, top=0.9)) == []
    assert claims({"metadata": {}, "status": {}}) == []
