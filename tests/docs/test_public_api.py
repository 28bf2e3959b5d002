"""Every public name says what it does, and every option of ``instrument()`` is documented.

A public name is one in the ``__all__`` of a module whose import path has no part that
starts with an underscore. Each must have a docstring (data: a string right after the
assignment, or ``#:`` comments right before it, as Sphinx reads them), each public method
of a public class too, and each must be on the API reference page. Each key of
``InstrumentOptions`` (the keyword options of ``SAQInstrumentor().instrument()``) must have
its own docstring and its own entry on the options page. Every attribute key of the
vocabulary module (``_attributes``) is on the spans or metrics reference page, and every
instrument the instrumentation creates has a row on the metrics page.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import types
import typing as t
from pathlib import Path

import pytest

import opentelemetry.instrumentation.saq as saq
from opentelemetry.instrumentation.saq import InstrumentOptions

ROOT = Path(__file__).resolve().parents[2]
API_PAGE = ROOT / "docs" / "reference" / "api.md"
OPTIONS_PAGE = ROOT / "docs" / "reference" / "options.md"

# The names issue 26 asks the API reference for: each must be public by the rule above.
NAMED = {
    "SAQInstrumentor",
    "InstrumentOptions",
    "SpanHook",
    "ArgumentPolicy",
    "SAQPanel",
    "trace_store",
    "TraceStore",
    "SAQTracePlugin",
    "mount_trace_pages",
}


def public_modules() -> list[types.ModuleType]:
    found = [saq]
    for info in pkgutil.walk_packages(saq.__path__, f"{saq.__name__}."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found.append(module)
    return found


def public_names() -> list[tuple[str, str]]:
    return [(module.__name__, name) for module in public_modules() for name in module.__all__]


def _assignment_doc(module: types.ModuleType, name: str, seen: int = 0) -> str | None:
    """The docstring of a module-level data name, following ``from x import name``."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    body = ast.parse(source).body
    for index, node in enumerate(body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            after = body[index + 1] if index + 1 < len(body) else None
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                return after.value.value
            comments = []
            line = node.lineno - 2
            while line >= 0 and lines[line].lstrip().startswith("#:"):
                comments.append(lines[line].lstrip()[2:])
                line -= 1
            return "\n".join(reversed(comments)) or None
        if not (isinstance(node, ast.ImportFrom) and node.module and seen < 5):
            continue
        if any((alias.asname or alias.name) == name for alias in node.names):
            return _assignment_doc(importlib.import_module(node.module), name, seen + 1)
    return None


def docstring(module: types.ModuleType, name: str) -> str | None:
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isroutine(value):
        return inspect.getdoc(value)
    return _assignment_doc(module, name)


@pytest.mark.parametrize(("module", "name"), public_names())
def test_every_public_name_has_a_docstring(module: str, name: str) -> None:
    doc = docstring(importlib.import_module(module), name)
    assert doc and doc.strip(), f"{module}.{name} has no docstring"


@pytest.mark.parametrize(("module", "name"), public_names())
def test_every_public_method_has_a_docstring(module: str, name: str) -> None:
    value = getattr(importlib.import_module(module), name)
    if not inspect.isclass(value):
        return
    undocumented = [
        attribute
        for attribute, member in vars(value).items()
        if not attribute.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, (property, classmethod)))
        and not (inspect.getdoc(getattr(value, attribute)) or "").strip()
    ]
    assert undocumented == [], f"{module}.{name}: methods without a docstring"


@pytest.mark.parametrize(("module", "name"), public_names())
def test_every_public_name_is_on_the_api_page(module: str, name: str) -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    assert f"{module}.{name}" in page, f"{module}.{name} is not on {API_PAGE.name}"


def test_the_names_users_look_for_are_public() -> None:
    assert NAMED - {name for _, name in public_names()} == set()


def options() -> list[str]:
    # The keys InstrumentOptions declares: what instrument(**kwargs: Unpack[...]) accepts.
    return sorted(InstrumentOptions.__annotations__)


def option_docstrings() -> dict[str, str]:
    """Each key of InstrumentOptions and the string right after its declaration."""
    body = ast.parse(inspect.getsource(InstrumentOptions)).body[0]
    assert isinstance(body, ast.ClassDef)
    found: dict[str, str] = {}
    for node, after in zip(body.body, [*body.body[1:], None], strict=True):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        found[node.target.id] = str(after.value.value) if documented else ""  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("option", options())
def test_every_option_of_instrument_has_a_docstring(option: str) -> None:
    assert option_docstrings().get(option, "").strip(), f"{option}: no docstring"


@pytest.mark.parametrize("option", options())
def test_every_option_of_instrument_is_on_the_options_page(option: str) -> None:
    page = OPTIONS_PAGE.read_text(encoding="utf-8")
    # Its own heading, with its type and default said below it.
    heading = re.search(rf"^#+ `{re.escape(option)}`\s*$", page, re.MULTILINE)
    assert heading, f"no heading for `{option}` on {OPTIONS_PAGE.name}"
    section = page[heading.end() :].split("\n#", 1)[0]
    assert re.search(r"^Type: ", section, re.MULTILINE), f"`{option}`: no type"
    assert re.search(r"^Default: ", section, re.MULTILINE), f"`{option}`: no default"


def attribute_keys() -> list[str]:
    """Every attribute key of the vocabulary module: its string constants that are keys."""
    from opentelemetry.instrumentation.saq import _attributes

    values = {getattr(_attributes, name) for name in _attributes.__all__}
    return sorted(
        value
        for value in values
        if isinstance(value, str) and "." in value and not value.startswith("https://")
    )


@pytest.mark.parametrize("key", attribute_keys())
def test_every_attribute_key_is_on_the_reference(key: str) -> None:
    pages = [ROOT / "docs" / "reference" / name for name in ("spans.md", "metrics.md")]
    assert any(f"`{key}`" in page.read_text(encoding="utf-8") for page in pages), key


def instrument_names() -> list[str]:
    """The name of every instrument the instrumentation creates, gauges included."""
    from opentelemetry.metrics import NoOpMeter

    from opentelemetry.instrumentation.saq import _health_gauges, _metrics

    created: list[str] = []

    class Recording(NoOpMeter):
        def create_counter(self, name: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
            created.append(name)
            return super().create_counter(name, *args, **kwargs)

        def create_histogram(self, name: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
            created.append(name)
            return super().create_histogram(name, *args, **kwargs)

        def create_observable_gauge(self, name: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
            created.append(name)
            return super().create_observable_gauge(name, *args, **kwargs)

    meter = Recording("test")
    _metrics.Instruments(meter)
    _health_gauges.register(meter, lambda: None)
    return created


@pytest.mark.parametrize("name", instrument_names())
def test_every_instrument_is_on_the_metrics_page(name: str) -> None:
    page = (ROOT / "docs" / "reference" / "metrics.md").read_text(encoding="utf-8")
    assert f"| `{name}` |" in page, f"{name} has no row on metrics.md"
