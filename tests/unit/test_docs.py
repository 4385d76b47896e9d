"""The field reference is generated from the models and stays in step with them; the guides are linked from the
README, their links resolve and the settings guide names every AIOPS_* setting."""

from __future__ import annotations

import re
from pathlib import Path

from aiops import settings
from aiops.api import KINDS
from aiops_dev import docgen
from aiops_dev.crdgen import structural_schema

REPO = Path(__file__).resolve().parents[2]
DOCS = (
    "docs/operations.md",
    "docs/security.md",
    "docs/notifications.md",
    "docs/fleet.md",
    "docs/gitops.md",
    "docs/reliability.md",
    "examples/argocd/README.md",
    *(f"docs/reference/{docgen.filename(k)}" for k in KINDS),
)


def test_committed_reference_matches_the_models():
    stale = [str(path) for path, _, _ in docgen.check(REPO)]
    assert not stale, f"stale: {stale}; run `aiops-dev docs` and commit"


def _paths(node: dict, path: str) -> list[str]:
    out = [path]
    if node.get("type") == "array" and "properties" in (node.get("items") or {}):
        node, path = node["items"], path + "[]"
    for name, sub in (node.get("properties") or {}).items():
        out += _paths(sub, f"{path}.{name}")
    return out


def test_every_field_has_a_row_with_its_bounds():
    for kind in KINDS:
        page = docgen.render(kind)
        for model, root in ((kind.spec, "spec"), (kind.status, "status")):
            schema = structural_schema(model)
            for name, sub in schema["properties"].items():
                for path in _paths(sub, f"{root}.{name}"):
                    assert f"| `{path}` |" in page, f"{kind.kind}: {path} missing"
    incident = docgen.render(next(k for k in KINDS if k.kind == "Incident"))
    row = next(line for line in incident.splitlines() if line.startswith("| `spec.window.lookbackMinutes` |"))
    assert "`integer`" in row and "1–10080" in row
    row = next(line for line in incident.splitlines() if line.startswith("| `spec.severity` |"))
    assert "| yes |" in row and "`critical` \\| `high`" in row


def test_rules_come_from_the_validators():
    run = docgen.render(next(k for k in KINDS if k.kind == "AnalysisRun"))
    assert "| `spec` | inputs.text (the runbook) is required for type sopAnalysis |" in run
    assert "| `spec.inference` | give either endpoint or pool, not both |" in run
    sop = docgen.render(next(k for k in KINDS if k.kind == "SOP"))
    assert "steps: the steps form a cycle (…)" in sop


def test_readme_links_the_docs():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Documentation") :].split("\n## ", 1)[0]
    for target in ("docs/operations.md", "docs/security.md", "docs/reference/README.md", "examples/argocd/README.md"):
        assert f"]({target})" in section, target
    assert readme.index("## Documentation") < readme.index("## What it is"), "near the top"


def test_links_resolve():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    checked: dict[str, int] = {}
    for doc in (*DOCS, "README.md", "docs/reference/README.md"):
        path = REPO / doc
        checked[doc] = 0
        for target in link.findall(re.sub(r"`[^`\n]*`", "", path.read_text())):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{doc}: broken link {target}"
            checked[doc] += 1
    # The pattern found the links it is meant to check: the README's to the guides, the index's to every kind.
    assert checked["README.md"] >= 4 and checked["docs/reference/README.md"] >= len(KINDS), checked
    assert checked["docs/operations.md"] and checked["docs/security.md"], checked


def test_operations_guide_names_every_setting():
    documented = set(re.findall(r"AIOPS_[A-Z0-9_]+", settings.__doc__ or ""))
    assert len(documented) > 10
    guide = (REPO / "docs/operations.md").read_text()
    missing = sorted(name for name in documented if name not in guide)
    assert not missing, f"docs/operations.md does not mention {missing}"
