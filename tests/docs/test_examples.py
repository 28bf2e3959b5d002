"""Every Python and shell example of the README and of the site, run by Sybil, in order, a
page at a time, against the real Redis the tests start (docs/development.md, "Every
example runs"). A block marked not-run is compiled and its imports run (Python), or has
the repository files it names checked (shell); its recipe runs whole in its own test."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import os
import re
import shlex
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from saq.queue.redis import RedisQueue
from sybil import Document, Example
from sybil.parsers.myst import CodeBlockParser

from opentelemetry.instrumentation.saq import SAQInstrumentor
from tests.docs.blocks import FILE_COMMENT, ROOT, NotRunParser, blocks, pages
from tests.otlp_receiver import ReceivedSpan, otlp_receiver

pytestmark = pytest.mark.examples
NOT_RUN = "__not_run__"
BIN = Path(sys.executable).parent
# A repository file a shell example names: benchmarks/soak.py, docker/compose.yml, ...
REPO_PATH = re.compile(r"(?:examples|benchmarks|docker|docs|tests|\.ci)/[\w./-]*\w")
REPO_MODULE = re.compile(r"(?:examples|benchmarks|tests)(?:\.\w+)+")


def mark_not_run(example: Example) -> None:
    example.namespace[NOT_RUN] = example.parsed


def _imports_only(source: str, filename: str) -> None:
    """Compile the whole block, then run its imports: a name it imports must exist."""
    tree = ast.parse(source, filename)
    compile(tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    exec(compile(ast.Module(body=imports, type_ignores=[]), filename, "exec"), {})


def run_python(example: Example) -> None:
    namespace = example.namespace
    source = str(example.parsed)
    reason = namespace.pop(NOT_RUN, None)
    if reason is not None:
        _imports_only(source, example.path)
        namespace["__counts__"]["marked"] += 1
        return
    namespace["__counts__"]["run"] += 1
    file = FILE_COMMENT.match(source)
    if file:  # a module of the reader's package: write it, import it, share its names
        path = namespace["__files__"] / file["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in path.relative_to(namespace["__files__"]).parents:
            if package != Path("."):
                (namespace["__files__"] / package / "__init__.py").touch()
        path.write_text(source, encoding="utf-8")
        importlib.invalidate_caches()
        module = importlib.import_module(file["path"].removesuffix(".py").replace("/", "."))
        namespace.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return
    # Padded so that a traceback's line numbers are the page's.
    padded = "\n" * example.line + source
    code = compile(padded, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        namespace["__loop__"].run_until_complete(result)


def run_bash(example: Example) -> None:
    namespace = example.namespace
    source = str(example.parsed)
    if namespace.pop(NOT_RUN, None) is not None:
        namespace["__counts__"]["marked"] += 1
        words = shlex.split(source.replace("\\\n", " "), comments=True)
        for word in words:
            for path in REPO_PATH.findall(word.replace("docs/_build", "")):
                assert (ROOT / path).exists(), f"{example.path}:{example.line}: no {path}"
            if REPO_MODULE.fullmatch(word):
                module = ROOT / word.replace(".", "/")
                candidates = [module.with_suffix(".py"), module, module.parent.with_suffix(".py")]
                assert any(c.exists() for c in candidates), f"{example.path}: no {word}"
        return
    namespace["__counts__"]["run"] += 1
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", source],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{example.path}:{example.line}\n{done.stdout}{done.stderr}"


PARSERS = [
    CodeBlockParser("python", evaluator=run_python),
    CodeBlockParser("bash", evaluator=run_bash),
    NotRunParser(mark_not_run),
]


@pytest.fixture
def fresh_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A global tracer provider a page may set, as a user's process sets it once."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", trace.Once())
    yield
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


@pytest.mark.usefixtures("fresh_globals")
@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_example_of_the_page_runs(
    page: Path, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = Document.parse(str(page), *PARSERS)
    # A module of its own, as the reader's code would have (Litestar reads a handler's
    # module to resolve its annotations).
    module = types.ModuleType(f"docs_example_{uuid.uuid4().hex[:8]}")
    sys.modules[module.__name__] = module
    document.namespace = module.__dict__
    loop = asyncio.new_event_loop()
    queue = RedisQueue.from_url(redis_url, name=f"docs-{uuid.uuid4().hex[:8]}")
    loop.run_until_complete(queue.connect())
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    modules = set(sys.modules)
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.syspath_prepend(str(tmp_path))
    counts = {"run": 0, "marked": 0}
    with otlp_receiver() as (endpoint, receiver):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)

        async def received(
            condition: Callable[[list[ReceivedSpan]], bool],
        ) -> list[ReceivedSpan]:
            deadline = time.monotonic() + 30
            while not condition(spans := receiver.snapshot()):
                assert time.monotonic() < deadline, spans
                await asyncio.sleep(0.05)
            return spans

        document.namespace.update(
            __loop__=loop,
            __files__=tmp_path,
            __counts__=counts,
            queue=queue,
            provider=provider,
            exporter=exporter,
            received=received,
        )
        try:
            for example in document:
                example.evaluate()
        finally:
            if SAQInstrumentor().is_instrumented_by_opentelemetry:
                SAQInstrumentor().uninstrument()
            loop.run_until_complete(queue.disconnect())
            loop.close()
            del sys.modules[module.__name__]
            for name in set(sys.modules) - modules:
                if getattr(sys.modules[name], "__file__", "") and str(tmp_path) in str(
                    sys.modules[name].__file__
                ):
                    del sys.modules[name]
    print(f"{page.relative_to(ROOT)}: {counts['run']} run, {counts['marked']} marked")
    assert counts["run"] + counts["marked"] == sum(
        1 for _ in Document.parse(str(page), *PARSERS[:2])
    )


# The names a page's examples are given (test_every_example_of_the_page_runs), typed, on
# one line, so that each block can sit at its own line of the page.
GIVEN = (
    "import typing; import saq; import opentelemetry.sdk.trace; "
    "import opentelemetry.sdk.trace.export.in_memory_span_exporter as _memory; "
    "queue: saq.Queue; provider: opentelemetry.sdk.trace.TracerProvider; "
    "exporter: _memory.InMemorySpanExporter; received: typing.Any\n"
)


def _typed_sources(page: Path, root: Path) -> dict[Path, list[range]]:
    """The page's Python blocks the reader sees, as mypy reads them: each file block as
    its file, the others as one module of the page; every block at its line of the page.
    Returns the lines of the marked blocks, by the file they are in."""
    name = re.sub(r"\W", "_", str(page.relative_to(ROOT)).removesuffix(".md"))
    page_module = root / f"page_{name}.py"
    module = [GIVEN]
    marked: dict[Path, list[range]] = {}
    for code in blocks(page, "python"):
        if code.invisible:  # the test's own checks, with top-level async with
            continue
        lines = range(code.line + 1, code.line + 1 + code.source.count("\n"))
        if code.file:
            target = root / code.file
            target.parent.mkdir(parents=True, exist_ok=True)
            for package in Path(code.file).parents:
                if package != Path("."):
                    (root / package / "__init__.py").touch()
            target.write_text(GIVEN + "\n" * (code.line - 1) + code.source, encoding="utf-8")
            module.append(f"from {code.file.removesuffix('.py').replace('/', '.')} import *\n")
        else:
            written = sum(part.count("\n") for part in module)
            module.append("\n" * max(code.line - written, 0) + code.source)
            target = page_module
        if code.not_run:
            marked.setdefault(target, []).append(lines)
    page_module.write_text("".join(module), encoding="utf-8")
    return marked


def test_every_marked_python_example_type_checks(tmp_path: Path) -> None:
    """mypy on the Python blocks that are not run (marked), in the context of their page's
    other blocks; pages whose blocks are files of a package (``myapp/``) each in a
    directory of their own, as each is its own project. The blocks that run are checked by
    running them."""
    from mypy import api

    roots: list[Path] = []
    marked: dict[str, list[range]] = {}  # file mypy reads: the lines of its marked blocks
    for page in pages():
        has_files = any(code.file for code in blocks(page, "python"))
        root = tmp_path / (page.stem if has_files else "pages")
        if root not in roots:
            roots.append(root)
            root.mkdir()
        for path, lines in _typed_sources(page, root).items():
            marked.setdefault(str(path), []).extend(lines)
    for root in roots:
        stdout, stderr, _ = api.run(
            [
                # Not the project's strict configuration: the reader's code, as written.
                "--config-file=",
                "--check-untyped-defs",
                "--disable-error-code=top-level-await",
                "--disable-error-code=no-redef",
                "--show-traceback",
                "--cache-dir",
                str(tmp_path / ".mypy_cache"),
                str(root),
            ]
        )
        assert not stderr, stderr
        errors = []
        for line in stdout.splitlines():
            found = re.match(r"(.+?):(\d+): error:", line)
            if found and any(int(found[2]) in r for r in marked.get(found[1], [])):
                errors.append(line)
        assert not errors, "\n".join(errors)
