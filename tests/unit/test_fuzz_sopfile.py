"""Fuzzing the runbook markdown parser (aiops.sops.sopfile): any text either parses into a runbook that the API
server would take, or fails with SOPFileError whose every issue carries a line of the file; lint and render
never fail on a parsed runbook. Quickly: the text of an AnalysisRun (inputs.text, up to 64 KiB) is parsed
in the operator.

Runbooks are built from the grammar's pieces (sop-library/README.md), shuffled and mixed with random text.
"""

import re
from pathlib import Path

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from aiops.api.common import DNS_LABEL
from aiops.api.sop import SOPSpec
from aiops.sops.sopfile import IssueSeverity, SOPFileError, check, from_manifest, manifest, parse, render
from support.strategies import STEP_IDS, dns_labels, huge, json_values, mutated, nested, regressions, texts

_VALUES = {
    "promql": st.sampled_from(["`up == 0`", "up", 'rate(x{a="b"}[5m]) > 0.1', "``a`b``"]),
    "command": st.sampled_from(["kubectl get pods -n $NAMESPACE", "`kubectl logs $POD`"]),
    "action": st.sampled_from(["restartPod", "rollbackDeployment", "scaleDeployment", "deleteNamespace"]),
    "automation": st.sampled_from(["auto", "manual", "Suggest", "sometimes"]),
    "approval": st.sampled_from(["required", "not  required", "maybe"]),
    "on success": STEP_IDS,
    "on failure": STEP_IDS,
    "timeout": st.sampled_from(["90s", "10m", "1h30m", "0", "86401", "5x", "99999999999999999999"]),
}


def _usually(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """`good` three times in four: most generated runbooks should get past the first check."""
    return st.one_of(good, good, good, bad)


PROSE = _usually(st.sampled_from(["Restart the pod.", "A `kubectl get` line.", "### Notes", ""]), texts())
_FRONT = {
    "name": _usually(STEP_IDS, dns_labels()),
    "owner": _usually(st.just("platform-sre"), json_values(4)),
    "version": _usually(st.just("1.0"), json_values(4)),
    "match": st.fixed_dictionaries(
        {},
        optional={
            "alertNames": st.lists(texts(12), max_size=3),
            "severities": st.lists(_usually(st.just("critical"), st.just("bad")), max_size=2),
            "resourceKinds": st.lists(_usually(st.just("Pod"), st.just("Planet")), max_size=2),
            "labelSelector": st.dictionaries(texts(8), texts(8) | st.integers(), max_size=2),
        },
    ),
    "escalation": st.fixed_dictionaries(
        {}, optional={"afterMinutes": st.integers(-5, 20_000), "contacts": st.lists(texts(12), max_size=2)}
    ),
    "nmae": texts(),
}
_BROKEN_YAML = st.sampled_from(["match: &a [*a]", "owner: [unclosed", "- a list", "key: value: colon", "\t tab"])


@st.composite
def _front_matter(draw: st.DrawFn) -> list[str]:
    keys = draw(st.lists(_usually(st.sampled_from([*_FRONT][:-1]), st.just("nmae")), unique=True, max_size=4))
    data = {key: draw(_FRONT[key]) for key in keys}
    rows = yaml.safe_dump(data, allow_unicode=True).splitlines() if data else []
    rows += draw(_usually(st.just([]), st.lists(_BROKEN_YAML, min_size=1, max_size=1)))
    return ["---", *rows, draw(_usually(st.just("---"), st.sampled_from(["...", ""])))]


@st.composite
def _step(draw: st.DrawFn) -> list[str]:
    kind = draw(_usually(st.sampled_from(["check", "action", "decision", "escalate"]), st.just("review")))
    sep = draw(_usually(st.sampled_from(["—", "–", "--", "-"]), st.just(":")))
    title = draw(_usually(st.sampled_from(["Check it", "Roll back"]), texts(30)).filter(lambda t: "\n" not in t))
    rows = [f"## {kind}: {draw(_usually(STEP_IDS, dns_labels()))} {sep} {title}", ""]
    for key in draw(st.lists(_usually(st.sampled_from(list(_VALUES)), st.just("colour")), max_size=4)):
        rows.append(f"- {key}: {draw(_VALUES.get(key, texts(12)))}")
        if key == "action":
            params = draw(st.dictionaries(st.sampled_from(["replicas", "x"]), texts(8)))
            rows += [f"  - {k}: {v}" for k, v in params.items()]
    if draw(st.booleans()):  # a multi-line query: an empty item and a fenced block, sometimes never closed
        fence = draw(st.sampled_from(["```", "~~~", "````"]))
        rows += ["- promql:", f"  {fence}promql", "  sum(up) < 1", draw(_usually(st.just(f"  {fence}"), st.just("")))]
    return [*rows, "", *draw(st.lists(PROSE, max_size=2))]


@st.composite
def runbooks(draw: st.DrawFn) -> str:
    """Markdown a runbook author (or a wiki page pasted into an AnalysisRun) could write."""
    rows = draw(_front_matter()) if draw(st.booleans()) else []
    title = st.builds(lambda head, text: head + text, st.sampled_from(["# ", "#", "", "## "]), texts(30))
    rows += [draw(_usually(st.just("# OOMKilled"), title)), "", *draw(st.lists(PROSE, max_size=2))]
    for step in draw(st.lists(_step(), max_size=4)):
        rows += step
    if draw(st.booleans()):  # random text dropped in anywhere
        rows.insert(draw(st.integers(0, len(rows))), draw(texts() | huge(st.sampled_from([" ", "x "]))))
    return draw(st.sampled_from(["\n", "\r\n"])).join(rows)


EXAMPLE = yaml.safe_load((Path(__file__).parents[2] / "examples" / "10-sop-oomkilled.yaml").read_text())
LIBRARY = [
    p.read_text() for p in sorted((Path(__file__).parents[2] / "sop-library").glob("*.md")) if p.stem != "README"
]


@st.composite
def edited(draw: st.DrawFn, text: str) -> str:
    """A runbook with a few rows dropped, repeated, or replaced or joined by a row of the grammar or random text."""
    rows = text.splitlines()
    pieces = _step().flatmap(st.sampled_from) | PROSE | st.sampled_from(["---", "```", "# Title", "- promql:"])
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        change = draw(st.sampled_from(["drop", "repeat", "replace", "insert"]))
        if change == "drop":
            del rows[i]
        elif change == "repeat":
            rows.insert(i, rows[i])
        else:
            rows[i : i + (change == "replace")] = [draw(pieces)]
    return "\n".join(rows)


_STEP = "\n\n## check: a — A\n\n- promql: `up == 1`\n"
# Found while fuzzing: a YAML alias to its own anchor sent the line bookkeeping into endless recursion, and
# aliases nested a few deep expanded to millions of nodes (a hang); a name with a trailing newline passed
# re.match(DNS_LABEL) and the API server would refuse the object; trailing or inner blank runs in a heading
# or a field made the regular expressions quadratic (a 64 KiB line: tens of seconds).
FOUND = (
    "---\nname: x\nmatch: &a [*a]\n---\n# T" + _STEP,
    "---\nname: x\nm:\n  - &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"  - &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6))
    + "---\n# T"
    + _STEP,
    '---\nname: "ab\\n"\n---\n# T' + _STEP,
    "# T\n\n## check: a — A" + " " * 65_000,
    "# T\n\n## check: a — A\n\n- promql: x" + " " * 65_000 + "y",
    "# T\n\n## action: a — A\n\n- action: restartPod\n  - k: x" + " " * 65_000 + "y",
    "#" + " " * 65_000 + "\n\n## check: a — A",
    "---\n" + "- " * 993 + "\n---\n# T" + _STEP,
)


@regressions("text", FOUND)
@given(st.sampled_from(LIBRARY).flatmap(edited) | runbooks() | texts(200) | nested(1000))
def test_a_runbook_parses_or_every_issue_has_a_line(text):
    rows = max(len(text.splitlines()), 1)
    try:
        runbook = parse(text, "fuzz.md")
    except SOPFileError as err:
        assert err.issues
        for issue in err.issues:
            assert issue.severity == IssueSeverity.ERROR and 1 <= issue.line <= rows + 1, issue
        return
    assert len(runbook.name) <= 63 and re.fullmatch(DNS_LABEL, runbook.name), runbook.name
    assert SOPSpec.model_validate(manifest(runbook)["spec"]) == runbook.spec
    _, warnings = check(text, "fuzz.md")
    assert all(w.severity == IssueSeverity.WARNING for w in warnings)
    try:
        render(runbook.name, runbook.spec)  # checks itself that the markdown parses back to the spec
    except ValueError:  # documented: a spec that markdown cannot carry exactly
        pass


# Found while fuzzing: nesting deeper than PyYAML's composer goes (RecursionError); metadata that is not a mapping.
@example(text="- " * 993)
@example(text="kind: SOP\nmetadata: 1\n")
@given(st.one_of(mutated(EXAMPLE), json_values()).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)) | texts(200))
def test_a_manifest_reads_or_names_the_problem(text):
    try:
        from_manifest(text, "fuzz.yaml")
    except SOPFileError as err:
        assert err.issues and all(str(i) for i in err.issues)
