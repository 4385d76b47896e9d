import pytest

from aiops.diagnosis.analyzers import crashloop

from .objects import bundle, pod, running, status, terminated, waiting

BACKOFF = "back-off 5m0s restarting failed container=app pod=checkout-7d9f8b6c5-x2kqz_shop(0c6e7)"


def crashing(code: int | None, reason: str = "Error", restarts: int = 6):
    last = terminated(reason, code) if code is not None else None
    return pod(
        statuses=[status(state=waiting("CrashLoopBackOff", BACKOFF), last_state=last, restarts=restarts, ready=False)]
    )


@pytest.mark.parametrize(
    "code, meaning",
    [
        (1, "application error"),
        (126, "not executable"),
        (127, "command not found"),
        (137, "SIGKILL"),
        (139, "SIGSEGV"),
        (143, "SIGTERM"),
    ],
)
def test_exit_code_is_explained(code, meaning):
    [f] = crashloop.analyze(bundle(pods=[crashing(code)]))
    assert f.suspect.failure_mode == "CrashLoopBackOff"
    assert f"exit code {code}" in f.suspect.reason and meaning in f.suspect.reason
    assert f.suspect.score == 0.8
    assert "6 restarts" in f.suspect.reason


def test_unknown_or_missing_exit_code_scores_lower():
    [unknown] = crashloop.analyze(bundle(pods=[crashing(42)]))
    [missing] = crashloop.analyze(bundle(pods=[crashing(None)]))
    assert unknown.suspect.score == missing.suspect.score == 0.7
    assert "no recorded exit code" in missing.suspect.reason


def test_the_crashed_instance_last_log_line_is_cited():
    logs = {"checkout-7d9f8b6c5-x2kqz/app": ["starting", "panic: DATABASE_URL is not set", ""]}
    [f] = crashloop.analyze(bundle(pods=[crashing(2)], logs=logs))
    assert f.suspect.evidence == [
        "crashloop-checkout-7d9f8b6c5-x2kqz-app",
        "crashloop-log-checkout-7d9f8b6c5-x2kqz-app",
    ]
    assert "DATABASE_URL is not set" in f.evidence[1].summary


def test_oomkilled_crashloops_are_left_to_oom():
    assert crashloop.analyze(bundle(pods=[crashing(137, reason="OOMKilled")])) == []


def test_running_containers_with_past_errors_are_not_crashlooping():
    recovered = pod(statuses=[status(state=running(), last_state=terminated("Error", 1), restarts=1)])
    assert crashloop.analyze(bundle(pods=[recovered])) == []
