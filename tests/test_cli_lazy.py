"""The command line loads only what the command named needs: its own module of talkbook.cli,
not the others' (icalendar, the demo), and not GitPython for a read; the cyclic collector is off
while a command runs and back on after."""

from __future__ import annotations

import gc
import subprocess
import sys

import click

from conftest import Setup, modules_after, ok, run
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


def test_a_read_command_loads_its_module_alone(workspace: Setup, cadre: str) -> None:
    loaded = modules_after(workspace, "list", "cadres")
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


def _console(*lines: str) -> subprocess.CompletedProcess:
    code = "\n".join(("import sys", "from talkbook.cli import main, _leave", *lines))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_console_command_ends_with_its_code_its_output_and_exit_handlers() -> None:
    """main() leaves by os._exit after the exit handlers and a flush: what sys.exit would
    have done, without freeing every object one by one."""
    handler = "import atexit; atexit.register(lambda: print('handler ran', file=sys.stderr))"
    done = _console(handler, "sys.argv = ['talkbook', '--version']", "main()")
    assert done.returncode == 0 and "talkbook, version" in done.stdout
    assert "handler ran" in done.stderr
    wrong = _console("sys.argv = ['talkbook', 'lits']", "main()")
    assert wrong.returncode == 2 and "lits" in wrong.stderr and wrong.stdout == ""
    text = _console("_leave('说明')")
    assert text.returncode == 1 and text.stderr == "说明\n"


def test_the_console_command_frees_nothing_it_built_before_it_ends(
    workspace: Setup, cadre: str
) -> None:
    """What a listing built stays (its App, the index it holds) and the collector stays off
    to the end: the process ends by os._exit, so neither freeing nor a collection is paid."""
    script = (
        "import atexit, gc, sys\n"
        "from talkbook.cli import _shared, main\n"
        "sys.argv = ['talkbook', *sys.argv[1:]]\n"
        "def seen():\n"
        "    apps = _shared.kept_to_exit or []\n"
        "    held = [app.index_seen is not None for app in apps]\n"
        "    print('kept', held, 'collecting', gc.isenabled(), file=sys.stderr)\n"
        "atexit.register(seen)\n"
        "main()\n"
    )
    argv = ["-w", str(workspace.root), "-i", str(workspace.keys["P-01"]), "list", "cadres"]
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "kept [True] collecting False"
