"""Redaction hides every secret of the corpus, keeps its near misses, and can be undone locally."""

import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from aiops.diagnosis.redaction import KINDS, PLACEHOLDER, Redactor
from aiops_dev.eval.redaction import evaluate, main

CORPUS_PATH = Path(__file__).resolve().parents[1] / "data" / "redaction_corpus.yaml"
CORPUS = yaml.safe_load(CORPUS_PATH.read_text())


def test_corpus_is_large_and_covers_every_kind():
    near_misses = [e for e in CORPUS if not e["expect"]]
    assert len(CORPUS) >= 60 and len(near_misses) >= 20
    assert len({e["name"] for e in CORPUS}) == len(CORPUS)
    assert {i["kind"] for e in CORPUS for i in e["expect"]} == set(KINDS)


@pytest.mark.parametrize("entry", CORPUS, ids=[e["name"] for e in CORPUS])
def test_corpus_entry(entry):
    text = entry["text"]
    redactor = Redactor()
    out = redactor.redact(text)
    placeholders = [(m.group(1), redactor.restore(m.group())) for m in PLACEHOLDER.finditer(out)]
    for item in entry["expect"]:
        assert item["value"] in text, "corpus error: expected value not in the text"
        assert item["value"] not in out
        assert any(kind == item["kind"] and item["value"] in value for kind, value in placeholders), item
    for keep in entry.get("keep", []):
        assert keep in text, "corpus error: keep string not in the text"
        assert keep in out
    # The expect list is complete: nothing else was redacted.
    assert redactor.report() == dict(Counter(i["kind"] for i in entry["expect"]))
    assert redactor.restore(out) == text
    assert redactor.redact(out) == out
    assert redactor.report() == dict(Counter(i["kind"] for i in entry["expect"])), "re-redacting counted again"


def test_placeholders_are_stable_across_calls():
    redactor = Redactor()
    first = redactor.redact("login from 10.0.0.7 by alice@example.com")
    second = redactor.redact("alice@example.com again, then bob@example.com from 10.0.0.8 and 10.0.0.7")
    assert first == "login from <IPV4_1> by <EMAIL_1>"
    assert second == "<EMAIL_1> again, then <EMAIL_2> from <IPV4_2> and <IPV4_1>"
    assert Redactor().redact("bob@example.com") == "<EMAIL_1>", "numbering belongs to the instance"


def test_report_counts_occurrences_and_accumulates():
    redactor = Redactor()
    redactor.redact("10.0.0.1 10.0.0.1 10.0.0.2 password=hunter2")
    assert redactor.report() == {"SECRET": 1, "IPV4": 3}
    redactor.redact("10.0.0.1")
    assert redactor.report() == {"SECRET": 1, "IPV4": 4}


def test_jwt_in_bearer_header_counts_once():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlMDEyMzQ1Njc4OQ"
    redactor = Redactor()
    assert redactor.redact(f"Authorization: Bearer {jwt}") == "Authorization: Bearer <JWT_1>"
    assert redactor.report() == {"JWT": 1}


def test_restore_shows_real_values_in_a_model_answer():
    redactor = Redactor()
    redactor.redact("postgres://app:s3cr3t-pw@10.0.3.17:5432/orders refused")
    answer = "The app cannot reach <IPV4_1>; <DSN_PASSWORD_1> was rejected. <IPV4_9> is unknown."
    assert redactor.restore(answer) == "The app cannot reach 10.0.3.17; s3cr3t-pw was rejected. <IPV4_9> is unknown."


def test_foreign_placeholders_survive_the_round_trip():
    # Text redacted elsewhere holds placeholders this instance never minted; they must not collide.
    text = "<EMAIL_1> forwarded to carol@example.com"
    redactor = Redactor()
    out = redactor.redact(text)
    assert out == "<EMAIL_1> forwarded to <EMAIL_2>"
    assert redactor.restore(out) == text


def test_redaction_runs_until_nothing_changes():
    # The IPv4 hid the `::1` after it (no address starts right after a digit); its placeholder does not.
    redactor = Redactor()
    out = redactor.redact("peer 10.0.0.1::1 up")
    assert out == "peer <IPV4_1><IPV6_1> up"
    assert redactor.redact(out) == out and redactor.report() == {"IPV6": 1, "IPV4": 1}


def test_restore_expands_placeholders_inside_values():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlMDEyMzQ1Njc4OQ"
    text = f'{{"client_secret": "v2 {jwt}"}}'
    redactor = Redactor()
    out = redactor.redact(text)
    assert out == '{"client_secret": "<SECRET_1>"}'
    assert redactor.restore(out) == text


def test_a_fresh_redactor_leaves_redacted_text_alone():
    text = "\n".join(e["text"] for e in CORPUS)
    out = Redactor().redact(text)
    again = Redactor()
    assert again.redact(out) == out
    assert again.report() == {}


def test_hostile_megabyte_line_is_linear():
    # Runs that made earlier versions of these patterns quadratic (each start rescanning the run).
    units = [
        "a",
        ":",
        "1.",
        "password=",
        "password=a ",
        "host=a ",
        "postgres://a:",
        "curl ",
        "-----BEGIN PRIVATE KEY-----",
    ]
    line = "".join(unit * (128 * 1024 // len(unit)) for unit in units)
    assert len(line) >= 1_000_000
    start = time.perf_counter()
    Redactor().redact(line)
    # Linear takes well under a second; the quadratic patterns this guards against took hours. The bound
    # is loose so that a loaded 2-core machine does not fail it.
    assert time.perf_counter() - start < 30


def test_eval_finds_full_recall_and_no_false_positives():
    result = evaluate(CORPUS_PATH)
    total = result["total"]
    assert total["expected"] == sum(len(e["expect"]) for e in CORPUS)
    assert total["recall"] == 1.0
    assert total["leaked"] == 0 and total["unexpected"] == 0 and total["false_positives"] == 0
    assert result["near_misses"] == sum(1 for e in CORPUS if not e["expect"])


def test_eval_attributes_false_positives_and_leaks(tmp_path):
    corpus = tmp_path / "corpus.yaml"
    corpus.write_text(
        yaml.safe_dump(
            [
                {"name": "ip-in-keep", "text": "peer 10.0.0.9 up", "expect": [], "keep": ["peer 10.0.0.9"]},
                {"name": "leak", "text": "passphrase is hunter2", "expect": [{"kind": "SECRET", "value": "hunter2"}]},
            ]
        )
    )
    result = evaluate(corpus)
    assert result["kinds"]["IPV4"]["false_positives"] == 1 and result["kinds"]["IPV4"]["unexpected"] == 1
    assert result["kinds"]["SECRET"] == {
        "expected": 1,
        "redacted": 0,
        "leaked": 1,
        "unexpected": 0,
        "false_positives": 0,
        "recall": 0.0,
    }


def test_eval_command_prints_the_table(capsys):
    assert main([str(CORPUS_PATH)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "expected", "redacted", "recall", "leaked", "unexpected", "false_pos"]
    assert any(line.split()[:1] == ["total"] and "1.000" in line for line in lines)
