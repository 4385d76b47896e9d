"""SOP matching by meaning: the real all-MiniLM-L6-v2 against the runbooks of sop-library/, and the fall back to
words when the embedder does not load or fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops import settings
from aiops.api.incident import Diagnosis, IncidentSpec
from aiops.api.sop import SOPSpec
from aiops.knowledge.embed import LocalEmbedder, OpenAIEmbedder
from aiops.sops import sopfile
from aiops.sops.remediation import matching
from aiops_dev.controlplane import free_port

LIBRARY = Path(__file__).resolve().parents[3] / "sop-library"


@pytest.fixture(scope="module")
def model() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def library() -> dict[str, SOPSpec]:
    found, _ = sopfile.check_files([LIBRARY])
    return {runbook.name: runbook.spec for _, runbook in found}


def incident(title: str, root_cause: str, failure_mode: str = "Unknown") -> tuple[IncidentSpec, Diagnosis]:
    spec = IncidentSpec.model_validate(
        {"title": title, "severity": "high", "target": {"kind": "Deployment", "name": "checkout"}}
    )
    diagnosis = Diagnosis.model_validate(
        {
            "rootCause": root_cause,
            "confidence": 80,
            "executionStatus": "COMPLETED",
            "suspects": [{"resource": "Pod/checkout-x", "failureMode": failure_mode, "score": 0.8, "reason": "seen"}],
        }
    )
    return spec, diagnosis


# No analyzer failure mode the runbook lists, no alert, and the SOP's own terms ("OOMKilled", "OOM killer",
# "exit code 137") absent: the words share little with the OOM runbook (cosine 0.34, a score of 0.12).
PARAPHRASE = incident(
    "checkout keeps restarting",
    "The checkout container used more memory than its limit allows, so the kernel killed it and the kubelet "
    "restarted it",
)


def test_a_paraphrased_symptom_that_words_miss_matches_by_meaning(library, model):
    match, why = matching.choose(*PARAPHRASE, library)
    assert match is None, why  # words alone: below the threshold
    assert "words compared, not meaning: no embedder" in why
    match, why = matching.choose(*PARAPHRASE, library, model)
    assert match is not None and match.name == "oomkilled", why
    assert "meaning similarity" in match.reason and "words compared" not in why


def test_an_unrelated_incident_still_matches_nothing(library, model):
    spec, diagnosis = incident("wiki search box looks odd", "The CSS of the search box changed in the last release")
    match, why = matching.choose(spec, diagnosis, library, model)
    assert match is None and why.startswith("no SOP scored 0.3 or more"), why


def test_a_rule_outweighs_meaning(model):
    steps = [{"id": "look", "type": "check", "title": "Look", "command": "kubectl get pods"}]
    alerting = SOPSpec.model_validate(
        {"title": "Payment gateway certificates", "match": {"alertNames": ["CheckoutDown"]}, "steps": steps}
    )
    same_words = SOPSpec.model_validate(
        {"title": "Container ended by the kernel for using more RAM than allowed", "steps": steps}
    )
    spec, diagnosis = PARAPHRASE
    spec = spec.model_copy(update={"alert": IncidentSpec.model_validate(
        {"title": "x", "severity": "high", "alert": {"name": "CheckoutDown", "labels": {}, "fingerprint": "ab"}}
    ).alert})  # fmt: skip
    match, why = matching.choose(spec, diagnosis, {"alerting": alerting, "same-words": same_words}, model)
    assert match is not None and match.name == "alerting", why
    assert matching.meanings(matching.incident_text(spec, diagnosis), {"s": same_words}, model)["s"] > 0.5


def test_an_embedder_that_fails_falls_back_to_words_and_says_so(library):
    unreachable = OpenAIEmbedder(f"http://127.0.0.1:{free_port()}/v1", "nomic-embed", timeout_s=2)
    spec, diagnosis = incident("checkout OOMKilled again", "Pod/checkout-x: OOMKilled", "OOMKilled")
    match, why = matching.choose(spec, diagnosis, library, unreachable)
    assert match is not None and match.name == "oomkilled", why  # the rules still match
    assert "words compared, not meaning: the embedder failed (embeddings at http://127.0.0.1" in match.reason
    assert "text similarity" in match.reason


def test_a_model_that_does_not_load_is_said(tmp_path, library):
    config = settings.from_env({"AIOPS_EMBEDDINGS_MODEL_PATH": str(tmp_path / "missing.zip")})
    model, why_not = matching.embedder(config)
    assert model is None and "missing.zip" in why_not
    match, why = matching.choose(*PARAPHRASE, library, model, why_not)
    assert match is None and "the embedder did not load" in why


class Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: LocalEmbedder):
        self.inner, self.name, self.texts = inner, inner.name, 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


def test_sop_vectors_are_cached_by_content(library, model):
    counting = Counting(model)
    counting.name = "counting-" + model.name  # a cache of its own, whatever other tests left
    matching.choose(*PARAPHRASE, library, counting)
    assert counting.texts == len(library) + 1
    other = incident("ledger keeps restarting", "ledger's JVM ran out of heap and the kernel killed the container")
    matching.choose(*other, library, counting)
    assert counting.texts == len(library) + 2  # only the new Incident's text
    changed = dict(library, oomkilled=library["oomkilled"].model_copy(update={"description": "Changed."}))
    matching.choose(*other, changed, counting)
    assert counting.texts == len(library) + 3  # only the SOP whose text changed
