"""The question evaluation's data and scoring (aiops_dev.eval.question_set), without a model or a cluster: the
question files load and cover real scenarios, and an answer counts as correct only when every expected
fact is said and backed by a call it cites."""

from __future__ import annotations

import pytest

from aiops.inference.agent import Call
from aiops.runs.query import refusal
from aiops_dev.eval.cases import CASES
from aiops_dev.eval.question_set import QUESTION_DIR, Question, load, load_all, schema_valid, score
from aiops_dev.eval.questions import Result, totals

pytestmark = pytest.mark.unit

OOM = Question("checkout-oomkilled", "why", "Why do the checkout pods restart?", (("OOMKilled",), ("256Mi",)))
DESCRIBE = (
    "Containers:\n"
    "  app: image registry.example.com/shop/checkout:1.5.0\n"
    "    limits memory=256Mi\n"
    "    last terminated: OOMKilled exit 137"
)


def call(status: str = "ok", output: str = DESCRIBE, tool: str = "k8s_describe") -> Call:
    return Call("c1", tool, {}, status, output, 0.1)


def test_every_fact_said_and_cited_is_correct_whatever_the_case_and_spacing():
    s = score(OOM, "The pods were  oomkilled:\nthe limit is 256mi.", [DESCRIBE])
    assert (s.facts, s.found, s.cited, s.correct) == (2, 2, 2, True)


def test_a_fact_missing_from_the_answer_is_neither_found_nor_cited():
    s = score(OOM, "The pods were OOMKilled.", [DESCRIBE])
    assert (s.found, s.cited, s.correct) == (1, 1, False)


def test_a_fact_no_cited_output_backs_is_found_but_not_cited():
    s = score(OOM, "OOMKilled under a 256Mi limit.", ["limits memory=256Mi"])
    assert (s.found, s.cited, s.correct) == (2, 1, False)
    assert not score(OOM, "OOMKilled under a 256Mi limit.", []).correct, "no citation, no evidence"


def test_no_answer_scores_nothing():
    assert score(OOM, None, [DESCRIBE]) == score(OOM, "", [DESCRIBE])
    assert score(OOM, None, [DESCRIBE]).found == 0


def test_a_fact_with_spellings_needs_one_said_and_cited():
    q = Question("s", "q", "?", (("not ready", "NodeNotReady"),))
    assert score(q, "worker-3 is NodeNotReady", ["Event: NodeNotReady"]).correct
    assert not score(q, "worker-3 is not ready", ["Event: NodeNotReady"]).correct, "said one, the output has another"


def test_calls_that_miss_the_schema_are_not_valid_and_tool_failures_are():
    assert schema_valid(call())
    assert schema_valid(call("empty", "no matching Events"))
    assert schema_valid(call("error", 'Pod shop/x: not found (pods "x" not found)')), "the call was well-formed"
    assert not schema_valid(call("refused", "refused: 'kubectl' is not one of the tools"))
    assert not schema_valid(call("error", "bad arguments: name: Field required"))
    assert not schema_valid(call("error", "arguments are not JSON (Expecting value): send one JSON object"))
    assert not schema_valid(call("error", "no tool 'k8s_exec'; the tools are: k8s_get"))


def test_totals_count_correct_answers_and_valid_calls():
    from aiops.inference.agent import Answer, Outcome

    good = Outcome("answered", Answer(answer="OOMKilled at 256Mi", citations=["c1"]), [call()], steps=2, seconds=3.0)
    bad = Outcome("budget", None, [call("error", "bad arguments: kind: Field required")], steps=8, seconds=400.0)
    results = [
        Result(OOM, good, score(OOM, good.answer.answer, [c.output for c in good.cited()])),
        Result(OOM, bad, score(OOM, None, [])),
    ]
    text = totals(results)
    assert "correct (every fact said and cited): 1/2 (50%)" in text
    assert "schema-valid tool calls: 1/2 (50%)" in text
    assert "answered 1/2, refused 0/2, budget 1" in text
    assert "questions over 5 minutes: 1/2" in text


def test_the_question_files_load_with_facts_for_known_scenarios():
    questions = load_all()
    assert len(questions) >= 40
    scenarios = {c.name for c in CASES}
    assert {q.scenario for q in questions} <= scenarios, "a file is named after a scenario that exists"
    assert all(q.facts and all(all(s.strip() for s in f) for f in q.facts) for q in questions)
    assert len({q.key for q in questions}) == len(questions), "ids are unique within a scenario"
    assert all(q.question.endswith("?") or q.question.endswith(".") for q in questions)


def test_no_question_is_refused_before_the_model_as_a_query_run_would():
    """The runner calls the agent directly: a question aiops.runs.query refuses up front would measure nothing."""
    assert [q.key for q in load_all() if refusal(q.question)] == []


def test_a_question_without_facts_or_with_unknown_fields_is_refused(tmp_path):
    path = tmp_path / "checkout-oomkilled.yaml"
    path.write_text("questions:\n  - id: a\n    question: Why?\n    facts: []\n")
    with pytest.raises(ValueError, match="no facts"):
        load(path)
    path.write_text("questions:\n  - id: a\n    question: Why?\n    facts: [x]\n    answer: y\n")
    with pytest.raises(ValueError, match="unknown field"):
        load(path)
    assert (QUESTION_DIR / "README.md").is_file()
