from aiops.diagnosis.analyzers import job

from .objects import bundle, condition, owner, pod, status, terminated
from .objects import job as job_obj


def failed_pod(name: str, code: int, finished: float):
    p = pod(
        name,
        statuses=[status("report", state=terminated("Error", code, finished), ready=False)],
        rs=None,
        phase="Failed",
    )
    p["metadata"]["ownerReferences"] = [owner("Job", "nightly-report", "batch/v1")]
    p["metadata"]["creationTimestamp"] = p["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"]
    return p


def test_backoff_limit_exceeded_cites_the_failed_pods_exits():
    j = job_obj(
        conditions=[
            condition("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", 20)
        ],
        failed=4,
    )
    pods = [failed_pod("nightly-report-abcde", 1, 5), failed_pod("nightly-report-fghij", 2, 15)]
    [f] = job.analyze(bundle("Job", "nightly-report", jobs=[j], pods=pods))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("Job/nightly-report", "JobBackoffLimitExceeded", 0.85)
    assert "Last pod: Pod/nightly-report-fghij container report exited 2" in s.reason
    assert "failed pods 4, backoffLimit 3" in f.evidence[0].summary
    assert s.evidence == ["job-nightly-report", "job-pod-nightly-report-abcde", "job-pod-nightly-report-fghij"]


def test_deadline_exceeded_and_other_reasons():
    deadline = job_obj(
        "a",
        conditions=[condition("Failed", "True", "DeadlineExceeded", "Job was active longer than specified deadline")],
    )
    policy = job_obj(
        "b", conditions=[condition("Failed", "True", "PodFailurePolicy", "Container main for pod x failed")]
    )
    found = {f.suspect.resource: f.suspect.failure_mode for f in job.analyze(bundle(jobs=[deadline, policy]))}
    assert found == {"Job/a": "JobDeadlineExceeded", "Job/b": "JobFailed"}


def test_running_and_completed_jobs_give_nothing():
    done = job_obj("done", conditions=[condition("Complete", "True")], succeeded=1)
    assert job.analyze(bundle(jobs=[job_obj(), done])) == []
