"""pytest imports test modules by basename (no packages under tests/): two files of one name would stop the
whole suite at collection."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique():
    names = Counter(
        p.name for p in TESTS.rglob("test_*.py") if "__init__.py" not in {q.name for q in p.parent.iterdir()}
    )
    assert names[Path(__file__).name] == 1, "the search finds the test modules (this one among them)"
    assert [n for n, c in names.items() if c > 1] == []


REPO = TESTS.parent


def test_the_import_contract_holds():
    """Layers, no cycles, and the runtime never importing the development package (pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def test_the_image_build_context_carries_the_runtime_package_only():
    ignore = (REPO / ".containerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:2] == ["*", "!requirements.lock"], "everything is excluded, then allowed"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"requirements.lock", "pyproject.toml", "README.md", "operator"}
    assert (REPO / ".dockerignore").read_text() == (REPO / ".containerignore").read_text()
    assert not list((REPO / "operator").glob("aiops_dev")), "the development package lives in dev/"
