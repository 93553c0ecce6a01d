"""The layers of `bot/` hold (DESIGN.md section 2): the Slack libraries live under `bot/slack/` and
the sandbox, the Databricks SDK under `bot/databricks/` and the sandbox, the Block Kit
builders under `bot/slack/blocks/` never reach the database (not even through another module),
each layer imports only the layers below it (domain < services < slack < cli), and bot's modules
import each other without a circle. (`bot/domain/` staying pure is tests/domain/test_policy.py's.)

Imports are read with `ast`, never executed. Each rule is a function of the tree's root, so the
tests at the bottom can hand it a small made-up `bot/` and see it catch what it should."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SLACK_LIBRARIES = ("slack_sdk", "slack_bolt")
SLACK_HOMES = ("bot/slack/", "bot/sandbox/")
DATABRICKS_SDK = ("databricks.sdk",)
DATABRICKS_SDK_HOMES = ("bot/databricks/", "bot/sandbox/")
BUILDERS = "bot/slack/blocks/"
DATABASE = ("bot.db", "bot.models", "sqlmodel", "sqlalchemy")
# Lower layers never import upper ones: (the files of a layer, the packages above it).
LAYERS = (
    (("bot/domain/",), ("bot.services", "bot.slack", "bot.cli")),
    (("bot/services/",), ("bot.slack", "bot.cli")),
    (("bot/slack/", "bot/jobs/"), ("bot.cli",)),
)


@dataclass(frozen=True)
class Import:
    file: str  # relative to the root, e.g. "bot/cli.py"
    line: int
    targets: tuple[str, ...]  # absolute: `from a import b, c` -> ("a", "a.b", "a.c"), as b may be a module
    runtime: bool  # False under `if TYPE_CHECKING:` (read by type checkers only)

    def first_within(self, names: tuple[str, ...]) -> str | None:
        return next((target for target in self.targets if _within(target, names)), None)


def module_name(file: str) -> str:
    """ "bot/slack/app.py" -> "bot.slack.app"; "bot/slack/__init__.py" -> "bot.slack"."""
    parts = file.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def bot_files(root: Path) -> list[str]:
    return sorted(
        path.relative_to(root).as_posix()
        for path in (root / "bot").rglob("*.py")
        if "migrations" not in path.relative_to(root).parts
    )


def imports(root: Path, file: str) -> Iterator[Import]:
    """Every import statement in `file`, relative ones made absolute."""
    tree = ast.parse((root / file).read_text(), filename=file)
    package = module_name(file) if file.endswith("__init__.py") else module_name(file).rpartition(".")[0]

    def visit(node: ast.AST, runtime: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, node.lineno, (alias.name,), runtime)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = tuple(f"{stem}.{alias.name}" for alias in node.names if alias.name != "*")
            yield Import(file, node.lineno, (stem, *names), runtime)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, False)
            for child in node.orelse:
                yield from visit(child, runtime)
        else:
            for child in ast.iter_child_nodes(node):
                yield from visit(child, runtime)

    yield from visit(tree, True)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _within(module: str, names: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


def confined(root: Path, libraries: tuple[str, ...], homes: tuple[str, ...]) -> list[str]:
    """Imports of `libraries` from files outside `homes` (folders end in "/")."""
    return [
        f"{found.file}:{found.line} imports {target} (only {', '.join(homes)} may)"
        for file in bot_files(root)
        if not file.startswith(homes)
        for found in imports(root, file)
        if (target := found.first_within(libraries))
    ]


def builders_reaching_the_database(root: Path) -> list[str]:
    """Each builder that reaches the database through its run-time imports, directly or through
    other bot modules (importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` too), with
    the shortest chain of imports that gets there."""
    files = {module_name(file): file for file in bot_files(root)}
    edges: dict[str, dict[str, str]] = {name: {} for name in files}  # importer -> imported -> "file:line"
    for name, file in files.items():
        for found in imports(root, file):
            if not found.runtime:
                continue
            if database := found.first_within(DATABASE):
                edges[name].setdefault(database, f"{found.file}:{found.line} imports {database}")
                continue
            for target in found.targets:
                parts = target.split(".")
                for module in (".".join(parts[:end]) for end in range(1, len(parts) + 1)):
                    if module in files and module != name:
                        edges[name].setdefault(module, f"{found.file}:{found.line} imports {module}")
    messages = []
    for name, file in sorted(files.items(), key=lambda item: item[1]):
        if file.startswith(BUILDERS) and (chain := _chain_to(name, DATABASE, edges)):
            messages.append(
                "; ".join(chain) + f" (the builders under {BUILDERS} take plain values, never the database)"
            )
    return messages


def _chain_to(start: str, names: tuple[str, ...], edges: dict[str, dict[str, str]]) -> list[str]:
    """The imports on the shortest way from `start` to a module within `names` (breadth first),
    or [] when there is none."""
    came_from: dict[str, str] = {start: ""}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(edges.get(node, {})):
                if successor in came_from:
                    continue
                came_from[successor] = node
                if _within(successor, names):
                    path = [successor]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    path.reverse()
                    return [edges[a][b] for a, b in zip(path, path[1:], strict=False)]
                following.append(successor)
        frontier = following
    return []


def upward_imports(root: Path) -> list[str]:
    """Imports of a layer above the importer's (`LAYERS`), run-time or for type checking only: a
    lower layer must not know the upper ones' names at all."""
    return [
        f"{found.file}:{found.line} imports {target} (nothing under {', '.join(layer)} imports {', '.join(above)})"
        for layer, above in LAYERS
        for file in bot_files(root)
        if file.startswith(layer)
        for found in imports(root, file)
        if (target := found.first_within(above))
    ]


def import_circles(root: Path) -> list[str]:
    """Each circle of imports among bot's modules: one message per strongly connected group, naming
    every import on one circle through it. An import inside a function counts: importing late hides
    a circle from the interpreter, not from the reader. Only `if TYPE_CHECKING:` imports do not."""
    files = {module_name(file): file for file in bot_files(root)}
    edges: dict[str, dict[str, str]] = {name: {} for name in files}  # importer -> imported -> "file:line"
    for name, file in files.items():
        for found in imports(root, file):
            stem, *members = found.targets
            # `from a import b`: an edge to the module a.b when b is one, else to a itself
            imported = [member for member in members if member in files] or [stem]
            for module in imported:
                if found.runtime and module in files and module != name:
                    edges[name].setdefault(module, f"{found.file}:{found.line} imports {module}")
    messages = []
    for group in _strongly_connected(edges):
        if len(group) > 1:
            circle = _circle_within(group, edges)
            steps = "; ".join(edges[a][b] for a, b in zip(circle, circle[1:] + circle[:1], strict=True))
            messages.append(f"import circle {' -> '.join(circle + circle[:1])}: {steps}")
    return sorted(messages)


def _strongly_connected(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (bot has hundreds of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
    return groups


def _circle_within(group: list[str], edges: dict[str, dict[str, str]]) -> list[str]:
    """The shortest circle through the group's first module (breadth first: every module of a
    strongly connected group lies on a circle)."""
    members = set(group)
    start = group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(edges[node]):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                if successor in members and successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no circle through {start}")  # cannot happen in a strongly connected group


# --- the rules on bot/ --------------------------------------------------------------------------------------


def test_slack_libraries_only_under_slack_and_the_sandbox():
    found = confined(ROOT, SLACK_LIBRARIES, SLACK_HOMES)
    assert not found, "\n".join(found)


def test_databricks_sdk_only_in_the_gateway_and_the_sandbox():
    found = confined(ROOT, DATABRICKS_SDK, DATABRICKS_SDK_HOMES)
    assert not found, "\n".join(found)


def test_block_builders_never_reach_the_database():
    assert (ROOT / BUILDERS).is_dir(), f"{BUILDERS} has moved: point BUILDERS at the builders"
    found = builders_reaching_the_database(ROOT)
    assert not found, "\n".join(found)


def test_layers_import_only_the_layers_below():
    found = upward_imports(ROOT)
    assert not found, "\n".join(found)


def test_no_import_circles():
    found = import_circles(ROOT)
    assert not found, "\n".join(found)


# --- the rules catch what they should, on a made-up bot/ ---------------------------------------------------


@pytest.fixture
def fake_bot(tmp_path: Path):
    def write(files: dict[str, str]) -> Path:
        for name, source in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source)
        return tmp_path

    return write


def test_a_slack_import_outside_slack_is_named_with_its_file_and_line(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/slack/client.py": "import slack_sdk\n",
        "bot/sandbox/slack.py": "from slack_bolt import App\n",
        "bot/cli.py": "import json\n\n\ndef main():\n    from slack_sdk.errors import SlackApiError\n",
        "bot/jobs/scheduler.py": "from slack_bolt.adapter.socket_mode import SocketModeHandler\n",
    })
    assert confined(root, SLACK_LIBRARIES, SLACK_HOMES) == [
        "bot/cli.py:5 imports slack_sdk.errors (only bot/slack/, bot/sandbox/ may)",
        "bot/jobs/scheduler.py:1 imports slack_bolt.adapter.socket_mode (only bot/slack/, bot/sandbox/ may)",
    ]


def test_the_databricks_sdk_outside_the_gateway_is_caught_in_every_spelling(fake_bot):
    root = fake_bot({
        "bot/databricks/__init__.py": "",
        "bot/databricks/gateway.py": "from databricks.sdk import WorkspaceClient\n",
        "bot/databricks/records.py": "from . import gateway\n",  # bot.databricks: ours, not the SDK
        "bot/sandbox/databricks.py": "import databricks.sdk\n",
        "bot/services/inventory.py": "from databricks import sdk\n",
        "bot/doctor.py": "import databricks.sdk.errors as errors\n",
    })
    assert [message.split(" (")[0] for message in confined(root, DATABRICKS_SDK, DATABRICKS_SDK_HOMES)] == [
        "bot/doctor.py:1 imports databricks.sdk.errors",
        "bot/services/inventory.py:1 imports databricks.sdk",
    ]


def test_a_builder_reaching_the_database_is_caught_directly_or_relatively(fake_bot):
    root = fake_bot({
        "bot/slack/blocks/__init__.py": "",
        "bot/slack/blocks/home.py": "from bot.models import Token\n",
        "bot/slack/blocks/command.py": "from ... import db\n",
        "bot/slack/blocks/escape.py": "import html\nfrom bot.domain import policy\n",
        "bot/slack/blocks/digest.py": "from sqlalchemy import select\n",
        "bot/slack/surfaces/home.py": "from bot.models import Token\n",  # surfaces may
    })
    assert [message.split(" (")[0] for message in builders_reaching_the_database(root)] == [
        "bot/slack/blocks/command.py:1 imports bot.db",
        "bot/slack/blocks/digest.py:1 imports sqlalchemy",
        "bot/slack/blocks/home.py:1 imports bot.models",
    ]


def test_an_import_circle_is_named_import_by_import(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/slack/__init__.py": "",
        "bot/slack/narrowing.py": "from bot.slack import refresh\n",
        "bot/slack/refresh.py": "import json\nfrom bot.slack.narrowing import redraw\n",
        "bot/a.py": "from bot import b\n",
        "bot/b.py": "from . import c\n",
        "bot/c.py": "import bot.a\n",
    })
    assert import_circles(root) == [
        "import circle bot.a -> bot.b -> bot.c -> bot.a: "
        "bot/a.py:1 imports bot.b; bot/b.py:1 imports bot.c; bot/c.py:1 imports bot.a",
        "import circle bot.slack.narrowing -> bot.slack.refresh -> bot.slack.narrowing: "
        "bot/slack/narrowing.py:1 imports bot.slack.refresh; bot/slack/refresh.py:2 imports bot.slack.narrowing",
    ]


def test_an_import_made_late_in_a_function_still_closes_a_circle(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/a.py": "from bot import b\n",
        "bot/b.py": "def later():\n    from bot import a  # import late to dodge the circle\n",
    })
    assert import_circles(root) == [
        "import circle bot.a -> bot.b -> bot.a: bot/a.py:1 imports bot.b; bot/b.py:2 imports bot.a"
    ]


def test_imports_for_type_checking_only_close_no_circle(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/c.py": "from typing import TYPE_CHECKING\nimport bot.d\n",
        "bot/d.py": "import typing\nif typing.TYPE_CHECKING:\n    from bot import c\nelse:\n    import json\n",
        "bot/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.f import F\n",
        "bot/f.py": "from bot import e\n",
    })
    assert import_circles(root) == []


def test_a_builder_reaching_the_database_through_other_modules_is_caught_with_the_chain(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/slack/__init__.py": "",
        "bot/slack/blocks/__init__.py": "",
        "bot/slack/blocks/history.py": "from bot.services import decisions\n",
        "bot/slack/blocks/digest.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bot.models\n",
        "bot/slack/blocks/text.py": "from bot.enums import Step\n",
        "bot/enums.py": "from enum import StrEnum\n",
        "bot/services/decisions/__init__.py": "from .ledger import claim\n",
        "bot/services/decisions/ledger.py": "import json\n\n\ndef claim():\n    from sqlmodel import Session\n",
    })
    assert [message.split(" (")[0] for message in builders_reaching_the_database(root)] == [
        "bot/slack/blocks/history.py:1 imports bot.services.decisions; "
        "bot/services/decisions/__init__.py:1 imports bot.services.decisions.ledger; "
        "bot/services/decisions/ledger.py:5 imports sqlmodel",
    ]


def test_a_package_face_that_reaches_the_database_is_on_the_chain(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/slack/__init__.py": "",
        "bot/slack/blocks/__init__.py": "from bot.slack.blocks.home import home_view\n",
        "bot/slack/blocks/home.py": "from bot import db\n",
        "bot/slack/blocks/text.py": "import re\n",
        "bot/slack/blocks/fit.py": "from bot.slack.blocks.text import escape\n",
    })
    assert [message.split(" (")[0] for message in builders_reaching_the_database(root)] == [
        "bot/slack/blocks/__init__.py:1 imports bot.slack.blocks.home; bot/slack/blocks/home.py:1 imports bot.db",
        "bot/slack/blocks/fit.py:1 imports bot.slack.blocks; "
        "bot/slack/blocks/__init__.py:1 imports bot.slack.blocks.home; bot/slack/blocks/home.py:1 imports bot.db",
        "bot/slack/blocks/home.py:1 imports bot.db",
    ]


def test_an_import_of_a_higher_layer_is_caught_in_every_spelling(fake_bot):
    root = fake_bot({
        "bot/__init__.py": "",
        "bot/domain/policy.py": "from bot.services.report import TokenView\n",
        "bot/domain/ladder.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.slack import ids\n",
        "bot/services/digest.py": "from bot.domain.policy import Policy\nfrom bot.slack.blocks import escape\n",
        "bot/services/report.py": "def csv():\n    from bot.cli import output\n",
        "bot/slack/listeners/sync.py": "from bot.services import report\nfrom ...cli.output import sync_line\n",
        "bot/jobs/scheduler.py": "import bot.cli.main\n",
        "bot/cli/main.py": "from bot.slack import app\nfrom bot.jobs import scheduler\n",  # the top may
        "bot/sandbox/demo.py": "from bot import cli\n",  # no layer of its own
    })
    assert [message.split(" (")[0] for message in upward_imports(root)] == [
        "bot/domain/ladder.py:3 imports bot.slack",
        "bot/domain/policy.py:1 imports bot.services.report",
        "bot/services/digest.py:2 imports bot.slack.blocks",
        "bot/services/report.py:2 imports bot.cli",
        "bot/jobs/scheduler.py:1 imports bot.cli.main",
        "bot/slack/listeners/sync.py:2 imports bot.cli.output",
    ]
