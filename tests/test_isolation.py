"""Platform SDKs stay inside their adapter: botbuilder / botframework only in adapters/teams/,
slack_bolt / slack_sdk only in adapters/slack/ (the Python Bot Framework SDK is out of support
and the transport must stay swappable). Checked on the shipped code by parsing it with `ast`:
app.py, bot/, handlers/, store/, adapters/. Tests and benchmarks drive the SDKs on purpose."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("app.py", "bot", "handlers", "store", "adapters")
ALLOWED = {"botbuilder": "adapters/teams/", "botframework": "adapters/teams/",
           "slack_bolt": "adapters/slack/", "slack_sdk": "adapters/slack/"}


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append((node.args[0].value, node.lineno))
    return found


def violations(path: Path, source: str) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    out = []
    for module, line in imported_modules(ast.parse(source, filename=rel)):
        top = module.split(".")[0]
        home = ALLOWED.get(top)
        if home is not None and not rel.startswith(home):
            out.append(f"{rel}:{line} imports {module} (allowed only under {home})")
    return out


def shipped_files() -> list[Path]:
    files: list[Path] = []
    for entry in SHIPPED:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_platform_sdks_are_imported_only_by_their_adapter() -> None:
    problems = [v for path in shipped_files() for v in violations(path, path.read_text(encoding="utf-8"))]
    assert problems == []


@pytest.mark.parametrize("source, bad", [
    ("import botbuilder.core", True),
    ("from botframework.connector import Channels", True),
    ("import importlib\nimportlib.import_module('slack_sdk.web')", True),
    ("def f():\n    from slack_bolt import App", True),
    ("from adapters.teams import mount", False),
    ("from . import botbuilder", False),
])
def test_the_check_itself(source: str, bad: bool) -> None:
    assert bool(violations(ROOT / "bot" / "example.py", source)) is bad


def test_teams_package_is_import_light() -> None:
    import subprocess
    import sys

    code = "import sys, adapters.teams, adapters.server; print(any(m.split('.')[0] in ('botbuilder', 'botframework') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_adapter_itself_may_import_its_sdk() -> None:
    assert violations(ROOT / "adapters" / "teams" / "http.py", "import botbuilder.core") == []
    assert violations(ROOT / "adapters" / "teams" / "http.py", "import slack_sdk") != []
