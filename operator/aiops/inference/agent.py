"""The question-answering loop of `query` runs: a model, read-only tools, and an answer that cites them.

    outcome = answer(config, question, tools, run_tool, budget)

Each step sends the conversation so far and gets either tool calls or the answer:
- native mode (AIOPS_LLM_TOOL_CALLING=native): OpenAI tool calling (`tools=` and `tool_calls`); the answer is
  the final message's content, a JSON object (`Answer`).
- json mode (the default): every reply is one JSON object validated against a schema that lists each tool
  with its own argument schema and the answer (`step_schema`), sent as the json_schema response format, so
  a grammar-constrained server (llama.cpp, vLLM) can only produce a well-formed call. For servers without
  tool calling, and small models that call tools more reliably this way.

Tool results come back fenced as untrusted data (the caller's `run_tool` fences them): a log line that says
"ignore your instructions" is data. A call to a tool that is not in the list is never run; it is recorded
as refused and the model is told which tools exist. The answer must cite the ids of the tool calls it
relies on (c1, c2, ...); an answer that cites unknown or failed calls, or none, is sent back with the
problem, like any schema error. Budgets bound the loop: model replies (steps), tokens, and wall time.

Never raises for what the model or its server do: the outcome's status says how it ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from pydantic import Field, ValidationError

from aiops.api.common import Model
from aiops.inference.gateway import GatewayConfig, _Call, _describe, _strict, _Unreachable
from aiops.inference.prompts import QUERY_PROMPT_VERSION, build_query_messages, fence, new_boundary, repair_message

Mode = Literal["native", "json"]
Ending = Literal["answered", "refused", "budget", "invalid", "unreachable"]
USABLE = frozenset({"ok", "empty", "truncated"})  # tool results an answer may cite
EXCERPT = 300


class Answer(Model):
    answer: str = Field(min_length=1, max_length=4000, description="The answer, in plain words.")
    citations: list[str] = Field(
        default_factory=list, max_length=12, description="Ids of the tool calls the answer relies on, e.g. c1."
    )
    refusal: str | None = Field(
        default=None,
        max_length=500,
        description="Set, instead of answering, when the question asks to change the cluster, to reveal "
        "secrets or credentials, or for anything beyond reading it: why it is refused.",
    )


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # the arguments' JSON schema


@dataclass(frozen=True)
class ToolOutput:
    status: str  # ok | empty | error | truncated (the tool's), refused (not a tool) or repeated (not run again)
    text: str  # redacted and capped by the tool layer; fenced here as untrusted data


RunTool = Callable[[str, dict[str, Any]], ToolOutput]


@dataclass
class Call:
    id: str
    tool: str
    arguments: dict[str, Any]
    status: str
    output: str
    seconds: float

    @property
    def excerpt(self) -> str:
        return self.output[:EXCERPT]


@dataclass(frozen=True)
class Budget:
    steps: int = 8  # model replies
    tokens: int = 24_000  # prompt + completion, summed over every reply
    seconds: float = 240.0  # wall time, tool calls included


@dataclass
class Outcome:
    status: Ending
    answer: Answer | None = None
    calls: list[Call] = field(default_factory=list)
    error: str | None = None
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    model: str | None = None
    problems: list[str] = field(default_factory=list)  # every rejected reply's problems, in order
    prompt_version: str = QUERY_PROMPT_VERSION

    def cited(self) -> list[Call]:
        ids = set(self.answer.citations) if self.answer else set()
        return [c for c in self.calls if c.id in ids]


def step_schema(tools: list[ToolSpec], bounds: bool = True) -> dict[str, Any]:
    """The json-mode reply: one of {"action": "call", "tool": <name>, "arguments": <its schema>} per tool, or
    {"action": "answer", ...Answer}. Argument schemas keep their own $defs, hoisted to the top."""
    keep = frozenset({"maxLength", "maxItems"}) if bounds else frozenset()
    options, defs = [], {}
    for t in tools:
        params = _strict(t.parameters, keep)
        defs |= params.pop("$defs", {})
        options.append(
            {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["call"]},
                    "tool": {"type": "string", "enum": [t.name]},
                    "arguments": params,
                },
                "required": ["action", "tool", "arguments"],
                "additionalProperties": False,
            }
        )
    final = _strict(Answer.model_json_schema(by_alias=True), keep)
    final["properties"] = {"action": {"type": "string", "enum": ["answer"]}, **final["properties"]}
    final["required"] = ["action", *final["required"]]
    options.append(final)
    schema: dict[str, Any] = {"anyOf": options}
    if defs:
        schema["$defs"] = defs
    return schema


def answer(
    config: GatewayConfig,
    question: str,
    context: str | None,
    tools: list[ToolSpec],
    run_tool: RunTool,
    budget: Budget = Budget(),
    *,
    mode: Mode = "json",
    opening: Sequence[tuple[str, dict[str, Any]]] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Answers `question` (with `context`: target, window) using `tools`; see the module doc. `opening`: calls
    made before the first reply (the caller's survey of what the question names), shown to the model as its
    first results."""
    started = time.monotonic()
    schema = step_schema(tools, config.schema_bounds)
    boundary = new_boundary()
    in_prompt = schema if config.structured_output == "json_object" and mode == "json" else None
    listed = [(t.name, t.description, t.parameters) for t in tools]
    out = Outcome(status="invalid")
    # The opening survey runs like the model's own calls (ids c1.., the same checks) and opens the conversation.
    loop = _Loop(out, tools, run_tool, started, boundary)
    read = [loop.fenced(loop.run(name, arguments)) for name, arguments in opening]
    messages: list[dict[str, Any]] = build_query_messages(
        question, context, listed, native=mode == "native", schema=in_prompt, boundary=boundary, evidence=read
    )
    definitions = [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]
    with openai.OpenAI(
        base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0
    ) as client:
        call = _Call(config, client, sleep, "query_step", schema, QUERY_PROMPT_VERSION)
        try:
            while (why := loop.over(budget, call)) is None:
                reply = call.complete(messages, tools=definitions if mode == "native" else None)
                out.steps += 1
                messages = loop.step(reply, messages, native=mode == "native")
                if out.answer is not None:
                    break
            else:
                out.status, out.error = "budget", why
        except _Unreachable as exc:
            out.status, out.error = "unreachable", str(exc)
    out.prompt_tokens, out.completion_tokens, out.model = call.prompt_tokens, call.completion_tokens, call.model
    out.seconds = round(time.monotonic() - started, 3)
    if out.answer is not None:
        out.status = "refused" if out.answer.refusal else "answered"
    elif out.status == "invalid" and out.error is None:
        out.error = f"no valid answer; last problems: {'; '.join(out.problems[-3:])}"
    return out


@dataclass
class _Loop:
    out: Outcome
    tools: list[ToolSpec]
    run_tool: RunTool
    started: float
    boundary: str

    def over(self, budget: Budget, call: _Call) -> str | None:
        """Why the loop must stop before another model reply, or None."""
        made = f"{len(self.out.calls)} tool call(s) made"
        if self.out.steps >= budget.steps:
            return f"the step budget ({budget.steps} model replies) ran out before an answer; {made}"
        used = call.prompt_tokens + call.completion_tokens
        if used >= budget.tokens:
            return f"the token budget ({budget.tokens}) ran out before an answer ({used} used); {made}"
        if time.monotonic() - self.started >= budget.seconds:
            return f"the time budget ({budget.seconds:g}s) ran out before an answer; {made}"
        return None

    def step(self, reply: Any, messages: list[dict[str, Any]], *, native: bool) -> list[dict[str, Any]]:
        """The conversation after this reply: tool results appended, or a repair request; sets out.answer."""
        if not reply.choices:
            return self._repair(messages, None, ["the reply had no choices"])
        message = reply.choices[0].message
        if native and message.tool_calls:
            assistant = {
                "role": "assistant",
                "content": message.content or "",
                "tool_calls": [
                    {
                        "id": tc.id,
                        "type": "function",
                        "function": {"name": tc.function.name, "arguments": tc.function.arguments},
                    }
                    for tc in message.tool_calls
                ],
            }
            results = []
            for tc in message.tool_calls:
                done = self.run(tc.function.name, _arguments(tc.function.arguments))
                results.append({"role": "tool", "tool_call_id": tc.id, "content": self.fenced(done)})
            return [*messages, assistant, *results]
        content = message.content or ""
        if message.refusal:
            return self._repair(messages, content, [f"the reply was a refusal: {message.refusal}"])
        try:
            data = json.loads(content)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the decoder goes
            return self._repair(messages, content, [f"reply: not one JSON object ({exc}), it began {content[:60]!r}"])
        if not native and isinstance(data, dict) and data.get("action") == "call":
            tool = data.get("tool")
            arguments = data.get("arguments")
            done = self.run(str(tool), arguments if isinstance(arguments, dict) else {})
            note = {"role": "user", "content": f"{self.fenced(done)}\n\nCall another tool or answer."}
            return [*messages, {"role": "assistant", "content": content}, note]
        if isinstance(data, dict):
            data.pop("action", None)
        try:
            final = Answer.model_validate(data, strict=True)
        except ValidationError as exc:
            return self._repair(messages, content, [_describe(e, content) for e in exc.errors()])
        problems = self._check(final)
        if problems:
            return self._repair(messages, content, problems)
        self.out.answer = final
        return messages

    def run(self, name: str, arguments: dict[str, Any]) -> Call:
        number = f"c{len(self.out.calls) + 1}"
        began = time.monotonic()
        same = next((c for c in self.out.calls if c.tool == name and c.arguments == arguments), None)
        if name not in {t.name for t in self.tools}:
            listed = ", ".join(t.name for t in self.tools)
            result = ToolOutput("refused", f"refused: {name!r} is not one of the tools; the tools are: {listed}")
        elif same is not None:  # small models loop on one call: the answer is already in the conversation
            result = ToolOutput("repeated", f"the same call as {same.id} (status {same.status}): its result is above")
        else:
            result = self.run_tool(name, arguments)
        done = Call(number, name[:64], arguments, result.status, result.text, round(time.monotonic() - began, 3))
        self.out.calls.append(done)
        return done

    def fenced(self, done: Call) -> str:
        return fence("TOOL_RESULT", self.boundary, done.output, f" id={done.id} tool={done.tool} status={done.status}")

    def _check(self, final: Answer) -> list[str]:
        if final.refusal:
            return []
        usable = {c.id for c in self.out.calls if c.status in USABLE}
        unknown = [i for i in final.citations if i not in usable]
        if unknown:
            given = ", ".join(sorted(usable)) or "none yet: call a tool first"
            return [f"citations: {', '.join(unknown)} are not tool calls that returned a result; cite only: {given}"]
        if not final.citations:
            if usable:
                return ["citations: cite the ids of the tool calls your answer relies on"]
            return ["citations: an answer must rest on tool results: call a tool first, then answer citing it"]
        return []

    def _repair(self, messages: list[dict[str, Any]], content: str | None, problems: list[str]) -> list[dict[str, Any]]:
        self.out.problems.extend(f"step {self.out.steps}: {p}" for p in problems)
        return [*messages, {"role": "assistant", "content": content or ""}, repair_message(problems)]


def _arguments(raw: str) -> dict[str, Any]:
    """Native tool-call arguments, a JSON string; anything else becomes {"_unparsed": raw} so the tool's
    validation names the problem."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        return {"_unparsed": raw[:200]}
    return value if isinstance(value, dict) else {"_unparsed": raw[:200]}
