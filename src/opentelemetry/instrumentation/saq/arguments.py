"""Job arguments made safe to show: secret-looking keys redacted, long values cut.

Job arguments can hold secrets, so nothing here runs unless the user opts in
(``instrument(record_arguments=True)``) or looks at them in the debug toolbar, which
only runs in development.
"""

from __future__ import annotations

import json
import re
import typing as t

__all__ = ["DEFAULT_SECRET_WORDS", "ArgumentPolicy"]

DEFAULT_SECRET_WORDS = ("password", "passwd", "token", "secret", "key", "authorization", "cookie")
"""The words that mark an argument's key as secret (matched anywhere in the key, in any case)."""
REDACTED = "[redacted]"


class ArgumentPolicy:
    """How job arguments are shown on send spans (``saq.job.kwargs``) and in the panel.

    It only renders a copy: it never changes the job's arguments, and never raises on a
    value it cannot show (that value is shown by its ``repr``, cut). Nothing reads
    arguments unless ``instrument(record_arguments=True)`` or ``argument_policy=`` asks.

    Args:
        secret_words: a key is redacted when it contains one of these words, in any case
            (``api_key``, ``X-Auth-Token``, ``db_password``); nested dicts too.
        max_length: longest shown value, in characters, before it is cut with ``…``.
        max_items: most keys or list items shown per level.

    Example::

        ArgumentPolicy(secret_words=("password", "iban")).render({"iban": "DE…", "n": 3})
        # '{"iban": "[redacted]", "n": 3}'
    """

    def __init__(
        self,
        secret_words: t.Iterable[str] = DEFAULT_SECRET_WORDS,
        max_length: int = 200,
        max_items: int = 50,
    ) -> None:
        words = [re.escape(word) for word in secret_words if word]
        self._secret = re.compile("|".join(words), re.IGNORECASE) if words else None
        self.max_length = max_length
        self.max_items = max_items

    def is_secret(self, key: object) -> bool:
        """Whether ``key`` contains one of the secret words (in any case)."""
        return self._secret is not None and self._secret.search(str(key)) is not None

    def clean(self, value: t.Any, depth: int = 0) -> t.Any:
        """A JSON-safe copy of ``value`` with secrets redacted and long values cut."""
        if depth > 5:
            return "…"
        if isinstance(value, dict):
            items = list(value.items())
            cleaned = {
                str(key): REDACTED if self.is_secret(key) else self.clean(item, depth + 1)
                for key, item in items[: self.max_items]
            }
            if len(items) > self.max_items:
                cleaned["…"] = f"{len(items) - self.max_items} more"
            return cleaned
        if isinstance(value, (list, tuple, set, frozenset)):
            seq = list(value)
            cleaned_list = [self.clean(item, depth + 1) for item in seq[: self.max_items]]
            if len(seq) > self.max_items:
                cleaned_list.append(f"… {len(seq) - self.max_items} more")
            return cleaned_list
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return (
                value
                if value == value and value not in (float("inf"), float("-inf"))
                else str(value)
            )
        text = value if isinstance(value, str) else repr(value)
        return self._cut(text)

    def render(self, kwargs: t.Mapping[str, t.Any] | None) -> str:
        """The cleaned arguments as one JSON string, itself cut to a bounded length."""
        text = json.dumps(self.clean(dict(kwargs or {})), ensure_ascii=False, sort_keys=True)
        return self._cut(text, self.max_length * 10)

    def _cut(self, text: str, limit: int | None = None) -> str:
        limit = self.max_length if limit is None else limit
        return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
