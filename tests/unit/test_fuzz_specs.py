"""Fuzzing the CRD specs as the reconcilers read them: any spec becomes the kind's model (which writes back
as itself), or an InvalidSpec whose every problem starts with the field's path; rejecting it writes a status
that fits the kind's status schema, so a bad spec never leaves a half-written status behind.

Specs are the examples/ manifests with fields dropped, retyped or added, documents generated from the
kind's JSON schema, and random mappings (the API server guarantees only that spec is an object).
"""

from datetime import UTC, datetime
from pathlib import Path

import kopf
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from aiops.api import ANALYSIS_RUN, INCIDENT, MANAGED_CLUSTER, SOP
from aiops.controllers.common import InvalidSpec, parse_spec, reject
from aiops.core.status import StatusBuilder
from support.strategies import dns_labels, from_schema, json_values, mutated, texts

EXAMPLES = Path(__file__).parents[2] / "examples"
KINDS = {k.kind: k for k in (INCIDENT, ANALYSIS_RUN, SOP, MANAGED_CLUSTER)}
# Where the reconciler puts a rejected object (None: the kind's Ready condition says it alone).
FAILED_PHASE = {INCIDENT.kind: "Failed", ANALYSIS_RUN.kind: "Failed", SOP.kind: None, MANAGED_CLUSTER.kind: None}


def _example_specs() -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in KINDS and doc.get("apiVersion", "").startswith("aiops"):
                found[doc["kind"]].append(doc["spec"])
    return found


SEEDS = _example_specs()


def specs(kind: str) -> st.SearchStrategy[dict]:
    schema = KINDS[kind].spec.model_json_schema(by_alias=True)
    return st.one_of(
        st.sampled_from(SEEDS[kind]).flatmap(mutated),
        from_schema(schema),
        from_schema(schema).flatmap(mutated),
        st.dictionaries(texts(12), json_values(), max_size=4),
    )


def test_every_kind_has_examples_to_start_from():
    assert all(SEEDS.values()), {kind: len(seeds) for kind, seeds in SEEDS.items()}


def _spec_property(kind: str):
    """The property for one kind, as a test of its own: each kind gets the profile's full count of examples."""

    @given(spec=specs(kind), name=dns_labels())
    def test(spec, name):
        body = {"metadata": {"name": name, "namespace": "shop", "generation": 2}, "spec": spec}
        try:
            model = parse_spec(KINDS[kind], body)
        except InvalidSpec as err:
            assert err.problems and all(p.startswith(("spec", "metadata.name: ")) for p in err.problems), err.problems
            _rejected_status_fits(KINDS[kind], body, err)
            return
        assert KINDS[kind].spec.model_validate(model.wire()) == model

    return test


test_an_incident_spec_parses_or_is_rejected_naming_the_field = _spec_property(INCIDENT.kind)
test_an_analysisrun_spec_parses_or_is_rejected_naming_the_field = _spec_property(ANALYSIS_RUN.kind)
test_an_sop_spec_parses_or_is_rejected_naming_the_field = _spec_property(SOP.kind)
test_a_managedcluster_spec_parses_or_is_rejected_naming_the_field = _spec_property(MANAGED_CLUSTER.kind)


def _rejected_status_fits(kind, body, err):
    events = []
    builder = StatusBuilder(kind, body, datetime(2026, 12, 6, tzinfo=UTC), lambda *e: events.append(e), observe=True)
    patch: dict = {}
    with pytest.raises(kopf.PermanentError):
        reject(builder, kind, err, patch, FAILED_PHASE[kind.kind])
    status = kind.status.model_validate(patch["status"])
    assert [c.reason for c in status.conditions] == ["InvalidSpec"] and events


def test_a_problem_longer_than_a_condition_message_is_still_recorded():
    """Found while fuzzing: a map key runs into the problem's field path, and a path past the Ready condition's
    32768 characters made reject() raise ValidationError instead of writing the status."""
    body = {"metadata": {"name": "hub", "generation": 1}, "spec": {"labels": {"- " * 16347: None}}}
    with pytest.raises(InvalidSpec) as err:
        parse_spec(MANAGED_CLUSTER, body)
    _rejected_status_fits(MANAGED_CLUSTER, body, err.value)
