"""The demo's background jobs: what a small shop hands to its workers."""

from __future__ import annotations

import asyncio
import logging
import random
import typing as t

from opentelemetry import trace

Ctx = dict[str, t.Any]
tracer = trace.get_tracer("examples.demo.jobs")
# Lines written while a job runs show under its attempt on the trace page.
logger = logging.getLogger("examples.demo.jobs")


async def send_welcome_email(ctx: Ctx, *, to: str) -> str:
    """Completes: renders and 'sends' an email."""
    with tracer.start_as_current_span("render template"):
        await asyncio.sleep(0.02)
    with tracer.start_as_current_span("smtp send") as span:
        span.set_attribute("email.to_domain", to.rsplit("@", 1)[-1])
        await asyncio.sleep(0.05)
    return f"welcome email sent to {to}"


async def sync_crm(ctx: Ctx, *, customer_id: int) -> str:
    """Fails on its first attempt (the CRM times out), succeeds on the retry."""
    job = ctx["job"]
    logger.info("syncing customer %d with the CRM (attempt %d)", customer_id, job.attempts)
    await asyncio.sleep(0.03)
    if job.attempts < 2:
        logger.warning("the CRM did not answer: the job will retry")
        raise ConnectionError("CRM API timed out after 30s")
    return f"customer {customer_id} synced"


def generate_invoice_pdf(ctx: Ctx, *, order_id: int) -> str:
    """Fails for good: a sync function (runs in SAQ's thread pool) with a bug."""
    with tracer.start_as_current_span("load order"):
        logger.info("order %d loaded", order_id)
    raise ValueError(f"order {order_id} has no billing address")


async def send_reminder(ctx: Ctx, *, to: str) -> str:
    """Scheduled for later."""
    await asyncio.sleep(0.01)
    return f"reminder sent to {to}"


async def resize_image(ctx: Ctx, *, image: str, width: int) -> str:
    """One of a fan-out: the request resizes several images at once with ``map``."""
    await asyncio.sleep(random.uniform(0.02, 0.12))
    return f"{image}@{width}w"


FUNCTIONS = [send_welcome_email, sync_crm, generate_invoice_pdf, send_reminder, resize_image]
