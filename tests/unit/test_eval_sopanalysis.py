"""`aiops-dev eval sopanalysis`: its closeness measures on SOPs whose answer is known, its prose data against the
runbooks, and a whole run against a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import re
import shutil

import pytest

from aiops.api.sop import SOPSpec
from aiops.sops import sopfile
from aiops_dev.eval import sopanalysis
from aiops_dev.eval.sopanalysis import actions_found, closeness, queries_found, same_query, type_similarity
from support.scripted_openai import ScriptedOpenAI, answer, content

ERRORS = 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.02'
RESTARTS = 'sum(increase(kube_pod_container_status_restarts_total{namespace="$NAMESPACE"}[10m])) < 1'
DESCRIBE = "kubectl describe pod $POD -n $NAMESPACE"


def sop(*steps: tuple) -> SOPSpec:
    """An SOP of (type, promql or command or action type) steps, ids s1, s2, ..."""
    out = []
    for i, (kind, what) in enumerate(steps, 1):
        step = {"id": f"s{i}", "type": kind, "title": f"step {i}"}
        if kind == "action":
            step["action"] = {"type": what}
        elif what and what.startswith("kubectl"):
            step["command"] = what
        elif what:
            step["promql"] = what
        out.append(step)
    return SOPSpec.model_validate({"title": "t", "steps": out})


@pytest.fixture(scope="module")
def library() -> dict[str, SOPSpec]:
    found, _ = sopfile.check_files([sopanalysis.LIBRARY])
    return {rb.name: rb.spec for _, rb in found}


# --- the measures --------------------------------------------------------------------------------


def test_every_runbook_is_fully_close_to_itself(library):
    for name, spec in library.items():
        c = closeness(spec, spec)
        assert (c.types, c.actions, c.queries, c.overall) == (1.0, 1.0, 1.0, 1.0), name


def test_a_draft_sharing_nothing_scores_zero_on_every_measure():
    original = sop(("check", ERRORS), ("action", "rollbackDeployment"))
    draft = sop(("decision", "up == 0"), ("escalate", None))
    c = closeness(draft, original)
    assert (c.types, c.actions, c.queries, c.overall) == (0.0, 0.0, 0.0, 0.0)


def test_step_types_score_one_minus_the_edit_distance_over_the_longer_sequence():
    original = sop(("check", ERRORS), ("check", DESCRIBE), ("action", "restartPod"), ("escalate", None))
    assert type_similarity(sop(("check", ERRORS), ("action", "restartPod"), ("escalate", None)), original) == 0.75
    swapped = sop(("check", ERRORS), ("check", DESCRIBE), ("escalate", None), ("action", "restartPod"))
    assert type_similarity(swapped, original) == 0.5, "two substitutions"
    longer = sop(*[("check", ERRORS)] * 8)
    assert type_similarity(longer, original) == 1 - 6 / 8, "an extra step costs as much as a missing one"


def test_actions_are_matched_one_to_one_by_catalogue_name_in_any_order():
    original = sop(("action", "restartPod"), ("action", "restartPod"), ("action", "cordonNode"))
    assert actions_found(sop(("action", "cordonNode"), ("action", "restartPod")), original) == pytest.approx(2 / 3)
    assert actions_found(sop(("action", "restartPod"), ("check", ERRORS)), original) == pytest.approx(1 / 3)
    assert actions_found(sop(("action", "rolloutRestart")), original) == 0.0, "another action is not the same"
    assert actions_found(sop(("action", "restartPod")), sop(("check", ERRORS))) is None, "nothing to find"


def test_queries_count_when_kept_whitespace_aside_in_either_field():
    assert same_query(ERRORS, ERRORS.replace(" ", "").replace("/", "\n  /\n"))
    assert same_query(ERRORS, ERRORS.replace("0.02", "0.05")), "a changed threshold is still the same query"
    assert not same_query(ERRORS, RESTARTS)
    assert not same_query(ERRORS, ERRORS.split(" / ")[0]), "half the query is not the query"
    original = sop(("check", ERRORS), ("check", DESCRIBE))
    assert queries_found(sop(("check", DESCRIBE), ("check", ERRORS)), original) == 1.0
    assert queries_found(sop(("check", f"`{DESCRIBE}`")), original) == 0.5, "a command written as a PromQL field"


def test_one_draft_query_cannot_stand_for_two_originals():
    original = sop(("check", RESTARTS), ("check", ERRORS), ("check", RESTARTS))
    assert queries_found(sop(("check", RESTARTS), ("check", ERRORS)), original) == pytest.approx(2 / 3)


def test_overall_closeness_averages_the_measures_that_apply():
    original = sop(("check", ERRORS), ("check", RESTARTS))  # no action: actions n/a
    c = closeness(sop(("check", ERRORS)), original)
    assert (c.types, c.actions, c.queries, c.overall) == (0.5, None, 0.5, 0.5)


# --- the prose data --------------------------------------------------------------------------------


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_runbook_has_a_prose_version_that_is_not_runbook_markdown(library):
    prose = {p.stem: p.read_text(encoding="utf-8") for p in sopanalysis.DATA_DIR.glob("*.txt")}
    assert set(prose) == set(library)
    for name, text in prose.items():
        with pytest.raises(sopfile.SOPFileError):
            sopfile.parse(text, f"{name}.md")
        assert not re.search(r"^#{1,6} |^- (promql|command|action|on success|on failure):", text, re.M), name


def test_the_prose_keeps_the_facts_of_its_runbook(library):
    """Every query and command verbatim (whitespace aside), every action, alert and contact: what the
    drafts are measured on must be in the text they are drafted from."""
    for name, spec in library.items():
        text = (sopanalysis.DATA_DIR / f"{name}.txt").read_text(encoding="utf-8")
        for step in spec.steps:
            for query in (step.promql, step.command):
                assert query is None or _compact(query) in _compact(text), f"{name}: {step.id} {query}"
            assert step.action is None or step.action.type in text, f"{name}: {step.id}"
        facts = [*spec.match.alert_names, *spec.escalation.contacts, spec.escalation.channel]
        assert not [f for f in facts if f not in text], name


def test_load_names_what_is_missing(tmp_path):
    (tmp_path / "no-such-runbook.txt").write_text("Restart it.")
    with pytest.raises(ValueError, match=r"no runbook in .* for no-such-runbook\.txt"):
        sopanalysis.load(tmp_path, sopanalysis.LIBRARY)
    with pytest.raises(ValueError, match="unknown runbook"):
        sopanalysis.load(sopanalysis.DATA_DIR, sopanalysis.LIBRARY, ["oomkiled"])
    with pytest.raises(ValueError, match="no \\*.txt prose files"):
        sopanalysis.load(tmp_path / "empty", sopanalysis.LIBRARY)


# --- a run against a scripted server -----------------------------------------------------------------


def draft_of(spec: SOPSpec) -> dict:
    """The runbook as the model would answer it, word for word (SOPAnswer's shape)."""
    steps = []
    for s in spec.steps:
        step = {"id": s.id, "type": s.type, "title": s.title, "instructions": ""}
        if s.type in ("check", "decision"):
            step |= {"promql": s.promql, "command": s.command}
        if s.type in ("check", "action"):
            step["automation"] = s.automation
        if s.type == "action":
            params = [{"name": k, "value": v} for k, v in s.action.params.items()]
            step |= {"action": {"type": s.action.type, "params": params}, "approvalRequired": s.approval_required}
        if s.type != "escalate":
            step |= {"onSuccess": s.on_success, "onFailure": s.on_failure}
        steps.append(step)
    return {"title": spec.title, "description": "", "steps": steps, "findings": []}


def test_a_run_reports_one_valid_draft_and_one_that_never_parsed(tmp_path, library, capsys):
    for name in ("crashloopbackoff", "oomkilled"):  # drafted in this order
        shutil.copy(sopanalysis.DATA_DIR / f"{name}.txt", tmp_path)
    not_json = content("Sure! Here is the SOP: step 1, check the pods.", prompt_tokens=900, completion_tokens=30)
    with ScriptedOpenAI(
        answer(draft_of(library["crashloopbackoff"]), prompt_tokens=1500, completion_tokens=700),
        not_json,
        not_json,
        not_json,
    ) as server:
        code = sopanalysis.main(
            [
                "--data",
                str(tmp_path),
                "--llm-base-url",
                server.url,
                "--llm-model",
                server.model,
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert code == 0 and server.remaining == 0 and server.unscripted == 0
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("crash", "oom"))}
    assert rows["crashloopbackoff"][:9] == [
        "crashloopbackoff",
        "yes",
        "0",
        "8/8",
        "1.00",
        "1.00",
        "1.00",
        "1.00",
        "2200",
    ]
    assert rows["oomkilled"][:8] == ["oomkilled", "no", "2", "0/7", "-", "-", "-", "-"]
    assert "attempt 1: reply: Invalid JSON" in out
    assert "drafts validated: 1/2 (50%); invalid 1, unreachable 0; repairs used 2, by validated drafts 0" in out
    assert "closeness of the validated drafts: types 1.00, actions 1.00, queries 1.00, overall 1.00" in out
    assert "closeness over all 2 runbooks (no draft = 0): 0.50" in out
    assert "[1/2] crashloopbackoff: validated" in err and "[2/2] oomkilled: invalid after 3 request(s)" in err
    # The path of a sopAnalysis run: the prose inside the runbook fence, the run's completion budget.
    first = server.requests[0]
    assert "kubectl logs $POD -n $NAMESPACE --previous --tail=100" in first["messages"][1]["content"]
    assert first["max_tokens"] == 2048 and first["response_format"]["json_schema"]["name"] == "sop_draft"
    assert len((tmp_path / "o").read_text().splitlines()) == 2
