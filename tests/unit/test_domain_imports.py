"""The domain stands alone: it imports no outer layer, and its trading core knows nothing of
the chat built on top of it (`domain/assistant/`)."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
OUTER_LAYERS = ("projections", "api", "workers", "infra", "tests")


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def offending(paths: list[Path], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(DOMAIN.parent)} imports {module}"
        for path in paths
        for module in imported_modules(path)
        if any(module == p or module.startswith(f"{p}.") for p in prefixes)
    )


def test_no_domain_module_imports_an_outer_layer() -> None:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert len(modules) > 20
    assert offending(modules, OUTER_LAYERS) == []


def test_the_trading_core_does_not_import_the_chat() -> None:
    chat = DOMAIN / "assistant"
    core = [p for p in sorted(DOMAIN.rglob("*.py")) if not p.is_relative_to(chat)]
    assert DOMAIN / "position.py" in core
    assert offending(core, ("domain.assistant",)) == []


def test_the_check_sees_an_import_of_the_chat(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("from domain import assistant\nfrom domain.assistant.guard import analyze\n")
    assert imported_modules(module) >= {"domain.assistant", "domain.assistant.guard"}
