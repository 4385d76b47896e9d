"""The kill switch as data: what the fleet-wide ConfigMap and a ManagedCluster's spec.suspend say, and how an
Incident's condition words it. Reading and writing them live is in tests/integration/test_suspend.py."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aiops.api.managedcluster import ManagedClusterSpec
from aiops.clusters import suspension


def test_the_fleet_switch_says_who_when_why_where_and_how_to_lift_it():
    held = suspension.fleet_from(
        {"by": "jane@example.com", "reason": "change freeze", "since": "2026-12-24T18:00:00Z"}, "aiops-system"
    )
    assert held.message() == (
        "suspended fleet-wide (ConfigMap aiops-system/aiops-suspend) by jane@example.com since 2026-12-24T18:00:00Z"
        ": change freeze; lift it with `aiops resume`"
    )
    # An empty ConfigMap (kubectl create configmap aiops-suspend) suspends too.
    empty = suspension.fleet_from(None, "ops").message()
    assert empty.startswith("suspended fleet-wide (ConfigMap ops/aiops-suspend);")


def test_a_cluster_switch_is_its_spec_suspend():
    since = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    spec = ManagedClusterSpec.model_validate({"suspend": {"reason": "DR drill", "by": "sam", "since": since}})
    assert suspension.cluster_from("prod-east", spec).message() == (
        "suspended for cluster prod-east (ManagedCluster prod-east spec.suspend) by sam since 2026-12-24T18:00:00Z"
        ": DR drill; lift it with `aiops resume --cluster prod-east`"
    )
    assert suspension.cluster_from("prod-east", ManagedClusterSpec()) is None
    assert suspension.cluster_from("dev", ManagedClusterSpec.model_validate({"suspend": {}})) is not None


def test_an_invalid_cluster_spec_with_a_suspend_field_still_suspends():
    bad = {"metadata": {"name": "prod"}, "spec": {"suspend": True, "environment": "production"}}
    held = suspension.from_object(bad)
    assert held is not None and held.where == "for cluster prod (ManagedCluster prod, invalid spec)"
    assert suspension.from_object({"metadata": {"name": "prod"}, "spec": {"environment": "moon"}}) is None


def test_spec_suspend_is_an_object_and_says_so():
    with pytest.raises(ValidationError) as exc:
        ManagedClusterSpec.model_validate({"suspend": {"reason": "x" * 1025}})
    assert exc.value.errors()[0]["loc"] == ("suspend", "reason")
