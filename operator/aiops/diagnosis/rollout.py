"""Canary and shadow trials of a candidate model version for root-cause diagnoses (the catalogue's rollouts.rootCause).

Every diagnosis that asks a model is a trial of the version that answered, `<catalogue model>/<served model>@<prompt
version>` (OPERATOR_ENDPOINT for the operator-level endpoint): counted in the metrics and recorded in the history
(model_trials) on a background thread, never in the diagnosis' path. With a rollout:
- shadow: once the primary has answered, the candidate is asked the same redacted question on that thread; its
  answer is recorded with whether it agrees with the primary (same top suspect and failure mode), never shown;
- canary: a stable share of Incidents (a hash of the uid: a retry goes the same way) is served by the candidate;
  one it cannot serve (down, no valid answer) is served by the primary, as without a rollout, and the failure
  recorded.
A candidate that is down, slow or answers garbage only makes failed trials and metrics. Both background queues are
bounded: a full one drops the shadow, or the rows (counted); a slow candidate never holds up the rows of others. The
operator never promotes: a promotion is a catalogue change.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiops.api.incident import Diagnosis
from aiops.core import metrics
from aiops.inference import pools
from aiops.inference.catalogue import ModelCatalogue, Prices, Rollout
from aiops.inference.gateway import GatewayConfig, GatewayResult, ModelAnswer
from aiops.inference.prompts import PROMPT_VERSION
from aiops.settings import Settings
from aiops.stores import history
from aiops.stores.history import trials as store
from aiops.stores.history.trials import CANARY, COMPLETED, ERROR, INVALID, PRIMARY, SHADOW, Trial

log = logging.getLogger(__name__)

OPERATOR_ENDPOINT = "AIOPS_LLM"  # a version's model part when the operator-level endpoint served (never a model name)
SHADOW_WORKERS, SHADOW_QUEUE = 2, 16  # shadows asked at once, and waiting; beyond, a shadow is dropped
RECORD_QUEUE = 256  # trial rows waiting for the one thread that writes them
MAX_VERSIONS = 32  # distinct version labels on the metrics

Ask = Callable[[GatewayConfig], GatewayResult[ModelAnswer]]
Rank = Callable[[ModelAnswer], Diagnosis]  # a model answer as the Incident would show it
Record = Callable[[Trial], None]


@dataclass(frozen=True)
class Arm:
    """A version: a catalogue model (or the operator-level endpoint), the model it serves and the prompt."""

    name: str
    model: str
    prompt: str = PROMPT_VERSION
    price: Prices | None = None

    @property
    def label(self) -> str:
        """What the diagnosis' model field says during a rollout; with its promptVersion, the version."""
        return f"{self.name}/{self.model}"

    @property
    def version(self) -> str:
        return f"{self.label}@{self.prompt}"


def serving(models: ModelCatalogue | None, config: GatewayConfig, namespace: str) -> Arm:
    """The version behind `config`: the catalogue model at its endpoint serving its model, else the operator's."""
    for name, entry in (models.models if models else {}).items():
        if pools.endpoint(name, entry, namespace) == config.base_url and pools.served_name(name, entry) == config.model:
            return Arm(name, config.model, price=entry.price_per_million_tokens)
    return Arm(OPERATOR_ENDPOINT, config.model)


def in_canary(uid: str, percent: float) -> bool:
    """Whether the Incident with this uid is in the canary's share; stable, and monotonic in `percent`."""
    bucket = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") % 10_000
    return bucket < round(percent * 100)


def agrees(a: Diagnosis, b: Diagnosis) -> bool:
    """Same top suspect: target and failure mode."""
    top = [(d.suspects[0].resource, d.suspects[0].failure_mode) if d.suspects else None for d in (a, b)]
    return top[0] is not None and top[0] == top[1]


class Background:
    """A few daemon threads for trials: submit() never waits, and refuses a job when `limit` are queued."""

    def __init__(self, name: str, workers: int, limit: int):
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=limit)
        self.name, self._workers = name, workers
        self._started = False
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> bool:
        with self._lock:
            if not self._started:
                for i in range(self._workers):
                    threading.Thread(target=self._work, name=f"aiops-{self.name}-{i}", daemon=True).start()
                self._started = True
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    @property
    def busy(self) -> bool:
        return self._jobs.unfinished_tasks > 0

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # noqa: BLE001  (a bug in one trial must not stop the others)
                log.exception("%s: a model trial failed", self.name)
            finally:
                self._jobs.task_done()


SHADOWS = Background("shadows", SHADOW_WORKERS, SHADOW_QUEUE)
RECORDS = Background("trial-rows", 1, RECORD_QUEUE)
_labels: set[str] = set()
_labels_lock = threading.Lock()


def wait(timeout: float) -> bool:
    """Until every shadow asked and every row handed over is done (the scenario suite, tests); False on timeout."""
    deadline = time.monotonic() + timeout
    while (SHADOWS.busy or RECORDS.busy) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not (SHADOWS.busy or RECORDS.busy)


def _label(version: str) -> str:
    with _labels_lock:
        if version not in _labels and len(_labels) >= MAX_VERSIONS:
            return "other"
        _labels.add(version)
    return version


def observe(t: Trial) -> None:
    version = _label(t.version)
    metrics.MODEL_TRIALS.labels(version, t.role, t.status).inc()
    if t.status not in (COMPLETED, INVALID):
        return
    metrics.MODEL_TRIAL_SECONDS.labels(version, t.role).observe(t.latency_s)
    metrics.MODEL_TRIAL_TOKENS.labels(version, "prompt").inc(t.prompt_tokens)
    metrics.MODEL_TRIAL_TOKENS.labels(version, "completion").inc(t.completion_tokens)
    if t.cost is not None:
        metrics.MODEL_TRIAL_COST.labels(version).inc(t.cost)
    if t.agrees is not None:
        metrics.MODEL_AGREEMENT.labels(version, str(t.agrees).lower()).inc()


def to_history(t: Trial) -> None:
    """Records the trial in PostgreSQL; nothing when history is off."""
    try:
        history.call(store.record, t)
    except history.HistoryOff:
        return
    except Exception as exc:  # noqa: BLE001  (a trial is never worth an error)
        metrics.MODEL_TRIALS_LOST.labels("unrecorded").inc()
        log.warning("model trial %s %s of %s not recorded: %s: %s", t.role, t.version, t.incident_key,
                    type(exc).__name__, exc)  # fmt: skip


class Trials:
    """The trials of one diagnosis: which version serves it (ask), and what is recorded once it is made (finish)."""

    def __init__(
        self, settings: Settings, incident: dict, config: GatewayConfig, named: bool, record: Record | None = None
    ):
        models = settings.models
        # An Incident that names its model (spec.analysis.model) asked for that one: no candidate.
        self.rollout: Rollout | None = models.rollouts.root_cause if models is not None and not named else None
        self.settings, self.primary_config, self.config = settings, config, config
        self.primary = self.served = serving(models, config, settings.namespace)
        meta = incident["metadata"]
        self.key, self.generation = f"{meta.get('namespace')}/{meta.get('name')}", meta.get("generation") or 0
        self.uid = meta.get("uid") or f"key:{self.key}"  # as the history keys an incident without one
        self.record = record or to_history
        self.failed: list[Trial] = []  # a canary that could not serve

    @property
    def label(self) -> str:
        """The diagnosis' model field: the served model, or during a rollout the version's model part."""
        return self.served.label if self.rollout else self.config.model

    def _candidate(self) -> Arm:
        name = self.rollout.candidate.model
        entry = self.settings.models.get(name)
        return Arm(name, pools.served_name(name, entry), self.rollout.candidate.prompt_version,
                   entry.price_per_million_tokens)  # fmt: skip

    def _candidate_config(self) -> GatewayConfig:
        """The operator's model settings (timeouts, retries, budget) aimed at the candidate, as for a pool's runs."""
        name = self.rollout.candidate.model
        return pools.gateway_config(name, self.settings.models.get(name), self.settings.namespace, self.primary_config)

    def ask(self, ask: Ask) -> GatewayResult[ModelAnswer]:
        """The answer of the version that serves: in the canary's share the candidate, unless it cannot."""
        r = self.rollout
        if r is None or r.mode != CANARY or not in_canary(self.uid, r.canary_percent or 0):
            return ask(self.config)
        arm, started, answer, status = self._candidate(), time.monotonic(), None, None
        try:
            config = self._candidate_config()
            problem = pools.unreachable(config)  # fails fast where the gateway would retry a closed port
            if problem is not None:
                status = "unreachable"
            else:
                answer = ask(config)
                if answer.status == COMPLETED:
                    self.served, self.config = arm, config
                    return answer
        except Exception as exc:  # noqa: BLE001  (a candidate's failure is a failed trial, never the Incident's)
            problem, status = f"{type(exc).__name__}: {exc}", ERROR
        self.failed.append(self._trial(arm, CANARY, answer, None, started=started, status=status, error=problem))
        return ask(self.config)

    def finish(self, answer: GatewayResult[ModelAnswer], shown: Diagnosis, ask: Ask, rank: Rank) -> None:
        """Counts the serving version's trial and hands the rest to the background: its row, and the shadow."""
        role = PRIMARY if self.served is self.primary else CANARY
        rows = [*self.failed, self._trial(self.served, role, answer, shown)]
        for t in rows:
            observe(t)
        self._store(rows)
        if self.rollout is not None and self.rollout.mode == SHADOW:
            if not SHADOWS.submit(lambda: self._store([self._shadow(shown, ask, rank)])):
                metrics.MODEL_TRIALS_LOST.labels("shadow_dropped").inc()
                log.warning("shadow %s of %s not asked: %d shadows waiting already", self._candidate().version,
                            self.key, SHADOW_QUEUE)  # fmt: skip

    def _store(self, rows: list[Trial]) -> None:
        if not RECORDS.submit(functools.partial(self._write, rows)):
            metrics.MODEL_TRIALS_LOST.labels("unrecorded").inc(len(rows))
            log.warning("%d model trial(s) of %s not recorded: %d waiting already", len(rows), self.key, RECORD_QUEUE)

    def _write(self, rows: list[Trial]) -> None:
        for t in rows:
            self.record(t)

    def _shadow(self, shown: Diagnosis, ask: Ask, rank: Rank) -> Trial:
        arm, started, answer, made = self._candidate(), time.monotonic(), None, None
        try:
            answer = ask(self._candidate_config())
            made = rank(answer.answer) if answer.status == COMPLETED and answer.answer is not None else None
        except Exception as exc:  # noqa: BLE001  (a candidate's failure is a failed trial, never the Incident's)
            error = f"{type(exc).__name__}: {exc}"
            trial = self._trial(arm, SHADOW, answer, None, started=started, status=ERROR, error=error)
        else:
            trial = self._trial(arm, SHADOW, answer, made, agrees=agrees(made, shown) if made else None)
        observe(trial)
        return trial

    def _trial(
        self,
        arm: Arm,
        role: str,
        answer: GatewayResult | None,
        made: Diagnosis | None,
        *,
        started: float = 0.0,
        status: str | None = None,
        error: str | None = None,
        agrees: bool | None = None,
    ) -> Trial:
        """`made`: the diagnosis this version made (a primary's: the one shown). Without an answer (never asked,
        or the ask broke) the status, the error and the time since `started` say what happened."""
        top = made.suspects[0] if made is not None and made.suspects else None
        tokens = (answer.prompt_tokens, answer.completion_tokens) if answer else (0, 0)
        return Trial(
            incident_uid=self.uid,
            incident_key=self.key,
            generation=self.generation,
            version=arm.version,
            role=role,
            status=status or answer.status,
            latency_s=round(answer.latency_s if answer else time.monotonic() - started, 3),
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            cost=arm.price.cost(*tokens) if arm.price and answer else None,
            top_resource=top.resource if top else None,
            top_failure_mode=top.failure_mode if top else None,
            root_cause=made.root_cause if made is not None else None,
            agrees=agrees,
            error=error or (answer.error if answer else None),
        )
