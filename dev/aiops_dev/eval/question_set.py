"""The questions about the failure scenarios (questions/<scenario>.yaml, format: questions/README.md) and how
an answer to one is scored.

Scoring is deterministic and needs no model: a fact counts as found when it appears in the answer (case
and whitespace aside), and as cited when it also appears in the output of a tool call the answer cites, so
an answer is correct only when every fact is both said and backed by evidence the model read. A fact
given as a list is satisfied by any one of its spellings ("OOMKilled" or "out of memory"), which must be
found and cited alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from aiops.inference.agent import Call

QUESTION_DIR = Path(__file__).with_name("questions")
# The registry's words for a call whose arguments did not fit (aiops.tools.registry.Registry.parse): not a
# failure of the tool but of the model's call.
BAD_ARGUMENTS = ("no tool ", "arguments are not JSON", "arguments must be a JSON object", "bad arguments:")

Fact = tuple[str, ...]  # the spellings of one fact, any one of which will do


@dataclass(frozen=True)
class Question:
    scenario: str
    id: str
    question: str
    facts: tuple[Fact, ...]
    notes: str = ""

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.id}"


def _fact(raw: object, where: str) -> Fact:
    spellings = tuple(raw) if isinstance(raw, list) else (raw,)
    if not spellings or not all(isinstance(s, str | int) and str(s).strip() for s in spellings):
        raise ValueError(f"{where}: a fact is a non-empty string or a list of them, not {raw!r}")
    return tuple(str(s) for s in spellings)


def load(path: Path) -> list[Question]:
    """One scenario's questions; the file is named after the scenario."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    questions = []
    for i, item in enumerate(data.get("questions") or []):
        where = f"{path.name} question {i + 1}"
        if not isinstance(item, dict) or not {"id", "question", "facts"} <= item.keys():
            raise ValueError(f"{where}: needs id, question and facts")
        if unknown := set(item) - {"id", "question", "facts", "notes"}:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        facts = tuple(_fact(f, where) for f in item["facts"] or [])
        if not facts:
            raise ValueError(f"{where}: no facts: a question must say what a correct answer contains")
        text = str(item["question"]).strip()
        questions.append(Question(path.stem, str(item["id"]), text, facts, str(item.get("notes") or "")))
    return questions


def load_all(directory: Path = QUESTION_DIR) -> list[Question]:
    """Every question, by scenario name then in file order."""
    return [q for path in sorted(directory.glob("*.yaml")) for q in load(path)]


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Score:
    facts: int
    found: int  # facts said in the answer
    cited: int  # facts said in the answer and present in a cited call's output

    @property
    def correct(self) -> bool:
        return self.cited == self.facts


def score(question: Question, answer: str | None, cited_outputs: Iterable[str]) -> Score:
    """How many of the question's facts the answer says, and how many of those a cited output backs."""
    said = normalise(answer or "")
    evidence = [normalise(o) for o in cited_outputs]
    found = cited = 0
    for fact in question.facts:
        spellings = [normalise(s) for s in fact]
        in_answer = [s for s in spellings if s in said]
        found += bool(in_answer)
        cited += any(s in out for s in in_answer for out in evidence)
    return Score(len(question.facts), found, cited)


def schema_valid(call: Call) -> bool:
    """Whether the model's call named a tool and fitted its argument schema (what it then found aside)."""
    if call.status == "refused":
        return False
    return not (call.status == "error" and call.output.startswith(BAD_ARGUMENTS))
