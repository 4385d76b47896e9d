"""pytest imports test modules by basename (no packages under tests/): two files of one name would stop the
whole suite at collection."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique():
    names = Counter(
        p.name for p in TESTS.rglob("test_*.py") if "__init__.py" not in {q.name for q in p.parent.iterdir()}
    )
    assert [n for n, c in names.items() if c > 1] == []
