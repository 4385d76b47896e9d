"""The model catalogue: which models the operator may serve itself (vLLM pools) or reach outside (external).

Loaded once at start from the YAML file named by AIOPS_MODEL_CATALOGUE (the Helm chart mounts it from a
ConfigMap); a bad file stops the operator with the offending field named, e.g.

    models.qwen.gpuProduct: unknown GPU product 'NVIDIA-H1OO' (known: ...); set allowUnknownProduct: true ...

    models:
      qwen-coder:                       # the pool name AnalysisRuns give in spec.inference.pool
        image: vllm/vllm-openai:v0.11.0
        weights: {pvc: {claimName: models, subPath: qwen2.5-coder-1.5b}}
        servedModelName: qwen2.5-coder-1.5b
        gpuCount: 1
        gpuProduct: NVIDIA-L4
        maxModelLen: 8192
      openai:
        external: {baseURL: https://api.openai.com/v1, apiKeySecret: {name: openai, key: api-key}}
        servedModelName: gpt-4o-mini
    defaults:                           # runs that name no model go to one of these (optional)
      default: qwen-coder               # every run type that asks a model
      runTypes: {query: openai}         # rootCause, query or sopAnalysis
      personas: {gpu: qwen-coder}       # rootCause runs of Incidents with spec.analysis.persona
    rollouts:                           # a candidate version on trial (optional; docs/model-rollouts.md)
      rootCause: {candidate: {model: openai}, mode: shadow}   # or mode: canary, canaryPercent: 10

See examples/models/catalogue.yaml for every field. `route` says which catalogue model a run goes to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from aiops.api.analysisrun import AnalysisType
from aiops.api.common import Model, field_path
from aiops.api.incident import AnalysisOptions, Persona
from aiops.inference.prompts import PROMPT_VERSION

# Values of the nvidia.com/gpu.product node label as NVIDIA's GPU feature discovery writes them.
KNOWN_GPU_PRODUCTS = frozenset(
    {
        "Tesla-T4",
        "Tesla-V100-SXM2-16GB",
        "Tesla-V100-SXM2-32GB",
        "Tesla-V100-PCIE-16GB",
        "Tesla-V100-PCIE-32GB",
        "NVIDIA-A10",
        "NVIDIA-A10G",
        "NVIDIA-A16",
        "NVIDIA-A30",
        "NVIDIA-A40",
        "NVIDIA-A100-PCIE-40GB",
        "NVIDIA-A100-PCIE-80GB",
        "NVIDIA-A100-80GB-PCIe",
        "NVIDIA-A100-SXM4-40GB",
        "NVIDIA-A100-SXM4-80GB",
        "NVIDIA-L4",
        "NVIDIA-L40",
        "NVIDIA-L40S",
        "NVIDIA-H100-PCIe",
        "NVIDIA-H100-NVL",
        "NVIDIA-H100-80GB-HBM3",
        "NVIDIA-H20",
        "NVIDIA-H200",
        "NVIDIA-H200-NVL",
        "NVIDIA-GH200-480GB",
        "NVIDIA-B200",
        "NVIDIA-RTX-A6000",
        "NVIDIA-RTX-6000-Ada-Generation",
    }
)
# GFD appends -MIG-<profile> (mixed MIG strategy) or -SHARED (time-slicing) to the product.
_PRODUCT_SUFFIX = re.compile(r"(-MIG-[0-9a-z.+]+|-SHARED)$")
POOL_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # a DNS-1035 label: it names a Service
POOL_NAME_MAX = 52  # "aiops-pool-" + name fits in 63


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names the field."""


class PVCWeights(Model):
    claim_name: str = Field(min_length=1, max_length=253)
    sub_path: str | None = Field(default=None, max_length=1024, description="The model's folder in the claim.")


class ImageWeights(Model):
    reference: str = Field(min_length=1, max_length=1024, description="An OCI image holding the weights.")
    path: str | None = Field(default=None, max_length=1024, description="The model's folder inside that image.")
    pull_policy: str | None = Field(default=None, pattern="^(Always|IfNotPresent|Never)$")


class HostPathWeights(Model):
    path: str = Field(min_length=1, max_length=1024, pattern="^/")


class WeightsSource(Model):
    """Exactly one of pvc, image (an image volume, Kubernetes 1.31+) or hostPath."""

    pvc: PVCWeights | None = None
    image: ImageWeights | None = None
    host_path: HostPathWeights | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> WeightsSource:
        given = [k for k in ("pvc", "image", "hostPath") if getattr(self, _snake(k)) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of pvc, image or hostPath (got {', '.join(given) or 'none'})")
        return self


def _snake(name: str) -> str:
    return "host_path" if name == "hostPath" else name


class SecretKey(Model):
    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


class ExternalEndpoint(Model):
    base_url: str = Field(alias="baseURL", pattern=r"^https?://", max_length=2048)
    api_key_secret: SecretKey | None = Field(default=None, description="In the operator's namespace.")


class Toleration(Model):
    key: str | None = None
    operator: str | None = Field(default=None, pattern="^(Exists|Equal)$")
    value: str | None = None
    effect: str | None = Field(default=None, pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: int | None = None


class Prices(Model):
    """What a model's tokens cost, per million, in one currency of your choosing (cost per diagnosis)."""

    prompt: float = Field(ge=0, le=1_000_000)
    completion: float = Field(ge=0, le=1_000_000)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


class ModelEntry(Model):
    """One model: a vLLM pool the operator runs (image, weights, GPUs) or an external endpoint."""

    served_model_name: str | None = Field(default=None, min_length=1, max_length=253)
    price_per_million_tokens: Prices | None = None
    max_concurrent_runs: int = Field(default=4, ge=1, le=256)
    external: ExternalEndpoint | None = None
    image: str | None = Field(default=None, min_length=1, max_length=1024)
    weights: WeightsSource | None = None
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    gpu_count: int = Field(default=1, ge=0, le=64)
    gpu_product: str | None = Field(default=None, max_length=128)
    allow_unknown_product: bool = False
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    max_model_len: int | None = Field(default=None, ge=1, le=10_000_000)
    extra_args: list[str] = Field(default_factory=list, max_length=64)
    idle_seconds: int = Field(default=1800, ge=0, description="Scale to zero after this long unused; 0: never.")
    endpoint_override: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="The pool's /v1 URL as the operator reaches it when it runs outside the cluster "
        "(development, tests); the Service's cluster DNS name otherwise.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> ModelEntry:
        if self.external is not None:
            pool_fields = {"image", "weights", "gpu_product", "max_model_len", "endpoint_override"}
            extra = sorted(self.model_fields_set & pool_fields)
            if extra:
                names = ", ".join(type(self).model_fields[f].alias or f for f in extra)
                raise ValueError(f"external: an external model runs no pool; remove {names}")
            if not self.served_model_name:
                raise ValueError("servedModelName: required for an external model (the model the endpoint serves)")
            return self
        if not self.image:
            raise ValueError("image: required for a pool (the vLLM image), or give external")
        if self.weights is None:
            raise ValueError("weights: required for a pool: one of pvc, image or hostPath")
        if self.gpu_count < 1:
            raise ValueError("gpuCount: a vLLM pool needs at least 1 GPU (got 0)")
        if self.gpu_count % self.tensor_parallel_size:
            raise ValueError(
                f"tensorParallelSize: {self.tensor_parallel_size} does not divide gpuCount {self.gpu_count} "
                "(vLLM uses tensorParallelSize x pipeline stages GPUs)"
            )
        if self.gpu_product and not self.allow_unknown_product:
            if _PRODUCT_SUFFIX.sub("", self.gpu_product) not in KNOWN_GPU_PRODUCTS:
                raise ValueError(
                    f"gpuProduct: unknown GPU product {self.gpu_product!r} (known: "
                    f"{', '.join(sorted(KNOWN_GPU_PRODUCTS))}); set allowUnknownProduct: true if your nodes' "
                    "nvidia.com/gpu.product label really says so"
                )
        return self

    @property
    def pipeline_parallel_size(self) -> int:
        return self.gpu_count // self.tensor_parallel_size


# The run types whose executors call a model (aiops.runs: rootcause, query, sopanalysis). changeReview,
# capacityForecast and anomalyDetection runs never do, so no default sends them to a pool to wait for nothing.
MODEL_RUN_TYPES = frozenset({AnalysisType.ROOT_CAUSE, AnalysisType.QUERY, AnalysisType.SOP_ANALYSIS})


class Defaults(Model):
    """The catalogue model of a run that names none: its persona's, else its type's, else `default`."""

    default: str | None = Field(default=None, description="Every run type that asks a model.")
    run_types: dict[str, str] = Field(default_factory=dict, description="By spec.type: rootCause, query, sopAnalysis.")
    personas: dict[str, str] = Field(
        default_factory=dict, description="rootCause runs, by their Incident's spec.analysis.persona."
    )

    @field_validator("run_types", mode="before")
    @classmethod
    def _model_types(cls, run_types: object) -> object:
        for name in run_types if isinstance(run_types, dict) else ():
            if name not in MODEL_RUN_TYPES:
                why = "runs never ask a model" if name in AnalysisType.__members__.values() else "is no run type"
                asks = ", ".join(sorted(MODEL_RUN_TYPES))
                raise ValueError(f"{name}: {name} {why} (the run types that do: {asks})")
        return run_types

    @field_validator("personas", mode="before")
    @classmethod
    def _personas(cls, personas: object) -> object:
        for name in personas if isinstance(personas, dict) else ():
            if name not in Persona.__members__.values():
                raise ValueError(f"{name}: unknown persona (known: {', '.join(sorted(Persona))})")
        return personas

    def given(self) -> list[tuple[str, str]]:
        """(field, model) of every default given."""
        given = [("defaults.default", self.default)] if self.default else []
        given += [(f"defaults.runTypes.{t}", m) for t, m in self.run_types.items()]
        return given + [(f"defaults.personas.{p}", m) for p, m in self.personas.items()]


# The diagnosis prompts the code has: a candidate may name only these (today the current one alone).
ROOT_CAUSE_PROMPTS = (PROMPT_VERSION,)


class Candidate(Model):
    model: str = Field(min_length=1, description="A catalogue model.")
    prompt_version: str = Field(default=PROMPT_VERSION, description="One of ROOT_CAUSE_PROMPTS.")

    @field_validator("prompt_version")
    @classmethod
    def _known_prompt(cls, version: str) -> str:
        if version not in ROOT_CAUSE_PROMPTS:
            raise ValueError(f"unknown prompt version {version!r} (the operator has {', '.join(ROOT_CAUSE_PROMPTS)})")
        return version


class Rollout(Model):
    """A candidate on trial: asked unseen beside every diagnosis (shadow), or serving a share of them (canary)."""

    candidate: Candidate
    mode: Literal["shadow", "canary"]
    canary_percent: float | None = Field(default=None, ge=0, le=100, description="mode canary: the share served.")

    @model_validator(mode="after")
    def _percent(self) -> Rollout:
        if self.mode == "canary" and self.canary_percent is None:
            raise ValueError("canaryPercent: required for mode canary (0-100, the share of Incidents it serves)")
        if self.mode == "shadow" and self.canary_percent is not None:
            raise ValueError("canaryPercent: only for mode canary (a shadow is asked beside every diagnosis)")
        return self


class Rollouts(Model):
    root_cause: Rollout | None = None


class ModelCatalogue(Model):
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    rollouts: Rollouts = Field(default_factory=Rollouts)

    @field_validator("models", mode="before")
    @classmethod
    def _names(cls, models: object) -> object:
        for name in models if isinstance(models, dict) else ():
            if len(name) > POOL_NAME_MAX or not re.match(POOL_NAME, name):
                raise ValueError(
                    f"{name!r}: a model name must be a DNS label of at most {POOL_NAME_MAX} characters "
                    "(lower case letters, digits, '-', starting with a letter): it names a Deployment and a Service"
                )
        return models

    @model_validator(mode="after")
    def _defaults_known(self) -> ModelCatalogue:
        given = self.defaults.given()
        if self.rollouts.root_cause:
            given.append(("rollouts.rootCause.candidate.model", self.rollouts.root_cause.candidate.model))
        for field, name in given:
            if name not in self.models:
                raise ValueError(f'{field}: no model "{name}" in the catalogue (known: {self.known()})')
        return self

    def known(self) -> str:
        return ", ".join(sorted(self.models)) or "none"

    def get(self, name: str) -> ModelEntry | None:
        return self.models.get(name)

    def unknown(self, name: str) -> str:
        return f'spec.inference.pool: no model "{name}" in the catalogue (known: {self.known()})'


NAMED = "spec.inference.pool"


@dataclass(frozen=True)
class Route:
    """The catalogue model a run goes to, and what chose it: NAMED, or the defaults' field ("defaults.default")."""

    model: str
    source: str

    @property
    def named(self) -> bool:
        """The run asked for this model by name: it never falls back to the operator-level endpoint."""
        return self.source == NAMED


def route(spec: Mapping, catalogue: ModelCatalogue | None, analysis: AnalysisOptions | None = None) -> Route | None:
    """Where a run's model calls go: a catalogue model, or None for the operator-level endpoint (AIOPS_LLM_*).

    `spec` is the AnalysisRun's spec; `analysis` its Incident's spec.analysis (rootCause). A named pool wins;
    a run that names an endpoint or a model (an Incident's analysis.model), whose Incident wants no model
    (analysis.llm: false), or whose type asks none, stays off the catalogue's defaults."""
    inference = spec.get("inference") or {}
    if inference.get("pool"):
        return Route(inference["pool"], NAMED)
    run_type = spec.get("type")
    if catalogue is None or run_type not in MODEL_RUN_TYPES or inference.get("endpoint") or inference.get("model"):
        return None
    if analysis is not None and (analysis.llm is False or analysis.model):
        return None
    d = catalogue.defaults
    persona = analysis.persona if analysis is not None and run_type == AnalysisType.ROOT_CAUSE else None
    for field, name in (
        (f"defaults.personas.{persona}", d.personas.get(persona) if persona else None),
        (f"defaults.runTypes.{run_type}", d.run_types.get(run_type)),
        ("defaults.default", d.default),
    ):
        if name:
            return Route(name, field)
    return None


def assigned(spec: Mapping, status: Mapping) -> str | None:
    """The catalogue model a run was given: spec.inference.pool, else the default chosen when it was accepted
    (status.catalogueModel). The operator schedules such runs itself (aiops.controllers.pools); workers leave them."""
    return (spec.get("inference") or {}).get("pool") or status.get("catalogueModel")


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown field"
    head, sep, rest = msg.partition(": ")
    if sep and " " not in head:  # a model validator naming its field ("gpuCount: ...")
        if head.startswith("'") and loc == ("models",):  # a bad model name
            return f"models.{head.strip(chr(39))}: {rest}"
        return f"{field_path(loc)}.{head}: {rest}" if loc else msg
    return f"{field_path(loc)}: {msg}" if loc else msg


def parse(data: object, source: str = "catalogue") -> ModelCatalogue:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CatalogueError(f"{source}: expected a mapping with a 'models' key, got {type(data).__name__}")
    try:
        return ModelCatalogue.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CatalogueError(f"{source}: {problems[0]}{more}") from None


def load(path: str | Path) -> ModelCatalogue:
    """The catalogue in a YAML file; CatalogueError names the file and the field."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CatalogueError(f"{path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not YAML: {exc}") from None
    return parse(data, str(path))
