"""The Pythons the package claims are the ones tox tests and the linters check against."""

from __future__ import annotations

import configparser
import itertools
import re

from tests.package.project import ROOT, pyproject

PROJECT = pyproject()


def claimed_pythons() -> list[str]:
    prefix = "Programming Language :: Python :: "
    versions = [c.removeprefix(prefix) for c in PROJECT["project"]["classifiers"]]
    return [v for v in versions if re.fullmatch(r"3\.\d+", v)]


def tox_envs() -> list[str]:
    """tox's env_list with its {a,b} braces expanded."""
    ini = configparser.ConfigParser()
    ini.read(ROOT / "tox.ini")
    envs = []
    for line in ini["tox"]["env_list"].split():
        parts = re.split(r"\{([^}]*)\}", line)
        choices = [part.split(",") if i % 2 else [part] for i, part in enumerate(parts)]
        envs += ["".join(combo) for combo in itertools.product(*choices)]
    return envs


def test_requires_python_starts_at_the_oldest_claimed_python() -> None:
    claimed = claimed_pythons()
    assert claimed == ["3.10", "3.11", "3.12", "3.13"]
    assert PROJECT["project"]["requires-python"] == f">={claimed[0]}"


def test_tox_runs_every_claimed_python_with_saq_lowest_and_newest_at_both_ends() -> None:
    envs = tox_envs()
    tested = {env.split("-")[0] for env in envs if env.startswith("py3")}
    assert tested == {"py" + v.replace(".", "") for v in claimed_pythons()}
    claimed = claimed_pythons()
    for version in (claimed[0], claimed[-1]):
        python = "py" + version.replace(".", "")
        assert {f"{python}-saqlowest", f"{python}-saqnewest"} <= set(envs)
    assert "package" in envs


def test_ci_puts_every_claimed_python_on_its_path() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    listed = re.search(r"^pythons=\(([^)]*)\)", ci, re.MULTILINE)
    assert listed is not None
    assert listed.group(1).split() == claimed_pythons()
    assert "--skip-missing-interpreters false" in ci


def test_ruff_and_mypy_check_against_the_oldest_claimed_python() -> None:
    oldest = claimed_pythons()[0]
    assert PROJECT["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")
    assert PROJECT["tool"]["mypy"]["python_version"] == oldest
