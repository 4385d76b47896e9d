"""The committed CRDs are exactly what the models generate, and structurally sound."""

from pathlib import Path

import pytest
import yaml

from aiops.api import KINDS
from aiops.api.common import Model
from aiops_dev import crdgen

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_committed_yaml_matches_models(kind):
    path = CRD_DIR / crdgen.filename(kind)
    assert path.read_text() == crdgen.render(kind), f"{path} is stale: run `aiops-dev crds` and commit"


def walk(schema, path="$"):
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind):
    crd = yaml.safe_load(crdgen.render(kind))
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] and crd["spec"]["names"]["categories"] == ["aiops"]
    for path, node in walk(version["schema"]["openAPIV3Schema"]):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "default", "title"} & node.keys(), path
        assert not ("properties" in node and "additionalProperties" in node), path
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions"} <= status.keys()
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_enums_and_bounds_reach_the_schema():
    spec = yaml.safe_load(crdgen.render(KINDS[2]))["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert spec["spec"]["properties"]["severity"]["enum"] == ["critical", "high", "warning", "low", "info"]
    assert set(spec["spec"]["required"]) == {"title", "severity"}
    confidence = spec["status"]["properties"]["diagnosis"]["properties"]["confidence"]
    assert (confidence["minimum"], confidence["maximum"]) == (0, 100)


def test_unsupported_constructs_are_refused():
    class Bad(Model):
        choice: int | str

    with pytest.raises(crdgen.SchemaError, match="choice"):
        crdgen.structural_schema(Bad)
