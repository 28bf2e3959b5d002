"""SAQ prints a job with its arguments; a worker's line kept for the workers page keeps
the job's function only, however long the line and whatever the arguments hold."""

from __future__ import annotations

import logging

from opentelemetry.instrumentation.saq.debug_toolbar.panel import job_logs, worker_logs

# A SAQ 0.26 "Processing ..." line whose arguments outrun the kept length, with a ">"
# inside them and secrets on both sides of the clip.
LONG_JOB = (
    "Processing Job<function: sync_crm, kwargs: {'password': 'hunter2', 'html': '<b>', "
    f"'blob': '{'a' * 5_000}', 'token': 'SECRET-AFTER-THE-CLIP'}}, queue: crm, key: k-1>"
)


def test_a_long_job_line_keeps_its_function_and_no_argument() -> None:
    record = logging.LogRecord("saq.worker", logging.INFO, __file__, 1, LONG_JOB, None, None)
    assert worker_logs.keep_outside(record)
    (line,) = [
        line for line in worker_logs.worker_log_store().lines() if "sync_crm" in line.message
    ]
    assert line.message == "Processing Job<function: sync_crm, arguments not kept>"


def test_a_job_cut_short_before_its_end_is_cut_to_the_end() -> None:
    clipped = job_logs.clip(LONG_JOB, job_logs.MAX_MESSAGE_CHARS)
    assert worker_logs.redact(clipped) == "Processing Job<function: sync_crm, arguments not kept>"
    assert worker_logs.redact("Sweeping job Job<function=f, kwargs={'x': 1}> now") == (
        "Sweeping job Job<function: f, arguments not kept> now"
    )
    assert worker_logs.redact("no job here") == "no job here"
