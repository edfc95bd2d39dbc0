"""The command group, its one exit point, and what every command module shares: options,
prompts, input and output helpers.

Every TalkbookError becomes one line on stderr and its exit code; tracebacks only with --debug.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from talkbook.app import App, Prompts
from talkbook.errors import TalkbookError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _prompts() -> Prompts:
    interactive = sys.stdin.isatty()

    def passphrase() -> str:
        return click.prompt("Passphrase", hide_input=True, err=True)

    # Without a terminal nobody can answer: say nothing here, the error that follows is the line.
    def reopen(problem: str) -> bool:
        if not interactive:
            return False
        click.echo(f"talkbook: {problem}", err=True)
        return click.confirm("Open the editor again?", default=True, err=True)

    def allow_disk(folder: Path) -> bool:
        if not interactive:
            return False
        click.echo(
            f"talkbook: no in-memory folder (tmpfs) to edit in; {folder} is on disk", err=True
        )
        return click.confirm("Edit the decrypted copy there anyway?", err=True)

    def progress(items, total):
        with click.progressbar(items, length=total, label="rekey", file=sys.stderr) as bar:
            yield from bar

    def notice(text: str) -> None:
        click.echo(f"talkbook: {text}", err=True)

    return Prompts(passphrase, reopen, allow_disk, progress, notice)


pass_app = click.make_pass_decorator(App)


class TalkbookGroup(click.Group):
    """The one exit point: every TalkbookError becomes one line on stderr and its exit code."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's own usage errors are one line too (no usage block), with exit code 2."""
        run = super().main
        if not standalone_mode:
            return run(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        try:
            code = run(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.ClickException as exc:
            click.echo(f"talkbook: {exc.format_message()} (see --help)", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("talkbook: aborted; nothing was changed", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            _say_if_mid_merge(ctx)
            return result
        except TalkbookError as exc:
            if ctx.meta.get("debug"):
                raise
            click.echo(f"talkbook: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("talkbook: interrupted; nothing was changed", err=True)
            ctx.exit(130)
        except OSError as exc:  # disk full, permission denied: writes are atomic, nothing is lost
            if ctx.meta.get("debug") or isinstance(exc, BrokenPipeError):
                raise
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"talkbook: {exc.strerror or exc}{where}; nothing was changed", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug or a surprise from git: still one line, and no content
            if ctx.meta.get("debug"):
                raise
            click.echo(f"talkbook: unexpected {type(exc).__name__}; rerun with --debug", err=True)
            ctx.exit(2)


def _say_if_mid_merge(ctx: click.Context) -> None:
    """What was read may be one side of an unfinished merge: say so, once, on stderr."""
    from talkbook import gittrail

    app = ctx.obj
    workspace = getattr(app, "_workspace", None)
    if workspace is not None and (what := gittrail.unfinished(workspace.root)):
        click.echo(
            f"talkbook: note: the workspace is mid-{what}; finish it (`talkbook sync`)", err=True
        )


@click.group(cls=TalkbookGroup, context_settings=CONTEXT)
@click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path), help="Workspace folder."
)
@click.option(
    "--identity", "-i", type=click.Path(dir_okay=False, path_type=Path), help="Identity file."
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="talkbook")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None, identity: Path | None, debug: bool) -> None:
    """talkbook: confidential heart-to-heart talk records in plain text, git and age.

    \b
    Workspace: --workspace, else TALKBOOK_WORKSPACE, else the nearest talkbook.toml upwards.
    Identity:  --identity, else TALKBOOK_IDENTITY, else ~/.config/talkbook/identity.txt.
    Exit codes: 0 success, 1 findings, 2 bad usage or input.
    """
    ctx.obj = App(workspace, identity, _prompts())
    ctx.meta["debug"] = debug
    from talkbook.doctor import sweep_private

    # decrypted copies that killed talkbook processes of this user left in memory go first
    ctx.meta["swept"] = sweep_private()


def writes(command: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command that writes: it runs whole under the workspace's write lock (App.writing),
    so what it reads cannot change before it commits. Reads never take the lock."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        name = " ".join(["talkbook", *ctx.command_path.split()[1:]])
        app = ctx.find_object(App)
        assert app is not None, "the group made the App"
        with app.writing(name):
            return command(*args, **kwargs)

    return run


def read_source(source: str) -> str:
    """--from FILE or - (stdin), as UTF-8 text."""
    try:
        if source == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TalkbookError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise TalkbookError(f"{source}: cannot read: {exc.strerror}") from None


def source_name(source: str | None) -> str:
    """How findings name a --from source: the file as given, or <stdin>."""
    return "<stdin>" if source in (None, "-") else str(source)


def emit_id(new_id: str) -> None:
    """The created id alone on the last line of stdout, so scripts can chain commands."""
    click.echo(new_id)


from_option = click.option(
    "--from",
    "source",
    metavar="FILE|-",
    help="Take the document from FILE (or - for stdin) instead of opening an editor.",
)


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TalkbookError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))
