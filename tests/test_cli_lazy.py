"""The command line loads only what the command named needs: its own module of talkbook.cli,
not the others' (icalendar, the demo), and not GitPython for a read; the cyclic collector is off
while a command runs and back on after."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import click

from conftest import Setup, ok, run
from talkbook.catalog import Catalog
from talkbook.cli import cli
from talkbook.cli._shared import COMMAND_MODULES


def test_the_table_names_each_commands_module() -> None:
    registered = {
        name: command.callback.__module__.rsplit(".", 1)[-1]
        for name, command in cli.commands.items()
        if command.callback is not None
    }
    assert registered == COMMAND_MODULES


def _modules_after(workspace: Setup, *args: str) -> list[str]:
    """The modules a fresh process imported to run `talkbook ARGS`."""
    script = (
        "import json, sys\n"
        "from talkbook.cli import main\n"
        "sys.argv = ['talkbook', *json.loads(sys.argv[1])]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    argv = ["-w", str(workspace.root), "-i", str(workspace.keys["P-01"]), *args]
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argv)], capture_output=True, text=True
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_a_read_command_loads_its_module_alone(workspace: Setup, cadre: str) -> None:
    loaded = _modules_after(workspace, "list", "cadres")
    assert "talkbook.cli.queries" in loaded
    others = {"talkbook.cli.calendar", "talkbook.cli.demo", "talkbook.cli.sync", "git"}
    assert others.isdisjoint(loaded)


def test_help_and_suggestions_still_know_every_command() -> None:
    shown = ok(run("--help")).stdout
    visible = [name for name, command in cli.commands.items() if not command.hidden]
    assert all(f"  {name} " in shown or f"  {name}\n" in shown for name in visible)
    wrong = run("lits")
    assert wrong.exit_code == 2
    assert "Did you mean 'list'?" in wrong.stderr


def test_no_cyclic_collection_while_a_command_runs(monkeypatch) -> None:
    seen: list[bool] = []

    def rows(app, catalog, which, typed):
        seen.append(gc.isenabled())
        return [], [], False, 0

    monkeypatch.setattr("talkbook.listing.listed_cadres", rows)
    monkeypatch.setattr("talkbook.app.App.ensure_trust", lambda app: None)
    monkeypatch.setattr("talkbook.catalog.load_into", lambda app, compute: compute(Catalog()))
    assert gc.isenabled()
    run("list", "cadres", "--format", "json")
    assert seen == [False]
    assert gc.isenabled()


def test_lazy_group_is_a_click_group() -> None:
    assert isinstance(cli, click.Group)
    assert cli.get_command(click.Context(cli), "due") is cli.commands["due"]
