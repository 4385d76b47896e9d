"""One diagnosis from an OpenAI-compatible model server, schema-validated, repaired and retried.

diagnose() never raises for what the server or the model does: the caller gets a GatewayResult
whose status says whether to use the answer ("completed") or fall back to the analyzers
("invalid": the model never produced a valid answer; "unreachable": the server could not be
used). It raises only for programming errors (bad config, no evidence to cite).

ask() is the machinery under it for any answer shape: a pydantic model whose JSON schema is sent as
the response format, the reply validated against the model (plus the caller's own checks), the
problems fed back to the model (bounded), transport errors retried with backoff. The SOP analysis
(aiops.sops.analysis) uses it with its own prompt and answer model.

The SDK's own retries are off (max_retries=0) so every request is counted and the backoff is ours.
diagnose() and ask() block (real sleeps, sync HTTP): from a kopf handler, run them in a thread.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiops.api.common import Model
from aiops.api.incident import EvidenceItem, Persona, Suspect
from aiops.inference.prompts import PROMPT_VERSION, IncidentContext, build_messages, repair_message

Status = Literal["completed", "invalid", "unreachable"]
A = TypeVar("A", bound=BaseModel)


RESOURCE_PATTERN = r"^[A-Za-z][A-Za-z0-9]*/[a-z0-9][-a-z0-9.]*$"  # a class, not \S: llama.cpp grammars lack \S


class ModelSuspect(Model):
    """A candidate cause."""

    # The pattern goes into the JSON schema, so constrained decoders (llama.cpp, vLLM) cannot produce
    # "Deployment checkout"; the validator below checks every server's answer with a clearer message.
    resource: str = Field(
        min_length=1,
        max_length=253,
        description="Kind/name, e.g. Deployment/checkout.",
        json_schema_extra={"pattern": RESOURCE_PATTERN},
    )
    failure_mode: str = Field(min_length=1, max_length=64, description="Short failure mode, e.g. OOMKilled.")
    reason: str = Field(max_length=300)

    @field_validator("resource")
    @classmethod
    def _kind_and_name(cls, value: str) -> str:
        if not re.fullmatch(RESOURCE_PATTERN, value):
            raise ValueError("must be Kind/name, e.g. Deployment/checkout")
        return value


class ModelAnswer(Model):
    """The diagnosis of the incident, citing the evidence by id."""

    # What the model must return (the docstring above is sent to it). Bounds are checked here, never left to the
    # server: many do not enforce them. Whitespace-only text counts as empty.
    model_config = ConfigDict(str_strip_whitespace=True)

    # Short on purpose: an on-call report, and a bounded completion (a small model will otherwise ramble).
    root_cause: str = Field(min_length=1, max_length=400)
    reasoning: str = Field(max_length=1200)
    mitigation: str = Field(max_length=600)
    prevention: str = Field(max_length=400)
    recommendation: str = Field(max_length=400)
    confidence: int = Field(ge=0, le=100, description="Integer from 0 to 100.")
    evidence: list[str] = Field(min_length=1, max_length=10, description="Ids of the evidence cited, at least one.")
    suspects: list[ModelSuspect] = Field(max_length=5, description="At most 5, most likely first.")


# OpenAI strict mode rejects length and range keywords, so ANSWER_SCHEMA leaves them out; ModelAnswer
# enforces them on the reply. Titles are noise to the model; defaults mean nothing when every property is
# required.
_NOT_SENT = {
    "title", "default", "discriminator", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"
}  # fmt: skip
# Grammar-constrained servers (llama.cpp, vLLM) do enforce maxLength/maxItems while decoding, which is
# what keeps a small model's answer short and complete: BOUNDED_ANSWER_SCHEMA keeps those two.
_BOUNDS = {"maxLength", "maxItems"}


def _strict(schema: dict, keep: frozenset[str] = frozenset()) -> dict:
    """OpenAI strict-mode rules: every object closed and every property required (an optional field is
    sent as required and nullable, `anyOf` with null, as pydantic writes `X | None`); a tagged union is
    sent as `anyOf`, which strict mode takes and `oneOf` is not."""
    out = {key: value for key, value in schema.items() if key not in _NOT_SENT or key in keep}
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    if "properties" in out:
        out["properties"] = {name: _strict(sub, keep) for name, sub in out["properties"].items()}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    if "items" in out:
        out["items"] = _strict(out["items"], keep)
    if "anyOf" in out:
        out["anyOf"] = [_strict(sub, keep) for sub in out["anyOf"]]
    if "$defs" in out:
        out["$defs"] = {name: _strict(sub, keep) for name, sub in out["$defs"].items()}
    return out


def response_schemas(answer_type: type[BaseModel]) -> tuple[dict, dict]:
    """The JSON schemas sent for an answer model: (strict-mode, with maxLength/maxItems bounds)."""
    schema = answer_type.model_json_schema(by_alias=True)
    return _strict(schema), _strict(schema, frozenset(_BOUNDS))


ANSWER_SCHEMA, BOUNDED_ANSWER_SCHEMA = response_schemas(ModelAnswer)
_SCHEMA_NAME = "incident_diagnosis"


@dataclass(frozen=True)
class GatewayConfig:
    base_url: str  # the OpenAI-compatible root, usually ending in /v1
    model: str
    api_key: str = field(default="not-needed", repr=False)  # local servers ignore it, the SDK insists on one
    timeout_s: float = 60.0
    temperature: float = 0.0
    max_tokens: int = 2048
    structured_output: Literal["json_schema", "json_object"] = "json_schema"
    max_repair_attempts: int = 2
    max_transport_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    seed: int | None = None
    # Send maxLength/maxItems in the json_schema (grammar-constrained servers: vLLM, llama.cpp); turn off
    # for endpoints whose strict mode rejects them (OpenAI).
    schema_bounds: bool = True

    def __post_init__(self) -> None:
        if self.structured_output not in ("json_schema", "json_object"):
            raise ValueError(f"structured_output must be json_schema or json_object, not {self.structured_output!r}")
        if self.timeout_s <= 0 or self.max_tokens <= 0:
            raise ValueError("timeout_s and max_tokens must be positive")
        if min(self.max_repair_attempts, self.max_transport_retries, self.backoff_base_s, self.backoff_cap_s) < 0:
            raise ValueError("repair attempts, transport retries and backoff times cannot be negative")


@dataclass
class GatewayResult(Generic[A]):
    status: Status
    answer: A | None  # a ModelAnswer from diagnose(), the caller's answer model from ask()
    error: str | None  # what failed, where and what to do; None when completed
    prompt_tokens: int  # summed over every reply
    completion_tokens: int
    latency_s: float  # wall time, backoff included
    attempts: int  # chat-completion requests sent, transport retries and repairs included
    errors: list[str]  # every problem met, in order, "attempt N: ..."
    model: str | None  # as reported by the server
    prompt_version: str = PROMPT_VERSION


def diagnose(
    config: GatewayConfig,
    persona: Persona | str | None,
    incident: IncidentContext,
    suspects: list[Suspect],
    evidence: list[EvidenceItem],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> GatewayResult[ModelAnswer]:
    """Asks the model for a diagnosis that cites the given evidence; see the module docstring."""
    ids = [e.id for e in evidence]
    if not ids:
        raise ValueError("diagnose needs at least one evidence item: the answer must cite one")
    if len(set(ids)) != len(ids):
        raise ValueError(f"evidence ids must be unique, got {ids}")
    schema_in_prompt = ANSWER_SCHEMA if config.structured_output == "json_object" else None
    messages = build_messages(persona, incident, suspects, evidence, schema=schema_in_prompt)
    return ask(
        config,
        messages,
        ModelAnswer,
        schema_name=_SCHEMA_NAME,
        schemas=(ANSWER_SCHEMA, BOUNDED_ANSWER_SCHEMA),
        check=lambda answer: _cited(answer, set(ids)),
        consequence="The analyzers' diagnosis stands",
        prompt_version=PROMPT_VERSION,
        sleep=sleep,
    )


def _cited(answer: ModelAnswer, ids: set[str]) -> list[str]:
    unknown = [i for i in answer.evidence if i not in ids]
    given = ", ".join(sorted(ids))
    return [f"evidence: {i!r} is not the id of any evidence item given; cite only: {given}" for i in unknown]


def ask(
    config: GatewayConfig,
    messages: list[dict[str, str]],
    answer_type: type[A],
    *,
    schema_name: str,
    check: Callable[[A], list[str]] | None = None,
    consequence: str = "Nothing was recorded from the model",
    prompt_version: str,
    schemas: tuple[dict, dict] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> GatewayResult[A]:
    """Asks for one JSON object that validates as `answer_type` and passes `check` (the problems it
    returns, worded for the model, go back to it like schema errors); see the module docstring.

    messages: the request's system and user messages (in json_object mode, the caller puts the schema
    into the prompt). schemas: (strict, bounded) as response_schemas(answer_type) gives them, computed
    when absent. consequence: what the caller does without an answer, for the error.
    """
    started = time.monotonic()
    strict, bounded = schemas or response_schemas(answer_type)
    with openai.OpenAI(
        base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0
    ) as client:
        call = _Call(config, client, sleep, schema_name, bounded if config.schema_bounds else strict, prompt_version)
        try:
            for _ in range(config.max_repair_attempts + 1):
                reply = call.complete(messages)
                answer, problems = _validate(reply, answer_type, check, config.max_tokens)
                if answer is not None:
                    return call.result("completed", answer, None, started)
                call.errors.extend(f"attempt {call.attempts}: {p}" for p in problems)
                content = reply.choices[0].message.content if reply.choices else None
                messages = [*messages, {"role": "assistant", "content": content or ""}, repair_message(problems)]
        except _Unreachable as e:
            return call.result("unreachable", None, str(e), started)
    if config.structured_output == "json_object":
        advice = "structured output json_schema if the server supports it, a stronger model or more repair attempts"
    else:
        advice = "a stronger model or more repair attempts"
    error = (
        f"model {config.model!r} at {config.base_url} gave no valid answer in {config.max_repair_attempts + 1} "
        f"replies; last problems: {'; '.join(problems)}. {consequence}; try {advice}."
    )
    return call.result("invalid", None, error, started)


class _Unreachable(Exception):
    """The server could not be used; the message is the GatewayResult error."""


# The parts of a chat completion we read. The server's reply is validated like the model's: a proxy or a
# misconfigured base URL can answer 200 with anything.
class _Function(BaseModel):
    name: str
    arguments: str = ""


class _ToolCall(BaseModel):
    id: str = ""
    function: _Function


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Completion(BaseModel):
    model: str | None = None
    choices: list[_Choice]
    usage: _Usage | None = None


class _ModelId(BaseModel):
    id: str


class _ModelList(BaseModel):
    data: list[_ModelId]


@dataclass
class _Call:
    """The requests of one ask() call, with their accounting."""

    config: GatewayConfig
    client: openai.OpenAI
    sleep: Callable[[float], None]
    schema_name: str
    schema: dict  # the json_schema response format's schema, as sent
    prompt_version: str
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.config.base_url.rstrip('/')}/chat/completions"

    def complete(self, messages: list[dict[str, Any]], tools: list[dict] | None = None) -> _Completion:
        """One reply, retrying 429, 5xx, timeouts and connection errors; raises _Unreachable when out of retries.

        With `tools` (OpenAI tool definitions) the model may call them and no response format is imposed:
        servers differ on combining the two."""
        cfg = self.config
        extra: dict[str, Any] = {"seed": cfg.seed} if cfg.seed is not None else {}
        if tools:
            extra |= {"tools": tools, "tool_choice": "auto"}
        elif cfg.structured_output == "json_schema":
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": self.schema_name, "schema": self.schema, "strict": True},
            }
        else:
            extra["response_format"] = {"type": "json_object"}
        for retry in range(cfg.max_transport_retries + 1):
            self.attempts += 1
            wait = None  # Retry-After, when the server sent one
            try:
                raw = self.client.chat.completions.with_raw_response.create(
                    model=cfg.model,
                    messages=messages,
                    temperature=cfg.temperature,
                    max_tokens=cfg.max_tokens,
                    **extra,
                )
            except openai.APIStatusError as e:
                problem = f"HTTP {e.status_code} from {self.url}: {_server_message(e)}"
                if e.status_code != 429 and e.status_code < 500:
                    self.errors.append(f"attempt {self.attempts}: {problem}")
                    raise _Unreachable(self._rejected(e)) from None
                # 429 and 503 often say when to come back; other 5xx rarely do, but honour it when they do.
                wait = _retry_after(e.response.headers.get("retry-after"), cfg.backoff_cap_s)
            except openai.APITimeoutError:
                problem = f"no reply from {self.url} within {cfg.timeout_s:g}s"
            except openai.APIConnectionError as e:
                problem = f"cannot connect to {self.url}: {e.__cause__ or e}"
            else:
                try:
                    reply = _Completion.model_validate_json(raw.content)
                except ValidationError as e:
                    problem = (
                        f"{self.url} answered with something that is not a chat completion: {e.errors()[0]['msg']}"
                    )
                    self.errors.append(f"attempt {self.attempts}: {problem}")
                    raise _Unreachable(
                        f"{problem}. Check that the base URL points at an OpenAI-compatible API."
                    ) from None
                if reply.usage:
                    self.prompt_tokens += reply.usage.prompt_tokens
                    self.completion_tokens += reply.usage.completion_tokens
                self.model = reply.model or self.model
                return reply
            self.errors.append(f"attempt {self.attempts}: {problem}")
            if retry < cfg.max_transport_retries:
                self.sleep(wait if wait is not None else _backoff(retry, cfg.backoff_base_s, cfg.backoff_cap_s))
        raise _Unreachable(
            f"{problem}; gave up after {cfg.max_transport_retries + 1} attempts. Check that the model server at "
            f"{cfg.base_url} is running and reachable from the operator, or raise the timeout or retry limits."
        )

    def _rejected(self, e: openai.APIStatusError) -> str:
        """The error for a 4xx that retrying cannot fix, with what to change."""
        cfg, code = self.config, e.status_code
        if code == 404:
            served = self._served_models()
            if served is None:
                hint = (
                    f"{cfg.base_url}/models does not answer either, so the base URL is probably wrong "
                    "(OpenAI-compatible servers usually serve under /v1)"
                )
            else:
                hint = f"the server serves {', '.join(served) or 'no models'}; set the model to one of them"
            return f"{self.url} answered 404 for model {cfg.model!r}: {_server_message(e)}; {hint}."
        if code in (401, 403):
            return f"{self.url} rejected the API key (HTTP {code}): {_server_message(e)}; check the configured key."
        hint = ""
        if code == 400 and cfg.structured_output == "json_schema":
            hint = " If the server does not support json_schema response formats, set structured output to json_object."
        return f"{self.url} rejected the request (HTTP {code}): {_server_message(e)}.{hint}"

    def _served_models(self) -> list[str] | None:
        try:
            raw = self.client.models.with_raw_response.list()
            return [m.id for m in _ModelList.model_validate_json(raw.content).data]
        except (openai.APIError, ValidationError):
            return None

    def result(self, status: Status, answer: Any, error: str | None, started: float) -> GatewayResult:
        return GatewayResult(
            status=status,
            answer=answer,
            error=error,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=time.monotonic() - started,
            attempts=self.attempts,
            errors=list(self.errors),
            model=self.model,
            prompt_version=self.prompt_version,
        )


def _validate(
    reply: _Completion, answer_type: type[A], check: Callable[[A], list[str]] | None, max_tokens: int
) -> tuple[A | None, list[str]]:
    """The answer, or the problems to send back to the model, worded for it."""
    if not reply.choices:
        return None, ["the reply had no choices"]
    choice = reply.choices[0]
    if choice.message.refusal:
        return None, [f"the reply was a refusal: {choice.message.refusal}"]
    content = choice.message.content or ""
    try:
        answer = answer_type.model_validate_json(content, strict=True)
    except ValidationError as e:
        problems = [_describe(err, content) for err in e.errors()]
        if choice.finish_reason == "length":
            problems.append(f"the reply was cut off at max_tokens ({max_tokens}); answer more briefly")
        return None, problems
    problems = check(answer) if check else []
    return (None, problems) if problems else (answer, [])


def _describe(error: dict, content: str) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "reply"
    text = f"{where}: {error['msg']}"
    if error["type"] == "json_invalid":
        return f"{text}; the reply must be one JSON object and nothing else, it began {content[:60]!r}"
    value = error.get("input")
    if isinstance(value, int | float | str) and len(repr(value)) <= 80:
        text += f" (got {value!r})"
    return text


def _server_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(body or e.response.reason_phrase)[:300]


def _retry_after(value: str | None, cap: float) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), capped; None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when.replace(tzinfo=when.tzinfo or UTC) - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):  # float("nan") reads it, min and max keep it, and sleep(nan) raises
        return None
    return min(max(seconds, 0.0), cap)


def _backoff(retry: int, base: float, cap: float) -> float:
    """Exponential with jitter, so operators retrying together do not hit the server in step."""
    return min(cap, base * 2**retry) * random.uniform(0.5, 1.0)
