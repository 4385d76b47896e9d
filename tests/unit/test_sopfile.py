"""Runbook markdown: parsing, errors on the right line, lint rules, rendering back, the library, the CLI."""

import re
from pathlib import Path

import pytest
import yaml

from aiops import cli
from aiops.api.sop import ActionType, SOPSpec, StepType
from aiops.diagnosis.analyzers import CATALOGUE
from aiops.sops import sopfile
from aiops.sops.remediation import checks
from aiops.sops.sopfile import SOPFileError, check, lint, parse, render
from harness import REPO

LIBRARY = REPO / "sop-library"

BASE = """\
---
name: demo
owner: sre
version: "2.1"
match:
  alertNames: [KubePodCrashLooping]
  severities: [critical]
  labelSelector: {team: payments}
escalation:
  afterMinutes: 15
  contacts: [sre-oncall]
---

# Demo runbook

Why this runbook exists.

## check: restarts — Containers restart

- promql: `increase(kube_pod_container_status_restarts_total{namespace="$NAMESPACE"}[10m]) > 2`
- automation: auto
- on success: restart
- on failure: page

Look at `kubectl logs --previous` first.

## action: restart — Restart the pod

- action: restartPod
  - pod: checkout-7d9f-x2kqz
  - reason: `stuck worker`
- automation: suggest
- approval: required
- on success: verify
- on failure: page

## escalate: page — Page the on-call

Hand over with the evidence.

```text
## also not a heading
```

## check: verify — No restarts since

- command:
  ```sh
  kubectl get pod $POD -n $NAMESPACE \\
    -o jsonpath='{.status.containerStatuses[*].restartCount}'
  # ## not a heading inside a code block
  ```
- timeout: 1h30m
- on failure: page
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), 1) if needle in row)


def errors_of(text: str, path: str = "demo.md") -> list[sopfile.LintIssue]:
    with pytest.raises(SOPFileError) as exc:
        parse(text, path)
    assert exc.value.issues and all(i.severity == "error" for i in exc.value.issues), exc.value.issues
    return exc.value.issues


def test_parse_reads_every_part():
    rb = parse(BASE, "whatever.md")
    spec = rb.spec
    assert rb.name == "demo", "front matter name wins over the file name"
    assert (spec.title, spec.description, spec.owner, spec.version) == (
        "Demo runbook",
        "Why this runbook exists.",
        "sre",
        "2.1",
    )
    assert spec.match.alert_names == ["KubePodCrashLooping"] and spec.match.label_selector == {"team": "payments"}
    assert spec.escalation.after_minutes == 15 and spec.source == BASE
    restarts, restart, page, verify = spec.steps
    assert (restarts.id, restarts.type, restarts.title) == ("restarts", StepType.CHECK, "Containers restart")
    assert restarts.promql.startswith("increase(") and restarts.promql.endswith("> 2"), "backticks are not the value"
    assert (restarts.automation, restarts.on_success, restarts.on_failure) == ("auto", "restart", "page")
    assert restarts.instructions == "Look at `kubectl logs --previous` first."
    assert restart.action.type == ActionType.RESTART_POD
    assert restart.action.params == {"pod": "checkout-7d9f-x2kqz", "reason": "stuck worker"}
    assert restart.approval_required is True and restart.instructions is None
    assert verify.command == (
        "kubectl get pod $POD -n $NAMESPACE \\\n"
        "  -o jsonpath='{.status.containerStatuses[*].restartCount}'\n"
        "# ## not a heading inside a code block"
    )
    assert verify.timeout_seconds == 5400 and verify.on_success is None
    assert page.type == StepType.ESCALATE and page.instructions.endswith("```text\n## also not a heading\n```")
    assert rb.lines["steps[3].timeoutSeconds"] == line_of(BASE, "- timeout:")
    assert rb.lines["match.severities[0]"] == line_of(BASE, "severities:")


def test_name_and_title_alternatives():
    text = BASE.replace("name: demo\n", "title: Demo runbook\n")
    assert parse(text, "sop-library/crash-loop.md").name == "crash-loop", "the file stem names it"
    no_h1 = text.replace("# Demo runbook\n", "")
    assert parse(no_h1, "x.md").spec.title == "Demo runbook", "title from the front matter"
    lenient = BASE.replace("- on success: restart", "- On-Success: restart").replace("## check:", "## Check:")
    assert parse(lenient).spec.steps[0].on_success == "restart" and parse(lenient).spec.steps[0].type == "check"
    assert parse(BASE.replace(" — Containers restart", " - Containers restart")).spec.steps[0].title == (
        "Containers restart"
    )


# (replace this, with this, the error's line holds this, its field, a piece of its message)
ERRORS = [
    ("owner: sre\n", "owner: sre: ops\n", "owner: sre: ops", None, "not valid YAML"),
    ("match:\n", "match: [unclosed\n", "alertNames:", None, "while parsing a flow sequence on line 5"),
    ("owner: sre\n", "ownr: sre\n", "ownr:", "ownr", "did you mean 'owner'"),
    ("owner: sre\n", "owner: sre\nowner: ops\n", "owner: ops", "owner", "more than once"),
    ("  severities:", "  alertNamez: [X]\n  severities:", "alertNamez", "match.alertNamez", "unknown field"),
    ("[critical]", "[critical, catastrophic]", "severities:", "match.severities[1]", "Input should be"),
    ('version: "2.1"', "version: 2.1", "version:", "version", "quote it"),
    ("## check: restarts — Containers restart", "## check: restarts", "## check: restarts", "steps[0]", "## type: id"),
    ("## check: verify", "## verify: verify", "## verify: verify", "steps[3].type", "'check', 'action'"),
    ("## check: verify", "## check: Verify_Step", "Verify_Step", "steps[3].id", "should match pattern"),
    ("- on success: verify", "- on sucess: verify", "on sucess", "steps[1]", "did you mean 'on success'"),
    ("- approval: required", "- approval: required\n- approval: required", "- approval: required\n- approval: required",
     "steps[1].approvalRequired", "twice"),
    ("- action: restartPod", "- action: deletePod", "- action: deletePod", "steps[1].action.type", "'restartPod'"),
    ("- automation: suggest", "- automation: yolo", "automation: yolo", "steps[1].automation", "'manual'"),
    ("- approval: required", "- approval: maybe", "approval: maybe", "steps[1].approvalRequired", "not required"),
    ("- timeout: 1h30m", "- timeout: soon", "timeout: soon", "steps[3].timeoutSeconds", "duration"),
    ("- timeout: 1h30m", "- timeout: 25h", "timeout: 25h", "steps[3].timeoutSeconds", "less than or equal"),
    ("1h30m\n- on failure: page", "1h30m\n- on failure: pager", "pager", "steps[3].onFailure", "'pager'"),
    ("## check: verify", "## check: restart", "## action: restart", "steps[1].id", "more than one step"),
    ("1h30m\n- on failure: page", "1h30m\n- on failure: restarts", "on failure: restarts", "steps[3].onFailure",
     "cycle"),
    ("- action: restartPod\n  - pod: checkout-7d9f-x2kqz\n  - reason: `stuck worker`\n", "", "## action: restart",
     "steps[1].action", "needs an action"),
    ("- timeout: 1h30m", "- timeout: 1h30m\n- action: restartPod", "1h30m\n- action: restartPod", "steps[3].action",
     "only steps of type action"),
    ("- on failure: page\n\nLook at `kubectl logs --previous` first.\n", "\nLook at the logs.\n- on failure: page\n",
     "Look at the logs.\n- on failure: page", "steps[0]", "below the instructions"),
    ("- timeout: 1h30m", "- timeout: 1h30m\n  - replicas: 3", "  - replicas: 3", "steps[3].timeoutSeconds",
     "nested parameters"),
    ("- automation: auto", "- automation:", "- automation:", "steps[0].automation", "has no value"),
    ("a code block\n  ```\n", "a code block\n", "```sh", None, "never closed"),
]  # fmt: skip


@pytest.mark.parametrize("old, new, needle, field, message", ERRORS, ids=[e[4] for e in ERRORS])
def test_error_names_line_and_field(old, new, needle, field, message):
    assert old in BASE
    bad = BASE.replace(old, new, 1)
    issues = errors_of(bad)
    first = issues[0]
    assert message in first.message, issues
    assert (first.path, first.field) == ("demo.md", field), issues
    # A needle of several lines names its last one.
    expected = (
        bad[: bad.index(needle) + needle.rindex("\n") + 1].count("\n") + 1 if "\n" in needle else line_of(bad, needle)
    )
    assert first.line == expected, (str(first), expected)


def test_errors_in_the_document_frame():
    assert errors_of("---\nname: x\n# T\n")[0].message.startswith("the front matter opened here is never closed")
    issue = errors_of("---\nname: x\n---\nJust prose.\n")
    assert [(i.line, i.field) for i in issue] == [(4, "title"), (4, "steps")]
    assert "no steps" in issue[1].message
    bad_stem = errors_of(BASE.replace("name: demo\n", ""), "sop-library/Crash_Loop.md")[0]
    assert bad_stem.field == "name" and "file name" in bad_stem.message
    clash = errors_of(BASE.replace("owner: sre", "owner: sre\ntitle: Other"))[0]
    assert clash.field == "title" and clash.line == line_of(BASE, "# Demo runbook") + 1


def test_every_error_is_reported_at_once():
    bad = BASE.replace("owner: sre", "ownr: sre").replace("- on success: verify", "- next: verify")
    bad = bad.replace("- timeout: 1h30m", "- timeout: later")
    assert [i.line for i in errors_of(bad)] == [line_of(bad, "ownr"), line_of(bad, "- next:"), line_of(bad, "later")]
    assert str(errors_of(bad)[1]) == (
        f"demo.md:{line_of(bad, '- next:')}: error: steps[1]: unknown field `next`; "
        "expected one of: promql, command, action, automation, approval, on success, on failure, timeout, delivery"
    )


def spec_of(*steps, escalation=True):
    return SOPSpec.model_validate(
        {"title": "t", "steps": list(steps)} | ({"escalation": {"contacts": ["x"]}} if escalation else {})
    )


CHECK = {"id": "c", "type": "check", "title": "C", "promql": "up == 0"}
PAGE = {"id": "page", "type": "escalate", "title": "P"}


@pytest.mark.parametrize(
    "steps, rule, where",
    [
        ([CHECK, {"id": "a", "type": "action", "title": "A", "action": {"type": "restartPod"}}, PAGE],
         "unverified-action", "steps[1]"),
        ([CHECK | {"onSuccess": "a", "onFailure": "page"},
          {"id": "a", "type": "action", "title": "A", "action": {"type": "cordonNode"}, "automation": "auto",
           "onSuccess": "v"}, CHECK | {"id": "v"}, PAGE],
         "auto-without-approval", "steps[1].automation"),
        ([CHECK | {"onSuccess": "page", "onFailure": "page"}, CHECK | {"id": "orphan"}, PAGE], "unreachable-step",
         "steps[1]"),
        ([{"id": "c", "type": "check", "title": "C"}, PAGE], "check-without-query", "steps[0]"),
        ([CHECK | {"promql": 'rate(x{code!="200", a=~"b>c"}[5m])'}, PAGE], "promql-without-threshold",
         "steps[0].promql"),
        ([{"id": "d", "type": "decision", "title": "D", "onSuccess": "page"}, PAGE], "decision-without-branches",
         "steps[0]"),
        ([CHECK], "no-escalation-step", "steps"),
    ],
)  # fmt: skip
def test_lint_rules(steps, rule, where):
    issues = lint(spec_of(*steps))
    assert [(i.rule, i.field) for i in issues] == [(rule, where)], issues
    assert issues[0].severity == "warning" and issues[0].line is None and issues[0].path is None


def test_lint_policy_and_lines_in_a_file():
    assert [i.rule for i in lint(spec_of(CHECK, PAGE, escalation=False))] == ["no-escalation-policy"]
    assert lint(spec_of(CHECK | {"onFailure": "page"}, PAGE)) == []
    text = BASE.replace("- approval: required", "- approval: not required").replace("suggest", "auto")
    runbook, issues = check(text, "demo.md")
    assert runbook is not None and runbook.spec.steps[1].approval_required is False
    assert [(i.rule, i.line) for i in issues] == [
        ("auto-without-approval", line_of(text, "approval: not required") - 1)
    ]
    assert str(issues[0]).startswith(f"demo.md:{issues[0].line}: warning: steps[1].automation: runs automatically")
    assert check(BASE, "demo.md")[1] == []


@pytest.mark.parametrize(
    "query, compares",
    [
        ('sum(rate(x{code=~"5.."}[5m])) / sum(rate(x[5m])) > 0.05', True),
        ("up == 0", True),
        ("a < bool 1", True),
        ('rate(x{code!="200"}[5m])', False),
        ('count(x{msg="a > b"})', False),
        ("histogram_quantile(0.99, rate(h_bucket[5m])) # > 1 in a comment", False),
    ],
)
def test_has_comparison(query, compares):
    assert sopfile.has_comparison(query) is compares


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("45", 45), ("2h", 7200)])
def test_durations(text, seconds):
    assert (
        sopfile.parse_duration(text) == seconds and sopfile.parse_duration(sopfile.format_duration(seconds)) == seconds
    )


def test_bad_durations():
    assert [sopfile.parse_duration(t) for t in ("", "m", "1d", "10 m", "-5")] == [None] * 5


def comparable(spec: SOPSpec) -> dict:
    return spec.model_copy(update={"source": None}).wire()


def test_render_round_trips():
    rb = parse(BASE)
    text = render(rb.name, rb.spec)
    back = parse(text)
    assert back.name == "demo" and comparable(back.spec) == comparable(rb.spec)
    assert "- timeout: 1h30m" in text and "  - reason: stuck worker" in text and "```sh" in text
    assert render(back.name, back.spec) == text, "rendering is stable"


def test_an_action_step_says_how_its_change_is_delivered():
    text = BASE.replace("- action: restartPod\n  - pod: checkout-7d9f-x2kqz\n  - reason: `stuck worker`\n",
                        "- action: scaleDeployment\n  - replicas: 4\n- delivery: Pull Request\n")  # fmt: skip
    rb = parse(text)
    assert rb.spec.steps[1].delivery == "pullRequest"
    assert "- delivery: pullRequest" in render(rb.name, rb.spec)
    [error] = [e for e in errors_of(text.replace("Pull Request", "email")) if e.severity == "error"]
    assert "steps[1].delivery: Input should be 'live', 'pullRequest' or 'auto'" in str(error)


def test_render_a_yaml_sop_and_refuse_what_markdown_cannot_hold():
    runbook = sopfile.from_manifest((REPO / "examples" / "10-sop-oomkilled.yaml").read_text())
    back = parse(render(runbook.name, runbook.spec))
    assert back.name == "checkout-oomkilled" and comparable(back.spec) == comparable(runbook.spec)
    sneaky = runbook.spec.model_copy(deep=True)
    sneaky.steps[0].instructions = "Read this.\n\n## check: extra — not a step"
    with pytest.raises(ValueError, match="cannot carry"):
        render("oomkilled", sneaky)
    with pytest.raises(SOPFileError, match=r"spec.steps\[0\].onSuccess: no step has id 'nope'"):
        sopfile.from_manifest(
            yaml.safe_dump({"kind": "SOP", "spec": {"title": "t", "steps": [CHECK | {"onSuccess": "nope"}]}})
        )


def library() -> list[Path]:
    return sopfile.runbook_files([LIBRARY])


def test_library_has_at_least_20_runbooks_with_unique_names():
    runbooks, issues = sopfile.check_files([LIBRARY])
    assert len(library()) >= 20 and len(runbooks) == len(library()), issues
    assert [path.stem for path, _ in runbooks] == [rb.name for _, rb in runbooks], "file named after its object"


# The names the runbook engine fills in from the Incident; PTP loss has no analyzer of its own.
VARIABLES = {"NAMESPACE": "ns", "TARGET": "checkout", "KIND": "Deployment", "POD": "checkout-1", "NODE": "node-1"}
WITHOUT_ANALYZER = {"ptp-sync-loss"}


@pytest.mark.parametrize("path", library(), ids=lambda p: p.stem)
def test_library_runbook_is_clean_and_round_trips(path):
    text = path.read_text()
    runbook, issues = check(text, path)
    assert runbook is not None and issues == [], "\n".join(map(str, issues))
    spec = runbook.spec
    back = parse(render(runbook.name, spec))
    assert back.name == runbook.name and comparable(back.spec) == comparable(spec)
    # What makes a runbook useful at 2 AM: it matches real alerts and the analyzers' failure modes,
    # checks with a query or a command, proposes catalogue actions behind an approval, and escalates.
    modes = {mode for analyzer in CATALOGUE for mode in analyzer.failure_modes}
    assert spec.match.alert_names and spec.match.symptoms, spec.match
    assert set(spec.match.symptoms) & modes or runbook.name in WITHOUT_ANALYZER, spec.match.symptoms
    assert spec.owner and spec.version and spec.escalation.contacts and spec.description
    assert {StepType.CHECK, StepType.DECISION, StepType.ACTION, StepType.ESCALATE} <= {s.type for s in spec.steps}
    for step in spec.steps:
        assert step.type != StepType.ACTION or step.approval_required, f"{step.id}: every change needs an approval"
        assert step.type != StepType.CHECK or step.instructions, f"{step.id}: say what the result means"
        used = set(re.findall(r"\$\{?([A-Z_]+)", (step.promql or "") + (step.command or "")))
        assert used <= set(VARIABLES), f"{step.id}: {used - set(VARIABLES)} are not filled in"


def test_library_commands_are_ones_the_engine_runs():
    commands = [s.command for _, rb in sopfile.check_files([LIBRARY])[0] for s in rb.spec.steps if s.command]
    assert len(commands) >= 10
    for command in commands:
        argv = checks.kubectl_argv(command, VARIABLES)  # raises for pipes, writes and unknown variables
        assert argv[1] in checks.READ_VERBS, command


def test_readme_example_is_a_clean_runbook():
    example = (LIBRARY / "README.md").read_text().split("````markdown\n", 1)[1].split("\n````", 1)[0]
    runbook, issues = check(example + "\n", "oomkilled.md")
    assert runbook is not None and issues == [], issues
    assert [s.id for s in runbook.spec.steps] == ["confirm-oom", "rollback", "escalate", "verify"]


def test_cli_lint(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# not a runbook\n")
    (tmp_path / "good.md").write_text(BASE.replace("name: demo", "name: good"))
    assert cli.main(["sop", "lint", str(tmp_path)]) == 0
    warn = BASE.replace("name: demo", "name: warn").replace(
        "escalation:\n  afterMinutes: 15\n  contacts: [sre-oncall]\n", ""
    )
    (tmp_path / "warn.md").write_text(warn)
    assert cli.main(["sop", "lint", str(tmp_path)]) == 0
    assert cli.main(["sop", "lint", "--strict", str(tmp_path)]) == 1
    (tmp_path / "bad.md").write_text(BASE.replace("- action: restartPod", "- action: rebootNode"))
    capsys.readouterr()
    assert cli.main(["sop", "lint", str(tmp_path)]) == 1
    out = capsys.readouterr()
    line = line_of(BASE, "- action: restartPod")
    assert out.out.splitlines() == [
        f"{tmp_path / 'bad.md'}:{line}: error: steps[1].action.type: Input should be 'restartPod', 'rolloutRestart', "
        "'rollbackDeployment', 'scaleDeployment', 'cordonNode' or 'setResources'",
        f"{tmp_path / 'warn.md'}: warning: escalation: no escalation policy (afterMinutes, contacts) "
        "[no-escalation-policy]",
    ]
    assert "2 runbook(s) valid, 1 error(s), 1 warning(s)" in out.err


def test_cli_render_and_dry_run_import(tmp_path, capsys):
    path = tmp_path / "demo.md"
    path.write_text(BASE)
    assert cli.main(["sop", "render", str(path), "-n", "ops"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["metadata"] == {"name": "demo", "namespace": "ops"} and manifest["kind"] == "SOP"
    assert manifest["spec"]["source"] == BASE, "the markdown travels verbatim"
    (tmp_path / "sop.yaml").write_text(yaml.safe_dump(manifest))
    assert cli.main(["sop", "render", "--markdown", str(tmp_path / "sop.yaml")]) == 0
    assert comparable(parse(capsys.readouterr().out).spec) == comparable(parse(BASE).spec)

    assert cli.main(["sop", "import", "--dry-run", str(path)]) == 0
    assert "sop.aiops.dev/demo" in capsys.readouterr().out
    (tmp_path / "copy.md").write_text(BASE)
    assert cli.main(["sop", "import", "--dry-run", str(tmp_path)]) == 1, "two files, one object name"
    err = capsys.readouterr().err
    assert "'demo' is also the name of" in err and "nothing imported" in err
