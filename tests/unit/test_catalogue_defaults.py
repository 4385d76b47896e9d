"""The catalogue's defaults: refused with the field named when they name no model; which catalogue model a run
goes to (aiops.inference.catalogue.route); which runs a worker leaves to the operator; the endpoint probe."""

import pytest

from aiops import settings
from aiops.api.incident import AnalysisOptions
from aiops.inference import catalogue, pools
from aiops.inference.gateway import GatewayConfig
from aiops.runs import claimable
from harness import REPO
from support.scripted_openai import ScriptedOpenAI

POOL = {"image": "vllm/vllm-openai:v0.11.0", "weights": {"pvc": {"claimName": "models"}}}
HOSTED = {"external": {"baseURL": "https://llm.example/v1"}, "servedModelName": "gpt-x"}
MODELS = {"small": POOL, "big": POOL, "hosted": HOSTED}
DEFAULTS = {"default": "small", "runTypes": {"query": "hosted"}, "personas": {"gpu": "big"}}
CATALOGUE = catalogue.parse({"models": MODELS, "defaults": DEFAULTS})


def error(defaults: object) -> str:
    with pytest.raises(catalogue.CatalogueError) as exc:
        catalogue.parse({"models": MODELS, "defaults": defaults})
    return str(exc.value)


def test_the_example_has_defaults():
    d = catalogue.load(REPO / "examples" / "models" / "catalogue.yaml").defaults
    assert (d.default, d.run_types, d.personas) == ("qwen-coder", {"query": "hosted"}, {"gpu": "qwen-coder"})


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ({"default": "tiny"}, 'defaults.default: no model "tiny" in the catalogue (known: big, hosted, small)'),
        ({"runTypes": {"sopAnalysis": "tiny"}}, 'defaults.runTypes.sopAnalysis: no model "tiny" in the catalogue'),
        ({"personas": {"gpu": "tiny"}}, 'defaults.personas.gpu: no model "tiny" in the catalogue'),
        ({"runTypes": {"changeReview": "small"}}, "runTypes.changeReview: changeReview runs never ask a model"),
        ({"runTypes": {"capacityForecast": "small"}}, "runTypes.capacityForecast: capacityForecast runs never ask"),
        ({"runTypes": {"anomalyDetection": "small"}}, "runTypes.anomalyDetection: anomalyDetection runs never ask"),
        ({"runTypes": {"rootcause": "small"}}, "defaults.runTypes.rootcause: rootcause is no run type"),
        ({"personas": {"dba": "small"}}, "defaults.personas.dba: unknown persona (known: database, gpu, network, sre)"),
        ({"model": "small"}, "defaults.model: unknown field"),
        ("small", "defaults: Input should be"),
    ],
)
def test_bad_defaults_name_the_field(defaults, message):
    assert message in error(defaults)


def test_a_default_naming_no_model_stops_the_operator(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  small: {image: v, weights: {pvc: {claimName: m}}}\ndefaults: {default: large}\n")
    with pytest.raises(SystemExit, match=r'AIOPS_MODEL_CATALOGUE: .*defaults.default: no model "large"'):
        settings.from_env({"AIOPS_MODEL_CATALOGUE": str(path)})


def spec(type_: str = "rootCause", **inference) -> dict:
    return {"type": type_, **({"inference": inference} if inference else {})}


def where(s: dict, analysis: dict | None = None, cat=CATALOGUE) -> tuple[str, str] | None:
    chosen = catalogue.route(s, cat, AnalysisOptions.model_validate(analysis) if analysis is not None else None)
    return (chosen.model, chosen.source) if chosen else None


def test_the_persona_then_the_type_then_the_default():
    assert where(spec(), {"persona": "gpu"}) == ("big", "defaults.personas.gpu")
    assert where(spec(), {"persona": "network"}) == ("small", "defaults.default")
    assert where(spec()) == ("small", "defaults.default")
    assert where(spec("query")) == ("hosted", "defaults.runTypes.query")
    assert where(spec("sopAnalysis")) == ("small", "defaults.default")
    assert where(spec("query"), {"persona": "gpu"}) == ("hosted", "defaults.runTypes.query"), "personas: rootCause"
    only_types = catalogue.parse({"models": MODELS, "defaults": {"runTypes": {"rootCause": "big"}}})
    assert where(spec("sopAnalysis"), cat=only_types) is None, "no default for the type: the operator endpoint"
    assert where(spec(), cat=only_types) == ("big", "defaults.runTypes.rootCause")


def test_a_named_pool_wins_and_never_falls_back():
    chosen = catalogue.route(spec(pool="hosted"), CATALOGUE, AnalysisOptions(persona="gpu"))
    assert (chosen.model, chosen.named) == ("hosted", True)
    assert catalogue.route(spec(pool="anything"), None).named, "even without a catalogue: the run fails saying so"
    assert not catalogue.route(spec(), CATALOGUE).named


@pytest.mark.parametrize(
    ("run", "analysis"),
    [
        (spec("changeReview"), None),
        (spec("capacityForecast"), None),
        (spec("anomalyDetection"), None),
        (spec(endpoint="http://llm:8000/v1"), None),
        (spec("query", model="qwen-32b"), None),
        (spec(), {"model": "qwen-32b"}),  # the Incident's analysis.model: the operator endpoint's model
        (spec(), {"llm": False, "persona": "gpu"}),  # the analyzers only
    ],
    ids=["changeReview", "capacityForecast", "anomalyDetection", "endpoint", "model", "incident-model", "no-llm"],
)
def test_runs_that_ask_no_catalogue_model(run, analysis):
    assert where(run, analysis) is None


def test_no_catalogue_or_no_defaults_route_nothing():
    assert where(spec(), cat=None) is None
    assert where(spec(), cat=catalogue.parse({"models": MODELS})) is None


ACCEPTED = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "True", "reason": "Accepted"}]}


def test_workers_leave_runs_on_a_catalogue_model_to_the_operator():
    run = {"metadata": {"name": "r", "namespace": "n"}, "spec": spec(), "status": ACCEPTED}
    assert catalogue.assigned(run["spec"], run["status"]) is None and claimable(run)
    defaulted = {**run, "status": {**ACCEPTED, "catalogueModel": "small"}}
    assert catalogue.assigned(defaulted["spec"], defaulted["status"]) == "small" and not claimable(defaulted)
    named = {**run, "spec": spec(pool="big")}
    assert catalogue.assigned(named["spec"], {}) == "big" and not claimable(named)


def test_the_probe_says_why_an_endpoint_cannot_serve():
    with ScriptedOpenAI(model="m") as llm:
        assert pools.unreachable(GatewayConfig(base_url=llm.url, model="m")) is None
        assert pools.unreachable(GatewayConfig(base_url=llm.url.removesuffix("/v1"), model="m")) == (
            f"{llm.url.removesuffix('/v1')}/models answered HTTP 404"
        )
    closed = pools.unreachable(GatewayConfig(base_url=llm.url, model="m"), timeout_s=2)
    assert closed.startswith(f"cannot reach {llm.url}/models: "), closed
