"""The demo web app: Litestar, the debug toolbar with the Background Tasks panel, and the
SAQ trace pages. Each page enqueues jobs of a different fate; the toolbar shows them."""

from __future__ import annotations

import asyncio
import html
import os
import time
import typing as t

from debug_toolbar.litestar import DebugToolbarPlugin, LitestarDebugToolbarConfig
from litestar import Litestar, MediaType, get
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from saq import Worker
from saq.queue import Queue

from examples.demo import telemetry
from examples.demo.jobs import FUNCTIONS
from opentelemetry.instrumentation.saq.debug_toolbar.litestar import SAQTracePlugin

QUEUE_NAME = "demo"
PANEL = "opentelemetry.instrumentation.saq.debug_toolbar.SAQPanel"

# !important: the toolbar's stylesheet themes the whole page, and this page stays light.
_STYLE = """html,body{background:#fff!important}body{font:16px/1.5 system-ui,sans-serif;
max-width:760px;margin:40px auto;padding:0 16px;color:#1f2328!important}
p,li,h1{color:#1f2328!important}a.button{display:inline-block;margin:4px 8px 4px 0;
padding:6px 14px;border-radius:6px;background:#0969da;color:#fff;text-decoration:none}
code{background:#f6f8fa;padding:1px 5px;border-radius:4px}li{margin:6px 0}
.done{padding:10px 14px;border-left:4px solid #1a7f37;background:#f6f8fa}"""

ACTIONS = [
    (
        "/signup",
        "Sign up",
        "a welcome email that completes, and a CRM sync that fails once and succeeds on its retry",
    ),
    ("/invoice", "Create an invoice", "a PDF job that fails for good (a sync function)"),
    ("/reminder", "Schedule a reminder", "a job scheduled 30 seconds from now"),
    ("/gallery", "Upload a gallery", "five image resizes fanned out with queue.map, awaited"),
    ("/everything", "All at once", "sign-up, invoice and reminder jobs from one request"),
]


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _done(message: str) -> str:
    return _page(
        message,
        f"<h1>SAQ demo</h1><p class='done'>{html.escape(message)}</p>"
        "<p>Open <b>Background Tasks</b> in the debug toolbar to see the jobs this "
        "request enqueued; the panel follows them until they finish. "
        "<a href='/_debug_toolbar/saq/'>SAQ traces</a> draws each request as a waterfall.</p>"
        "<p><a href='/'>← back</a></p>",
    )


def create_app(queue: Queue, in_process_worker: bool) -> Litestar:
    """The app; with ``in_process_worker`` a SAQ worker runs in the app's event loop."""
    telemetry.setup("saq-demo-app")
    worker = Worker(queue, functions=FUNCTIONS, concurrency=10)
    worker.SIGNALS = []  # the web server owns the process's signals
    tasks: list[asyncio.Task[None]] = []

    @get("/", media_type=MediaType.HTML)
    async def index() -> str:
        items = "".join(
            f"<li><a class='button' href='{path}'>{label}</a> {html.escape(what)}</li>"
            for path, label, what in ACTIONS
        )
        where = (
            "a worker in this process"
            if in_process_worker
            else "workers in other processes (<code>saq examples.demo.worker.settings</code>; "
            "with <code>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:8000"
            "/_debug_toolbar/saq/v1/traces</code> and <code>OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="
            "http://127.0.0.1:8000/_debug_toolbar/saq/v1/logs</code> their spans and log "
            "lines appear on the trace pages)"
        )
        return _page(
            "SAQ demo",
            "<h1>SAQ demo</h1><p>Every button below is a request that enqueues SAQ jobs; "
            f"{where} runs them. After each click, open <b>Background Tasks</b> in the debug "
            "toolbar: it lists the request's jobs with their status, queue wait, "
            "run time, attempts and errors.</p>"
            f"<ul>{items}</ul>"
            "<p>Then see <a href='/_debug_toolbar/saq/'>SAQ traces</a> for request → enqueue → "
            "queue wait → attempts on one time axis, and the <a href='/_debug_toolbar/'>toolbar "
            "history</a>. With <code>OTEL_EXPORTER_OTLP_ENDPOINT</code> set, the same traces go "
            "to Jaeger (service <code>saq-demo-app</code>).</p>",
        )

    @get("/signup", media_type=MediaType.HTML)
    async def signup(email: str = "ada@example.com") -> str:
        await queue.enqueue("send_welcome_email", to=email)
        await queue.enqueue("sync_crm", customer_id=42, retries=3, retry_delay=0.5)
        return _done(f"Signed up {email}: welcome email and CRM sync enqueued.")

    @get("/invoice", media_type=MediaType.HTML)
    async def invoice(order_id: int = 1001) -> str:
        await queue.enqueue("generate_invoice_pdf", order_id=order_id)
        return _done(f"Invoice for order {order_id} enqueued (it will fail: no billing address).")

    @get("/reminder", media_type=MediaType.HTML)
    async def reminder() -> str:
        await queue.enqueue("send_reminder", to="ada@example.com", scheduled=int(time.time()) + 30)
        return _done("Reminder scheduled in 30 seconds.")

    @get("/gallery", media_type=MediaType.HTML)
    async def gallery() -> str:
        images = [{"image": f"photo-{i}.jpg", "width": 640} for i in range(1, 6)]
        resized = await queue.map("resize_image", images, timeout=30)
        return _done(f"Gallery resized: {', '.join(t.cast(list[str], resized))}.")

    @get("/everything", media_type=MediaType.HTML)
    async def everything() -> str:
        await queue.enqueue("send_welcome_email", to="grace@example.com")
        await queue.enqueue("sync_crm", customer_id=7, retries=3, retry_delay=1.5)
        await queue.enqueue("generate_invoice_pdf", order_id=1002)
        await queue.enqueue(
            "send_reminder", to="grace@example.com", scheduled=int(time.time()) + 30
        )
        return _done("Signed up, invoiced and reminded: four jobs enqueued.")

    async def startup() -> None:
        await queue.connect()
        if in_process_worker:
            tasks.append(asyncio.create_task(worker.start()))

    async def shutdown() -> None:
        if in_process_worker:
            await worker.stop()
            for task in tasks:
                task.cancel()
        await queue.disconnect()

    toolbar = LitestarDebugToolbarConfig(
        enabled=os.environ.get("DEBUG_TOOLBAR", "1") != "0", extra_panels=[PANEL]
    )
    return Litestar(
        [index, signup, invoice, reminder, gallery, everything],
        plugins=[
            # The toolbar's own routes (its OTLP receiver among them) are not the app's traffic.
            OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/_debug_toolbar"])),
            DebugToolbarPlugin(toolbar),
            SAQTracePlugin(),
        ],
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
