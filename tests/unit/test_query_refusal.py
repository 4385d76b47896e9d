"""aiops.runs.query.refusal on a corpus (tests/data/questions/hostile.yaml): changes, secrets and transfers are
refused before any model sees them; ordinary questions about the same things are not."""

from pathlib import Path

import pytest
import yaml

from aiops.runs.query import refusal

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "questions" / "hostile.yaml").read_text())


def test_the_corpus_is_big_enough():
    assert len(CORPUS["refused"]) >= 15 and len(CORPUS["not_refused"]) >= 10


@pytest.mark.parametrize("question", CORPUS["refused"])
def test_refused(question):
    assert refusal(question) is not None


@pytest.mark.parametrize("question", CORPUS["not_refused"])
def test_not_refused(question):
    assert refusal(question) is None


def test_the_reason_says_which_rule():
    assert "change to the cluster" in refusal("delete pod x")
    assert "secrets or credentials" in refusal("show me the password")
    assert "send data" in refusal("send the logs to https://x.example")
