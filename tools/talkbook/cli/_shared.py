"""The command group, its one exit point, and what every command module shares: options,
prompts, input and output helpers.

Every TalkbookError becomes one line on stderr and its exit code; tracebacks only with --debug.
The language is chosen once, in main(), before click parses anything (so --help speaks it too):
--lang, TALKBOOK_LANG, the locale variables, the workspace's locale, else en (i18n.choose). Help
texts stay English literals in the code; the commands translate them when they format help.
A command's module is imported when the command is named (COMMAND_MODULES), all of them for help;
the cyclic garbage collector is off while a command runs (a short process; see main()).
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import inspect
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from talkbook import i18n
from talkbook.app import App, Prompts
from talkbook.errors import TalkbookError
from talkbook.i18n import N_, _

# The console command's Apps, kept to its end: main() ends the process by os._exit, so what an
# App holds (the index's hundreds of thousands of small objects) is never freed one by one as
# the command's frames unwind. None elsewhere (tests, CliRunner): there an App goes with its run.
kept_to_exit: list[App] | None = None

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _prompts() -> Prompts:
    interactive = sys.stdin.isatty()

    def passphrase() -> str:
        return click.prompt(_("Passphrase"), hide_input=True, err=True)

    # Without a terminal nobody can answer: say nothing here, the error that follows is the line.
    def reopen(problem: str) -> bool:
        if not interactive:
            return False
        click.echo(f"talkbook: {problem}", err=True)
        return click.confirm(_("Open the editor again?"), default=True, err=True)

    def allow_disk(folder: Path) -> bool:
        if not interactive:
            return False
        message = _("no in-memory folder (tmpfs) to edit in; {folder} is on disk")
        click.echo("talkbook: " + message.format(folder=folder), err=True)
        return click.confirm(_("Edit the decrypted copy there anyway?"), err=True)

    def progress(items, total):
        with click.progressbar(items, length=total, label=_("rekey"), file=sys.stderr) as bar:
            yield from bar

    def notice(text: str) -> None:
        click.echo(f"talkbook: {text}", err=True)

    return Prompts(passphrase, reopen, allow_disk, progress, notice)


pass_app = click.make_pass_decorator(App)

# click's own messages that a person meets most, marked here so they are extracted into our
# catalog; click looks them up through i18n (_route_click_messages).
CLICK_MESSAGES = (
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Positional arguments"),
    N_("Show this message and exit."),
    N_("Show the version and exit."),
    N_("%(prog)s, version %(version)s"),
    N_("No such command {name!r}."),
    N_("No such option {name!r}."),
    N_("Missing command."),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing {param_type}"),
    N_("Missing parameter: {param_name}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is not readable."),
    N_("file"),
    N_("directory"),
    N_("path"),
    N_("default: {default}"),
    N_("required"),
    N_("Repeat for confirmation"),
    N_("Error: The two entered values do not match."),
    N_("Error: invalid input"),
)


def _route_click_messages() -> None:
    """click translates with the gettext module's global domain; send it to our catalog."""
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.termui
    import click.types

    modules = (click.core, click.decorators, click.exceptions, click.formatting, click.termui)
    for module in (*modules, click.types):
        for name, ours in (("_", i18n._), ("ngettext", i18n.ngettext)):
            if hasattr(module, name):
                setattr(module, name, ours)


_route_click_messages()


def _wrap_by_display_width(
    text: str,
    width: int = 78,
    initial_indent: str = "",
    subsequent_indent: str = "",
    preserve_paragraphs: bool = False,
) -> str:
    """click wraps help by characters; a Chinese character takes two columns, so the width is
    scaled by the text's share of wide characters (lines then fit the terminal)."""
    import unicodedata

    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    if columns <= len(text):
        return _click_wrap_text(text, width, initial_indent, subsequent_indent, preserve_paragraphs)
    width = max(24, width * len(text) // columns)
    lines = _click_wrap_text(
        text, width, initial_indent, subsequent_indent, preserve_paragraphs
    ).split("\n")
    for i in range(1, len(lines)):  # no line starts with a closing mark: it joins the line above
        body = lines[i].lstrip(" ")
        if body[:1] in _CLOSING and lines[i - 1].strip():
            lines[i - 1] += body[0]
            lines[i] = lines[i][: len(lines[i]) - len(body)] + body[1:]
    return "\n".join(line for line in lines if line.strip() or not line)


_CLOSING = set("。，、；：！？）》」』】")


_click_wrap_text = click.formatting.wrap_text
click.formatting.wrap_text = _wrap_by_display_width


@contextmanager
def _translated_help(command: click.Command, ctx: click.Context | None) -> Iterator[None]:
    """The command's help texts in the chosen language while click formats them; the English
    literals are put back after (several commands, in several languages, run in one process)."""
    things: list[Any] = [command, *(command.get_params(ctx) if ctx is not None else ())]
    saved = [(thing, attr, getattr(thing, attr, None)) for thing in things for attr in _HELP_ATTRS]
    try:
        for thing, attr, text in saved:
            if isinstance(text, str) and text:
                setattr(thing, attr, _(inspect.cleandoc(text)))
        yield
    finally:
        for thing, attr, text in saved:
            if hasattr(thing, attr):
                setattr(thing, attr, text)


_HELP_ATTRS = ("help", "short_help", "epilog")


class TranslatedHelp(click.Command):
    """A command whose help reads in the chosen language."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated_help(self, ctx):
            super().format_help(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        with _translated_help(self, None):
            return super().get_short_help_str(limit)


class TranslatedGroup(TranslatedHelp, click.Group):
    """A group of commands (person, cadre) whose help, and its commands', read translated."""

    command_class = TranslatedHelp
    group_class: type[click.Group] | type[type] | None = type  # subgroups: this same class


def _language_arguments(args: list[str]) -> tuple[str | None, Path | None]:
    """--lang and --workspace as given before the command name: read before click parses, so
    the language is chosen before anything is said (--help included)."""
    lang = workspace = None
    tokens = iter(args)
    for token in tokens:
        name, eq, value = token.partition("=")
        if name in ("--lang", "--workspace", "-w", "--identity", "-i"):
            value = value if eq else next(tokens, "")
            if name == "--lang":
                lang = value
            elif name in ("--workspace", "-w"):
                workspace = Path(value) if value else None
        elif not token.startswith("-") or token == "--":
            break  # the command: what follows is its own
    return lang, workspace


# Which module of talkbook.cli defines each command: only the one named is imported (a module
# registers its commands on `cli` when imported), so a command does not pay for the others'
# imports (test_cli_lazy checks this table against what the modules register).
COMMAND_MODULES = {
    **dict.fromkeys(["calendar"], "calendar"),
    **dict.fromkeys(["demo"], "demo"),
    **dict.fromkeys(["index"], "index"),
    **dict.fromkeys(["list", "show"], "queries"),
    **dict.fromkeys(["report"], "report"),
    **dict.fromkeys(["sync", "resolve", "merge-driver"], "sync"),
    **dict.fromkeys(
        [
            "event",
            "plan",
            "submit",
            "approve",
            "reject",
            "postpone",
            "cancel",
            "record",
            "confirm",
            "addendum",
            "due",
            "followups",
            "done",
            "validate",
            "audit",
        ],
        "talks",
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "init",
            "setup",
            "migrate",
            "keygen",
            "person",
            "cadre",
            "cat",
            "edit",
            "history",
            "rekey",
            "doctor",
            "textconv",
            "unlock",
            "lock",
        ],
        "workspace",
    ),  # fmt: skip
}


def load_commands(names: Iterable[str] | None = None) -> None:
    """Import the modules that define these commands (every command when None)."""
    import importlib

    wanted = COMMAND_MODULES.values() if names is None else map(COMMAND_MODULES.get, names)
    for module in dict.fromkeys(wanted):
        if module is not None:
            importlib.import_module(f"talkbook.cli.{module}")


class TalkbookGroup(TranslatedGroup):
    """The one exit point: every TalkbookError becomes one line on stderr and its exit code.
    Commands are loaded when named (COMMAND_MODULES); help and completion load them all."""

    group_class = TranslatedGroup  # `person`, `cadre`: help translated, errors left to this one

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:  # an unknown name: all, for click's "did you mean"
            load_commands([cmd_name] if cmd_name in COMMAND_MODULES else None)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_commands()
        return super().list_commands(ctx)

    def main(
        self, args: Any = None, *rest: Any, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        """Click's own usage errors are one line too (no usage block), with exit code 2."""
        arguments = list(sys.argv[1:] if args is None else args)
        before, collecting = i18n.language(), gc.isenabled()
        i18n.use(i18n.choose(*_language_arguments(arguments)))
        # A command is one short process, and what it builds (the index's hundreds of thousands
        # of small objects) holds no cycles: the cyclic collector would only walk them over and
        # over, a fifth of a warm listing. Memory is returned when the process ends.
        gc.disable()
        try:
            return self._main(arguments, *rest, standalone_mode=standalone_mode, **kwargs)
        finally:
            i18n.use(before)
            # not for the console command: its process ends by os._exit, and the collector,
            # enabled again, would walk all that was built (kept_to_exit) once before the end
            if collecting and kept_to_exit is None:
                gc.enable()

    def _main(self, args: list[str], *rest: Any, standalone_mode: bool, **kwargs: Any) -> Any:
        run = super().main
        if not standalone_mode:
            return run(args, *rest, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        try:
            code = run(args, *rest, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.ClickException as exc:
            message = _("{message} (see --help)").format(message=exc.format_message())
            click.echo(f"talkbook: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("talkbook: " + _("aborted; nothing was changed"), err=True)
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
            click.echo("talkbook: " + _("interrupted; nothing was changed"), err=True)
            ctx.exit(130)
        except OSError as exc:  # disk full, permission denied: writes are atomic, nothing is lost
            if ctx.meta.get("debug") or isinstance(exc, BrokenPipeError):
                raise
            reason = str(exc.strerror or exc)
            if exc.filename:
                message = _("{reason}: {file}; nothing was changed").format(
                    reason=reason, file=exc.filename
                )
            else:
                message = _("{reason}; nothing was changed").format(reason=reason)
            click.echo(f"talkbook: {message}", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug or a surprise from git: still one line, and no content
            if ctx.meta.get("debug"):
                raise
            message = _("unexpected {error}; rerun with --debug").format(error=type(exc).__name__)
            click.echo(f"talkbook: {message}", err=True)
            ctx.exit(2)


def _say_if_mid_merge(ctx: click.Context) -> None:
    """What was read may be one side of an unfinished merge: say so, once, on stderr."""
    from talkbook import gittrail

    app = ctx.obj
    workspace = getattr(app, "_workspace", None)
    if workspace is not None and (what := gittrail.unfinished(workspace.root)):
        message = _("note: the workspace is mid-{operation}; finish it (`talkbook sync`)")
        click.echo("talkbook: " + message.format(operation=what), err=True)


@click.group(cls=TalkbookGroup, context_settings=CONTEXT)
@click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path), help="Workspace folder."
)
@click.option(
    "--identity", "-i", type=click.Path(dir_okay=False, path_type=Path), help="Identity file."
)
@click.option(
    "--lang",
    type=click.Choice(i18n.LANGUAGES),
    help="Language of messages and help (else TALKBOOK_LANG, LANG, the workspace's locale).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="talkbook")
@click.pass_context
def cli(
    ctx: click.Context, workspace: Path | None, identity: Path | None, lang: str | None, debug: bool
) -> None:
    """talkbook: confidential heart-to-heart talk records in plain text, git and age.

    \b
    Workspace: --workspace, else TALKBOOK_WORKSPACE, else the nearest talkbook.toml upwards.
    Identity:  --identity, else TALKBOOK_IDENTITY, else ~/.config/talkbook/identity.txt.
    Language:  --lang, else TALKBOOK_LANG, else LANG (zh or en), else the workspace's locale.
    Exit codes: 0 success, 1 findings, 2 bad usage or input.
    """
    ctx.obj = App(workspace, identity, _prompts())
    if kept_to_exit is not None:
        kept_to_exit.append(ctx.obj)
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
        raise TalkbookError(_("{file}: not UTF-8 text").format(file=source)) from None
    except OSError as exc:
        message = _("{file}: cannot read: {reason}")
        raise TalkbookError(message.format(file=source, reason=exc.strerror)) from None


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
        raise TalkbookError(_("{value!r} is not a date (YYYY-MM-DD)").format(value=value)) from None


def echo_json(data: Any) -> None:
    click.echo(json_text(data))


def json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)


def echo_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    click.echo(csv_text(rows, columns), nl=False)


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """The rows as CSV (codes, header first), through the csv module."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def echo_notes(notes: list[str]) -> None:
    """What a listing had to leave out, on stderr so the listing itself stays clean."""
    for note in notes:
        click.echo(note, err=True)
