"""What opentelemetry-python-contrib's tooling and users read from the package metadata."""

from __future__ import annotations

import re

from packaging.requirements import Requirement

from opentelemetry.instrumentation.saq import package
from tests.package.project import ROOT, pyproject

PROJECT = pyproject()["project"]


def test_package_py_declares_the_instruments_extra_and_metrics() -> None:
    assert list(package._instruments) == PROJECT["optional-dependencies"]["instruments"]
    assert package._supports_metrics is True


def test_instrumentation_and_semantic_conventions_are_pinned_to_one_release() -> None:
    pins = {req.name: list(req.specifier) for req in map(Requirement, PROJECT["dependencies"])}
    assert set(pins) == {
        "opentelemetry-api",
        "opentelemetry-instrumentation",
        "opentelemetry-semantic-conventions",
    }
    (instrumentation,) = pins["opentelemetry-instrumentation"]
    (conventions,) = pins["opentelemetry-semantic-conventions"]
    (api,) = pins["opentelemetry-api"]
    assert instrumentation.operator == conventions.operator == "=="
    assert re.fullmatch(r"0\.\d+b\d+", instrumentation.version)
    assert conventions.version == instrumentation.version
    assert api.operator == "~="


def test_no_made_up_urls_and_a_changelog_with_an_unreleased_section() -> None:
    assert "urls" not in PROJECT
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert "keepachangelog.com" in changelog
