"""The labelled queries of `aiops-dev eval knowledge` (dev/aiops_dev/eval/knowledge/): enough of them, every label
names a runbook of sop-library/ or a failure scenario, and no query gives its answer away by copying its title or
one of its runbook's symptom phrases."""

import pytest

from aiops_dev.eval import knowledge
from aiops_dev.eval.cases import CASES


@pytest.fixture(scope="module")
def queries() -> list[knowledge.Query]:
    return knowledge.load_queries()


@pytest.fixture(scope="module")
def library() -> dict[str, dict]:
    return knowledge.runbooks()


def test_the_sets_have_the_issues_sizes(queries):
    sizes = {s: sum(1 for q in queries if q.set == s) for s in knowledge.SETS}
    assert sizes["sops"] >= 40 and sizes["incidents"] >= 20 and len(queries) >= 60, sizes
    assert len({q.text for q in queries}) == len(queries), "a query is repeated"


def test_every_label_exists(queries, library):
    scenarios = {c.name for c in CASES}
    for q in queries:
        known = library if q.set == "sops" else scenarios
        assert q.expect <= set(known), f"{q.text!r}: unknown {sorted(q.expect - set(known))}"


def test_no_query_copies_its_answers_title_or_symptom_phrases(queries, library):
    titles = {c.name: c.incident["spec"]["title"] for c in CASES}
    for q in queries:
        for label in q.expect:
            spec = library[label] if q.set == "sops" else None
            title = spec["title"] if spec else titles[label]
            assert title.lower() not in q.text.lower(), f"{q.text!r} contains the title {title!r}"
            phrases = [s for s in (spec or {}).get("match", {}).get("symptoms", []) if " " in s]
            copied = [s for s in phrases if s.lower() in q.text.lower()]
            assert not copied, f"{q.text!r} copies the symptom(s) {copied}"


def test_a_malformed_entry_is_named(tmp_path):
    (tmp_path / "sops.yaml").write_text("- query: pods restart\n  sop: oomkilled\n- query: ''\n  sop: oomkilled\n")
    (tmp_path / "incidents.yaml").write_text("[]\n")
    with pytest.raises(ValueError, match=r"sops.yaml: entry 1: `query` must be a non-empty string"):
        knowledge.load_queries(tmp_path)
    (tmp_path / "sops.yaml").write_text("- query: pods restart\n")
    with pytest.raises(ValueError, match=r"sops.yaml: entry 0: `sop` must be a name or a list of names"):
        knowledge.load_queries(tmp_path)


def test_scores():
    assert knowledge.score([1, 2, None, 4]) == {"r@1": 0.25, "r@3": 0.5, "mrr": (1 + 0.5 + 0.25) / 4}
