"""One gate for everything the SAQ toolbar serves: answer only where the toolbar would show.

As django-debug-toolbar guards every view with ``require_show_toolbar``, the trace pages,
their JSON API and the OTLP receiver answer only for a request the toolbar itself would
be shown on: the same ``enabled`` flag, the same ``allowed_hosts`` and the same
``show_toolbar_callback``. Anything else gets 404, as if nothing were there.
"""

from __future__ import annotations

import logging
import typing as t

if t.TYPE_CHECKING:
    from debug_toolbar.core.config import DebugToolbarConfig

logger = logging.getLogger(__name__)


class _WithoutExcludedPaths:
    """The toolbar's config as its own pages see it.

    The toolbar's ``exclude_paths`` keep it from injecting itself into its own pages
    (``/_debug_toolbar`` by default), which are exactly where ours live: those are left
    out, and every other setting is read live from the user's config.
    """

    exclude_paths: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()

    def __init__(self, config: DebugToolbarConfig) -> None:
        self._config = config

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._config, name)


def toolbar_would_show(config: DebugToolbarConfig, request: t.Any) -> bool:
    """Whether the toolbar configured by ``config`` would show itself for ``request``
    (a Litestar or Starlette request, as its ``show_toolbar_callback`` expects)."""
    should_show = getattr(type(config), "should_show_toolbar", None)
    try:
        if should_show is None:  # a config without framework: only its flag is known
            return bool(config.enabled)
        # The toolbar's own decision, so that the rules can never drift from it.
        return bool(should_show(_WithoutExcludedPaths(config), request))
    except Exception:
        logger.warning("show_toolbar_callback failed: the SAQ pages answer 404", exc_info=True)
        return False
