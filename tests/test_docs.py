"""Every command explains itself with an example, and the README names every command."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from conftest import run
from talkbook.cli import cli

README = Path(__file__).parents[1] / "README.md"


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every visible command and subcommand, as the words a user types."""
    found = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found += commands(command, path)
    return found


COMMANDS = commands(cli)
TOP_LEVEL = sorted(path[0] for path in COMMANDS if len(path) == 1)


def test_the_contract_commands_exist() -> None:
    wanted = {"init", "setup", "keygen", "person", "cadre", "cat", "edit", "show", "history"}
    assert wanted | {"rekey", "event", "plan", "submit", "approve", "record", "due"} <= set(
        TOP_LEVEL
    )
    assert ("person", "add") in COMMANDS and ("cadre", "new") in COMMANDS


def example(help_text: str) -> str:
    """The paragraph that starts with `Example:`, joined into one line."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Example:"))
    paragraph = []
    for line in lines[start:]:
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(paragraph)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Usage: ")
    assert re.search(r"^\s*Example:", result.stdout, re.MULTILINE), result.stdout
    assert f"talkbook {' '.join(path)}" in example(result.stdout)
    assert run(*path, "-h").stdout == result.stdout


def readme_code() -> str:
    """Everything the README shows as code: fenced blocks and `inline` spans."""
    text = README.read_text(encoding="utf-8")
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    outside = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return "\n".join([*fenced, *re.findall(r"`([^`\n]+)`", outside)])


def test_readme_names_every_command() -> None:
    assert README.is_file(), f"{README} is missing"
    code = readme_code()
    missing = [name for name in TOP_LEVEL if not re.search(rf"(?<![\w-]){name}(?![\w-])", code)]
    assert missing == [], f"README.md does not show these commands: {', '.join(missing)}"
    for target in ("make demo", "make test"):
        assert target in code
