"""The panel's own presentation in litestar-debug-toolbar, where the toolbar lets us in.

The toolbar draws its own panels with a renderer per panel id, kept in a private
registry of its Litestar routes (``_PANEL_RENDERERS``), used by its request page. Its
docked toolbar draws panels in the browser (``DebugToolbar.renderPanelById`` in its
``toolbar.js``) and shows any panel it does not know as a generic key/value table.

``install()`` adds our table to the registry only after checking that the registry is
still what we expect (a probe render must come back as ours), and then teaches the dock
to show that same server-rendered table: a small script, appended to the toolbar the
middleware injects, swaps the generic table for the one on the request page once it has
loaded. Anything unexpected leaves the toolbar's generic rendering in place.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import typing as t

from opentelemetry.instrumentation.saq.debug_toolbar.panel.panel_view import panel_view
from opentelemetry.instrumentation.saq.debug_toolbar.templating import render

logger = logging.getLogger(__name__)

PANEL_ID = "SAQPanel"
_MARKER = "data-saq-panel"
_PROBE = {"summary": "probe", "jobs": []}


def render_panel(stats: t.Mapping[str, t.Any]) -> str:
    """The panel as one HTML fragment (escaped by the template engine)."""
    return render("panel.html", view=panel_view(stats))


def install() -> bool:
    """Register the table with the toolbar; False (and the generic table) if we cannot."""
    try:
        return _register() and _hook_dock()
    except Exception:
        logger.debug("the toolbar's renderers are not as expected", exc_info=True)
        return False


def _register() -> bool:
    from debug_toolbar.litestar.routes import handlers

    registry = getattr(handlers, "_PANEL_RENDERERS", None)
    render_content = getattr(handlers, "_render_panel_content", None)
    if not isinstance(registry, dict) or not callable(render_content):
        return False
    # The toolbar fills the registry with its own renderers the first time it renders,
    # and only while it is empty: render once first so that ours does not keep them out.
    render_content({"probe": True}, "")
    if not registry:
        return False
    registry[PANEL_ID] = render_panel
    if _MARKER not in str(render_content(_PROBE, PANEL_ID)):
        registry.pop(PANEL_ID, None)
        logger.info("the toolbar ignores its panel renderers: SAQ panel shown as a table")
        return False
    return True


def _hook_dock() -> bool:
    from debug_toolbar.litestar.middleware import DebugToolbarMiddleware

    original = getattr(DebugToolbarMiddleware, "_render_toolbar", None)
    if original is None:
        return False
    if getattr(original, "saq_panel_hook", False):
        return True

    @functools.wraps(original)
    def _render_toolbar(self: t.Any, data: dict[str, t.Any]) -> str:
        html = original(self, data)
        try:
            ours = any(panel.get("panel_id") == PANEL_ID for panel in data.get("panels", []))
            if ours and isinstance(html, str) and 'id="debug-toolbar"' in html:
                return html + dock_script()
        except Exception:
            logger.debug("could not add the SAQ panel's dock script", exc_info=True)
        return str(html)

    _render_toolbar.saq_panel_hook = True  # type: ignore[attr-defined]
    DebugToolbarMiddleware._render_toolbar = _render_toolbar  # type: ignore[method-assign]
    return True


@functools.lru_cache(maxsize=1)
def dock_script() -> str:
    package = importlib.resources.files("opentelemetry.instrumentation.saq.debug_toolbar")
    source = package.joinpath("static").joinpath("dock.js").read_text(encoding="utf-8")
    # A plain str on purpose: Markup would escape the toolbar's HTML it is appended to.
    return f"<script>{source}</script>"
