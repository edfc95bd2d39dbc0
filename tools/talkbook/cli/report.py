"""`talkbook report NAME [T-…]` and `talkbook report --all`: parse, call talkbook.reports, say
where the files went.

Reports go to `build/reports/<name>.<ext>` under the workspace root (owner-only folder and
files, written atomically), or to `--out FILE` (`-`: stdout). Notes on files that could not be
read go to stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from talkbook.app import App
from talkbook.cli._shared import cli, parse_date, pass_app
from talkbook.errors import TalkbookError
from talkbook.i18n import _


def _format(fmt: str | None, out: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(out).suffix.lstrip(".").lower() if out and out != "-" else ""
    return suffix if suffix in ("md", "html", "csv") else "md"


@cli.command()
@click.argument("name", required=False, metavar="NAME")
@click.argument("talk", required=False, metavar="[T-…]")
@click.option(
    "--all", "everything", is_flag=True, help="Every report, in every format (or in --format's)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "csv"]),
    help="md, html or csv [default: from --out's suffix, else md].",
)
@click.option("--out", metavar="FILE|-", help="Write to FILE (0600), or - for stdout.")
@click.option("--redact", is_flag=True, help="Ids instead of names: for copies handed on.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="The day the report is as of.")
@click.option("--since", metavar="YYYY-MM-DD", help="speakers, occasions: from [1 January].")
@click.option("--until", metavar="YYYY-MM-DD", help="speakers, occasions: to [the as-of day].")
@click.option("--within", type=int, default=30, show_default=True, help="due: days ahead.")
@pass_app
def report(
    app: App,
    name: str | None,
    talk: str | None,
    everything: bool,
    fmt: str | None,
    out: str | None,
    redact: bool,
    as_of: str | None,
    since: str | None,
    until: str | None,
    within: int,
) -> None:
    """Reports: coverage, due, speakers, occasions, approvals, followups, form T-….

    \b
    coverage   per unit: cadres, reached within the cadence, share, who was not
    due        obligations due and overdue
    speakers   per speaker: talks held, by method and occasion (--since/--until)
    occasions  events logged and talks held for them, per month (--since/--until)
    approvals  plans waiting for approval, with their age in days
    followups  follow-ups open and overdue
    form T-…   the printable talk record form of one talk (md or html)

    Files go to build/reports/ in the workspace (owner-only), or to --out.

    \b
    Example: talkbook report coverage --format html
             talkbook report form T-k3x9p2 --format html
             talkbook report --all --redact
    """
    from talkbook.reports import FORM, FORMATS, Options, Reports, check_name

    if everything == bool(name):
        raise TalkbookError(_("name one report, or --all"))
    chosen = _format(fmt, out)
    if name:
        check_name(name, chosen)
        if (talk is not None) != (name == FORM):
            raise TalkbookError(_("only report form takes a talk id: talkbook report form T-…"))
    options = Options(parse_date(as_of), parse_date(since), parse_date(until), within, redact)
    reports = Reports(app, options, (name, chosen, talk) if name else None)
    if everything:
        _write_all(app, reports, out, (fmt,) if fmt else FORMATS)
    else:
        assert name is not None
        _write_one(app, reports, name, chosen, talk, out)
    for note in reports.notes():
        app.prompts.notice(note)


def _write_one(app: App, reports, name: str, fmt: str, talk: str | None, out: str | None) -> None:
    from talkbook.reports import output

    data = reports.produce(name, fmt, talk)
    root = app.workspace.root
    if out == "-":
        click.echo(data, nl=False)  # bytes: written as they are
        return
    if out:
        path = output.write_out(root, Path(out), data)
    else:
        stem = f"{name}-{talk}" if talk else name
        path = output.write(output.reports_folder(root), f"{stem}.{fmt}", data, root)
    click.echo(_shown(root, path))


def _write_all(app: App, reports, out: str | None, formats: tuple[str, ...]) -> None:
    from talkbook.reports import output

    root = app.workspace.root
    if out:
        raise TalkbookError(_("--all writes to build/reports/; --out is for one report"))
    for path in reports.write_all(output.reports_folder(root), formats):
        click.echo(_shown(root, path))


def _shown(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
