"""Imports point one way, domain <- projections <- (api, workers) <- infra: the contracts in
pyproject.toml's `[tool.importlinter]` section, checked by import-linter on every test run."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_project_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def contracts_section() -> str:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[tool.importlinter]", f"root_packages = {config['root_packages']!r}"]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {value!r}" for key, value in contract.items()]
    return "\n".join(lines).replace("'", '"') + "\n"


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("domain.rule", "infra.adapter"),
        ("projections.view", "api.reply"),
        ("api.app", "workers.loop"),
        ("workers.loop", "api.app"),
    ],
)
def test_the_contracts_catch_an_import_against_the_direction(
    tmp_path: Path, importer: str, imported: str
) -> None:
    for package in ("domain", "projections", "api", "workers", "infra"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / f"{imported.replace('.', '/')}.py").write_text("VALUE = 1\n")
    (tmp_path / f"{importer.replace('.', '/')}.py").write_text(f"from {imported} import VALUE\n")
    (tmp_path / "pyproject.toml").write_text(contracts_section())

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert f"{importer} -> {imported}" in result.stdout
