"""The operator killed (SIGKILL) while its model answers slowly: after the restart each analysis completes exactly
once, one diagnosis and one model answer recorded, nothing announced twice."""

from __future__ import annotations

from aiops_dev.eval import cases
from harness import condition
from support import counting
from support.diagnoses import reply_for
from support.observe import DiagnosisLog
from support.scripted_openai import ScriptedOpenAI, answer, delayed
from support.servers import query

RUNS = 3
SLOW_S = 120  # the answers the killed operator waits for; never sent


def test_operator_killed_mid_model_call(dsn, kubeconfig, kubectl, operator_env, namespace, writer, tally):
    cases.write("checkout-oomkilled", writer)
    reply = reply_for(writer)
    names = [f"slow-{i}" for i in range(RUNS)]
    with ScriptedOpenAI(*[delayed(SLOW_S, answer(reply))] * RUNS, *[answer(reply)] * RUNS) as llm:
        operator = operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model,
                                 "AIOPS_POSTGRES_DSN": dsn})  # fmt: skip
        with DiagnosisLog(kubeconfig, namespace) as log:
            counting.create(kubectl, names, namespace)
            asked = counting.until(lambda: len(llm.requests) >= RUNS, 60)
            operator.stop(kill=True)
            operator.start()
            counting.until(counting.reached(kubectl, namespace, "Diagnosed", RUNS), 90)
        count = counting.diagnoses(kubectl, names, namespace, log)
        runs = {
            r["spec"]["incidentRef"]["name"]: r for r in kubectl.json("get", "analysisruns", "-n", namespace)["items"]
        }
        for name in names:
            obj = kubectl.get("incident", name, namespace) or {}
            tokens = ((runs.get(name) or {}).get("status") or {}).get("tokens")
            answered, diagnosis = condition(obj, "ModelAnswered") or {}, (obj.get("status") or {}).get("diagnosis")
            if (answered.get("status"), (diagnosis or {}).get("model")) != ("True", llm.model):
                count.lost.append(f"{name}: no model answer recorded ({answered.get('message')})")
            elif tokens != {"prompt": 100, "completion": 20}:  # the usage of one scripted answer
                count.duplicated.append(f"{name}: tokens of more than one answer: {tokens}")
        # The audit log keeps every distinct DIAGNOSED event: a second diagnosis would be a second row.
        counting.until(lambda: len(query(dsn, "SELECT 1 FROM audit_log WHERE type = 'DIAGNOSED'")) >= RUNS, 30)
        rows = query(dsn, "SELECT key, data->'diagnosis'->>'model' AS model FROM audit_log WHERE type = 'DIAGNOSED'")
        for name in names:
            models = [r["model"] for r in rows if r["key"] == f"{namespace}/{name}"]
            count.lost += [f"{name}: no DIAGNOSED row in history"] if not models else []
            count.duplicated += [f"{name}: DIAGNOSED rows {models}"] * (len(models) - 1)
        attempts = sorted(r["status"].get("attempts") for r in runs.values())
        tally(RUNS, len(count.lost), len(count.duplicated),
              f"{len(llm.requests)} model requests ({RUNS} cut off by the kill); run attempts {attempts}")  # fmt: skip
    assert asked, f"the model was asked {len(llm.requests)} times before the kill, not {RUNS}"
    assert not count.lost and not count.duplicated, str(count)
