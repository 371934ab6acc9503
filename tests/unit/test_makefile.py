"""`make run` installs only what running needs (the runtime); `make test` and `make bench`
the dev extra; each has its own stamp, so neither undoes nor repeats the other's install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile, pyproject.toml and the dashboard's npm manifests and copy script alone:
    no venv yet."""
    (tmp_path / "web").mkdir()
    for name in (
        "Makefile",
        "pyproject.toml",
        "web/package.json",
        "web/package-lock.json",
        "web/copy-assets.sh",
    ):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def installs(checkout: Path, target: str) -> list[str]:
    """The pip installs `make TARGET` would run (a dry run: nothing is executed)."""
    make = shutil.which("make")
    assert make is not None
    plan = subprocess.run(
        [make, "-n", target], cwd=checkout, capture_output=True, text=True, check=True
    ).stdout
    return [line.split(" install ", 1)[1] for line in plan.splitlines() if " pip install " in line]


def venv(checkout: Path, *stamps: str) -> None:
    """A venv as an earlier `make` left it, its stamps newer than pyproject.toml."""
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").touch()
    for stamp in stamps:
        (checkout / ".venv" / stamp).touch()


def test_run_installs_the_runtime_alone(checkout: Path) -> None:
    assert installs(checkout, "run") == ["--quiet --upgrade pip", "--quiet -e ."]
    assert installs(checkout, "demo") == ["--quiet --upgrade pip", "--quiet -e ."]


@pytest.mark.parametrize("target", ["test", "bench", "lint", "typecheck"])
def test_the_tools_get_the_dev_extra(checkout: Path, target: str) -> None:
    assert installs(checkout, target) == ["--quiet --upgrade pip", "--quiet -e '.[dev]'"]


def test_test_after_run_adds_the_dev_extra(checkout: Path) -> None:
    venv(checkout, ".runtime-stamp")
    assert installs(checkout, "test") == ["--quiet -e '.[dev]'"]
    assert installs(checkout, "run") == []


def test_run_after_test_installs_nothing_more(checkout: Path) -> None:
    venv(checkout, ".runtime-stamp", ".dev-stamp")
    assert installs(checkout, "run") == []
    assert installs(checkout, "test") == []


def test_the_readme_says_how_to_reach_the_robson_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.startswith("make run") and "\nmake test" in first_block
    assert "source .venv/bin/activate" in readme and ".venv/bin/robson migrate" in readme
