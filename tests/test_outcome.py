"""The outcome of an attempt, judged from what SAQ recorded on the job."""

from __future__ import annotations

from saq.job import Job, Status

from opentelemetry.instrumentation.saq._outcome import error_summary, judge

TRACEBACK = """Traceback (most recent call last):
  File "jobs.py", line 3, in send
billing.PaymentDeclined: card expired
"""


def job(status: Status, error: str | None = None) -> Job:
    return Job("send", status=status, error=error)


def test_a_failure_known_only_from_its_traceback_keeps_its_type_and_message() -> None:
    outcome = judge(job(Status.FAILED, TRACEBACK), None, worker_stopping=False)
    assert (outcome.status, outcome.error, outcome.description) == (
        "failed",
        "billing.PaymentDeclined",
        "card expired",
    )


def test_a_failure_without_a_traceback_is_failed() -> None:
    outcome = judge(job(Status.FAILED), None, worker_stopping=False)
    assert (outcome.error, outcome.description) == ("failed", None)


def test_a_job_left_active_was_aborted_unless_the_worker_is_shutting_down() -> None:
    aborted = judge(job(Status.ACTIVE), None, worker_stopping=False)
    stopped = judge(job(Status.ACTIVE), None, worker_stopping=True)
    assert (aborted.status, aborted.error) == ("aborted", "aborted")
    assert (stopped.status, stopped.error, stopped.will_retry) == ("active", "cancelled", False)


def test_an_abort_carries_its_reason() -> None:
    outcome = judge(job(Status.ABORTED, "user pressed cancel"), None, worker_stopping=False)
    assert (outcome.error, outcome.description) == ("aborted", "user pressed cancel")


def test_the_summary_for_people_joins_type_and_message() -> None:
    assert error_summary("ValueError", "bad") == "ValueError: bad"
    assert error_summary("aborted", None) == "aborted"
    assert error_summary(None, "bad") == "bad"


def test_a_complete_job_whose_abort_saq_finished_meanwhile_was_aborted() -> None:
    # SAQ 0.20: the function swallowed the abort, the worker marked the job complete,
    # then the abort loop recorded it aborted.
    outcome = judge(job(Status.COMPLETE), None, worker_stopping=False, abort="")
    assert (outcome.status, outcome.error) == ("aborted", "aborted")
