"""The trace pages as server-rendered HTML: inline CSS, no script but the theme switch.

Everything shown comes from spans, and so from user code (function names, queue names,
exception messages): it is all escaped.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from html import escape

from opentelemetry.instrumentation.saq.debug_toolbar.trace_view import PAGE_PREFIX

_CSS = """
:root{--bg:#0f1115;--fg:#e6e6e6;--muted:#9aa0a6;--line:#2a2f3a;--panel:#171a21;
--request:#7c8cff;--send:#4fb3ff;--wait:#6b7280;--process:#3ecf8e;--error:#ff5d5d;--span:#c792ea}
[data-theme=light]{--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d0d7de;--panel:#f6f8fa;
--request:#4b5bdc;--send:#0969da;--wait:#8c959f;--process:#1a7f37;--error:#cf222e;--span:#8250df}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif}
header{padding:16px 24px;border-bottom:1px solid var(--line);background:var(--panel)}
header h1{margin:4px 0;font-size:20px}header p{margin:0;color:var(--muted)}
a{color:var(--send)}nav a{margin-right:16px}main{padding:16px 24px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:6px 8px;
border-bottom:1px solid var(--line)}th{color:var(--muted);font-weight:600}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;
border:1px solid var(--line)}.badge.failed,.badge.aborted{color:var(--error);
border-color:var(--error)}.badge.complete{color:var(--process);border-color:var(--process)}
.badge.retrying,.badge.queued,.badge.active{color:var(--send);border-color:var(--send)}
.legend span{margin-right:14px}.legend i{display:inline-block;width:18px;height:8px;
border-radius:2px;margin-right:4px;vertical-align:middle}
.waterfall{list-style:none;margin:12px 0 0;padding:0}
.row{display:grid;grid-template-columns:minmax(260px,34%) 1fr 90px;align-items:center;
border-bottom:1px solid var(--line);min-height:26px}
.label{padding-left:calc(var(--depth) * 16px + 4px);white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}.label small{color:var(--muted)}
.track{position:relative;height:14px;margin:0 8px}
.bar{position:absolute;top:0;height:14px;min-width:2px;border-radius:3px}
.kind-request .bar{background:var(--request)}.kind-send .bar{background:var(--send)}
.kind-wait .bar{background:repeating-linear-gradient(45deg,var(--wait) 0 4px,transparent 4px 7px);
border:1px solid var(--wait)}.kind-process .bar{background:var(--process)}
.kind-span .bar{background:var(--span)}.status-error .bar{background:var(--error)}
.status-error .label{color:var(--error)}.pending .bar{opacity:.6}
.dur{text-align:right;color:var(--muted);font-variant-numeric:tabular-nums;padding-right:4px}
.axis{display:grid;grid-template-columns:minmax(260px,34%) 1fr 90px;color:var(--muted);
font-size:12px}.ticks{position:relative;height:16px;margin:0 8px}
.ticks span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.ticks span:first-child{transform:none}.ticks span:last-child{transform:translateX(-100%)}
.empty{color:var(--muted);padding:24px 0}
.theme{float:right;background:none;border:1px solid var(--line);color:var(--fg);
border-radius:6px;padding:2px 10px;cursor:pointer}
"""

# Follows the toolbar's own theme setting (same localStorage key, same attribute).
_THEME = (
    "<script>document.documentElement.dataset.theme="
    "localStorage.getItem('debug-toolbar-theme')||'dark';"
    "function saqToggleTheme(){var t=document.documentElement.dataset.theme==='dark'?"
    "'light':'dark';document.documentElement.dataset.theme=t;"
    "localStorage.setItem('debug-toolbar-theme',t)}</script>"
)


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta_refresh = '<meta http-equiv="refresh" content="2">' if refresh else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta_refresh}<title>{escape(title)}</title>{_THEME}<style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def _nav() -> str:
    return (
        '<button class="theme" onclick="saqToggleTheme()" title="Toggle theme">◐</button>'
        f'<nav><a href="{PAGE_PREFIX}/">SAQ traces</a>'
        '<a href="/_debug_toolbar/">Toolbar history</a></nav>'
    )


def _request_title(item: dict[str, t.Any]) -> str:
    if item.get("method") and item.get("path"):
        return f"{item['method']} {item['path']}"
    return str(item.get("name") or "(no request span)")


def render_list(traces: list[dict[str, t.Any]]) -> str:
    """Recent traces with SAQ jobs, newest first."""
    if traces:
        rows = "".join(
            "<tr>"
            f"<td>{escape(_clock(item['started_at']))}</td>"
            f'<td><a href="{escape(item["page"])}">{escape(_request_title(item))}</a></td>'
            f"<td>{item['jobs']}</td>"
            f'<td><span class="badge {escape(str(item["worst_status"]))}">'
            f"{escape(str(item['worst_status'] or '-'))}</span></td>"
            f"<td><code>{escape(item['trace_id'])}</code></td>"
            "</tr>"
            for item in traces
        )
        table = (
            "<table><thead><tr><th>Started</th><th>Request</th><th>Jobs</th>"
            f"<th>Worst status</th><th>Trace id</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        table = (
            '<p class="empty">No traces with SAQ jobs yet: make a request that enqueues one.</p>'
        )
    header = f"<header>{_nav()}<h1>SAQ traces</h1><p>{len(traces)} recent traces</p></header>"
    return _page("SAQ traces", f"{header}<main>{table}</main>")


def render_trace(view: dict[str, t.Any]) -> str:
    """One trace: request → send → queue wait → attempts, on one time axis."""
    total = max(float(view["duration_ms"]), 0.001)
    rows = "".join(_row(row, total) for row in view["rows"])
    ticks = "".join(
        f'<span style="left:{i * 25}%">{_fmt_ms(total * i / 4)}</span>' for i in range(5)
    )
    legend = "".join(
        f'<span><i style="background:var(--{color})"></i>{label}</span>'
        for color, label in (
            ("request", "request"),
            ("send", "enqueue (send)"),
            ("wait", "queue wait"),
            ("process", "attempt (process)"),
            ("error", "failed attempt"),
            ("span", "span in a job"),
        )
    )
    header = (
        f"<header>{_nav()}<h1>{escape(_request_title(view))}</h1>"
        f"<p>{view['jobs']} job{'' if view['jobs'] == 1 else 's'} · worst status "
        f'<span class="badge {escape(str(view["worst_status"]))}">'
        f"{escape(str(view['worst_status'] or '-'))}</span> · {_fmt_ms(total)} · trace "
        f"<code>{escape(view['trace_id'])}</code>"
        f"{_services(view.get('services') or [])}</p></header>"
    )
    body = (
        f'<main><p class="legend">{legend}</p>'
        f'<div class="axis"><span></span><div class="ticks">{ticks}</div><span></span></div>'
        f'<ol class="waterfall">{rows}</ol></main>'
    )
    # Refresh while jobs are still on their way (and the panel's watch window lasts), so
    # the page is live without a script.
    return _page(f"SAQ trace {_request_title(view)}", header + body, refresh=view["reload"])


def _services(services: list[str]) -> str:
    names = ", ".join(f'<span class="service">{escape(name)}</span>' for name in services)
    return f" · services {names}" if names else ""


def _row(row: dict[str, t.Any], total: float) -> str:
    left = min(100.0, 100.0 * float(row["start_ms"]) / total)
    width = min(100.0 - left, 100.0 * float(row["duration_ms"]) / total)
    title = "\n".join(
        [str(row["name"])]
        + ([f"error: {row['error']}"] if row.get("error") else [])
        + [f"{key} = {value}" for key, value in row["attributes"].items()]
    )
    detail = ""
    if row["kind"] in ("send", "process", "wait") and row.get("function"):
        detail = f" <small>{escape(str(row['function']))}</small>"
    if row["kind"] == "process":
        outcome = row.get("job_status")
        outcome = "will retry" if outcome == "queued" else outcome
        attempt, status = escape(str(row.get("attempt"))), escape(str(outcome))
        detail += f" <small>attempt {attempt} · {status}</small>"
    if row["kind"] == "process" and row.get("service"):
        detail += f' <small class="service">on {escape(str(row["service"]))}</small>'
    classes = f"row kind-{escape(row['kind'])} status-{escape(row['status'])}"
    if row.get("pending"):
        classes += " pending"
    return (
        f'<li class="{classes}" style="--depth:{int(row["depth"])}"'
        f' data-kind="{escape(row["kind"])}"'
        f' data-start-ms="{float(row["start_ms"])}" data-status="{escape(row["status"])}"'
        f' data-function="{escape(str(row.get("function") or ""))}"'
        f' data-attempt="{escape(str(row.get("attempt") or ""))}"'
        f' data-service="{escape(str(row.get("service") or ""))}">'
        f'<span class="label">{escape(str(row["name"]))}{detail}</span>'
        f'<span class="track"><span class="bar" style="left:{left:.3f}%;width:{width:.3f}%"'
        f' title="{escape(title)}"></span></span>'
        f'<span class="dur">{_fmt_ms(float(row["duration_ms"]))}</span></li>'
    )


def _fmt_ms(ms: float) -> str:
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def _clock(epoch_seconds: float) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds).strftime("%H:%M:%S")
