"""A job that tells its own story: log lines at three levels, one in a span of its own,
and a failed first attempt with a traceback (used in this process and in a worker's)."""

from __future__ import annotations

import logging
import typing as t

from opentelemetry.instrumentation.saq import SAQInstrumentor

job_logger = logging.getLogger("tests.jobs.contacts")
HOSTILE = "<script>alert('contacts')</script> upstream gone"


async def import_contacts(ctx: dict[str, t.Any], *, source: str) -> str:
    attempt = ctx["job"].attempts
    job_logger.info("importing from %s, attempt %d", source, attempt)
    # A span of the job's own, from the provider SAQ was instrumented with.
    tracer = SAQInstrumentor().tracer_provider.get_tracer("tests.jobs")
    with tracer.start_as_current_span("parse rows"):
        job_logger.warning("row 3 has no <b>email</b>")
    if attempt == 1:
        try:
            {}["contacts"]
        except KeyError:
            job_logger.exception("lookup failed")
        raise ConnectionError(HOSTILE)
    return "ok"


def write_invoice(ctx: dict[str, t.Any], *, order: int) -> str:
    """A sync job: SAQ runs it in a thread, in a copy of the attempt's context."""
    job_logger.warning("order %d has no billing address: invoice left blank", order)
    return "blank"
