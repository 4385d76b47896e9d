"""Fuzzing what a model (or the server in front of it) answers: the diagnosis, the SOP draft, the anomaly
explanation, the query agent's steps, the chat completion around them and its Retry-After header. Any reply
is either used or turned into problems worded for the model (the repair message); nothing a model writes
raises, since the callers promise "never raises for what the model or its server does".

Replies are documents generated from each answer's JSON schema, the same with fields dropped, retyped or
added, and arbitrary text.
"""

import email.utils
import json
import math
import time

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from aiops.anomaly.explain import AnomalyExplanation
from aiops.api.common import DNS_LABEL
from aiops.inference.agent import USABLE, Answer, Outcome, ToolOutput, ToolSpec, _Loop, step_schema
from aiops.inference.gateway import (
    RESOURCE_PATTERN,
    ModelAnswer,
    _cited,
    _Completion,
    _retry_after,
    _validate,
)
from aiops.sops import analysis
from support.strategies import STEP_IDS, from_schema, json_text, mutated, texts


def replies(docs: st.SearchStrategy) -> st.SearchStrategy[str]:
    """Message contents: a document as JSON, the same mutated, or any text a decoder may meet."""
    return st.one_of(docs.map(json.dumps), docs.flatmap(mutated).map(json.dumps), json_text())


def completion(content: str | None, finish_reason: str = "stop", refusal: str | None = None, tool_calls=None):
    message = {"content": content, "refusal": refusal, "tool_calls": tool_calls}
    return _Completion.model_validate({"choices": [{"message": message, "finish_reason": finish_reason}]})


FINISH = st.sampled_from(["stop", "length", "content_filter"])
REFUSAL = st.none() | texts()


def _validated(answer_type: type[BaseModel], content, finish, refusal, check=None, max_tokens: int = 2048):
    """The gateway's verdict on one reply, with what holds of every verdict: an answer or problems, never both."""
    answer, problems = _validate(completion(content, finish, refusal), answer_type, check, max_tokens)
    assert (answer is None) == bool(problems) and all(isinstance(p, str) and p for p in problems), problems
    if answer is not None:
        answer_type.model_validate(answer.model_dump())  # what was accepted is within every bound
    return answer


EVIDENCE = {"pod-status", "events-1"}
DIAGNOSES = from_schema(
    ModelAnswer.model_json_schema(by_alias=True), {RESOURCE_PATTERN: st.just("Deployment/checkout")}
)


@given(replies(DIAGNOSES | DIAGNOSES.map(lambda d: d | {"evidence": sorted(EVIDENCE)})), FINISH, REFUSAL)
def test_a_diagnosis_is_used_or_sent_back_with_its_problems(content, finish, refusal):
    answer = _validated(ModelAnswer, content, finish, refusal, lambda a: _cited(a, EVIDENCE))
    assert answer is None or set(answer.evidence) <= EVIDENCE


@given(replies(from_schema(AnomalyExplanation.model_json_schema(by_alias=True))), FINISH, REFUSAL)
def test_an_anomaly_explanation_is_used_or_sent_back(content, finish, refusal):
    _validated(AnomalyExplanation, content, finish, refusal, max_tokens=400)


@given(replies(from_schema(analysis.SOPAnswer.model_json_schema(by_alias=True), {DNS_LABEL: STEP_IDS})), FINISH)
def test_an_sop_draft_that_passes_the_check_becomes_an_sop(content, finish):
    """What _with_model does with an accepted answer: check() promised that it converts."""
    answer = _validated(analysis.SOPAnswer, content, finish, None, analysis.check, analysis.MIN_MAX_TOKENS)
    if answer is None:
        return
    spec = analysis.to_spec(answer)
    name = analysis.draft_name(spec.title, "fallback")
    text, why = analysis.markdown(name, spec)
    assert (text is None) != (why is None)
    findings = analysis.merge(analysis.lint_findings(spec), analysis.model_findings(answer))
    assert len(findings) <= analysis.MAX_FINDINGS


TOOLS = [
    ToolSpec(
        "pods",
        "Lists pods.",
        {"type": "object", "properties": {"namespace": {"type": "string", "maxLength": 63}}, "required": ["namespace"]},
    ),
    ToolSpec("events", "Lists events.", {"type": "object", "properties": {}}),
]
TOOL_CALLS = st.none() | st.lists(
    st.fixed_dictionaries(
        {
            "function": st.fixed_dictionaries(
                {"name": st.sampled_from(["pods", "rm"]) | texts(), "arguments": json_text()}
            )
        },
        optional={"id": texts(12)},
    ),
    max_size=3,
)


def _run_tool(name: str, arguments: dict) -> ToolOutput:
    return ToolOutput(("ok", "empty", "error")[len(arguments) % 3], f"{name}: {len(arguments)} argument(s)")


# Found while fuzzing: a reply nested deeper than the JSON decoder's recursion limit raised RecursionError out
# of the loop, in json mode (the content) and in native mode (a tool call's arguments).
@example(content="[" * 100_000, native=False, tool_calls=None, prior=["pods"])
@example(content="", native=True, tool_calls=[{"function": {"name": "pods", "arguments": "[" * 100_000}}], prior=[])
@given(
    replies(from_schema(step_schema(TOOLS))),
    st.booleans(),
    TOOL_CALLS,
    st.lists(st.sampled_from(["pods", "events", "rm"]), max_size=3),
)
def test_a_query_step_runs_tools_answers_or_asks_again(content, native, tool_calls, prior):
    out = Outcome(status="invalid")
    loop = _Loop(out, TOOLS, _run_tool, time.monotonic(), "b0undary")
    for name in prior:  # calls made in earlier steps, which an answer may cite
        loop.run(name, {"namespace": "shop"})
    messages = [{"role": "user", "content": "Why is checkout down?"}]
    after = loop.step(completion(content, tool_calls=tool_calls), messages, native=native)
    if out.answer is None:
        assert len(after) > len(messages)
        return
    usable = {c.id for c in out.calls if c.status in USABLE}
    assert out.answer.refusal or (out.answer.citations and set(out.answer.citations) <= usable)
    Answer.model_validate(out.answer.model_dump())


COMPLETION = {"model": "m", "choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}], "usage": {}}


@given(st.one_of(mutated(COMPLETION).map(json.dumps), json_text()).map(str.encode) | st.binary())
def test_a_server_reply_is_a_completion_or_a_validation_error(raw):
    """The SDK's reply is read by _Completion, and a ValidationError is how the gateway learns it is not one."""
    try:
        _Completion.model_validate_json(raw)
    except ValidationError:
        pass


# Found while fuzzing: "nan" read as a float stayed NaN through min/max, and time.sleep(nan) raised ValueError.
@example(value="nan")
@given(
    st.one_of(
        st.floats().map(str),
        st.integers().map(str),
        st.datetimes().map(lambda d: email.utils.format_datetime(d, usegmt=False)),
        texts(),
    )
)
def test_retry_after_is_a_wait_within_the_cap_or_nothing(value):
    wait = _retry_after(value, 30.0)
    assert wait is None or (math.isfinite(wait) and 0 <= wait <= 30.0), wait
