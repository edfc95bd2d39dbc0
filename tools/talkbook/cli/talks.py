"""Commands of the talk workflow: events, plans, decisions, records, due talks, validation."""

from __future__ import annotations

import os
import sys

import click

from talkbook.app import App
from talkbook.cli._shared import (
    cli,
    echo_csv,
    echo_json,
    echo_notes,
    emit_id,
    from_option,
    parse_date,
    pass_app,
    read_source,
    source_name,
    writes,
)
from talkbook.errors import Findings, TalkbookError
from talkbook.i18n import N_, _, label


def editor_can_run() -> bool:
    """A terminal to run the editor in, or an editor the user named ($VISUAL, $EDITOR: a
    window or a script needs no terminal). Like git, which only refuses a terminal-less,
    unnamed default editor."""
    named = any(os.environ.get(name, "").strip() for name in ("VISUAL", "EDITOR"))
    return sys.stdin.isatty() or named


def text_or_editor(source: str | None) -> str | None:
    """For a command whose document comes from --from or the editor alone (edit, cadre new):
    the text, or None for the editor; with neither, a one-line refusal."""
    if source:
        return read_source(source)
    if not editor_can_run():
        raise TalkbookError(_("no terminal for the editor: pass --from FILE or --from -"))
    return None


@cli.command()
@click.argument("cadre")
@click.argument("occasion", required=False)
@click.argument("number", required=False, metavar="")
@click.option("--date", "when", metavar="YYYY-MM-DD", help="When it happened [default: today].")
@click.option("--note", default=None, help="A short note (kept encrypted in the profile).")
@click.option(
    "--remove", type=int, default=None, metavar="N", help="Remove event N (as `show` numbers it)."
)
@pass_app
@writes
def event(
    app: App,
    cadre: str,
    occasion: str | None,
    number: str | None,
    when: str | None,
    note: str | None,
    remove: int | None,
) -> None:
    """Log an event that obliges a talk (a must-talk occasion) on a cadre's profile, or remove
    one logged by mistake (`event CADRE --remove N`, or `event remove CADRE N`).

    CADRE is an id or a name; OCCASION a code or its label (岗位变动, Post change).

    \b
    Example: talkbook event 张伟 岗位变动 --date 2026-11-02 --note "调任市财政局"
    Example: talkbook event C-7k2m9q --remove 2
    """
    from talkbook.names import resolve_cadre
    from talkbook.profiles import add_event, remove_event

    if cadre == "remove" and occasion and number is not None and remove is None:
        cadre, occasion, remove = occasion, None, _event_number(number)
    elif number is not None:
        raise TalkbookError(_("event takes CADRE OCCASION, or CADRE --remove N"))
    if remove is not None:
        if occasion or when or note:
            raise TalkbookError(_("--remove N takes no occasion, --date or --note"))
        cadre_id = resolve_cadre(app, cadre)
        gone = remove_event(app, cadre_id, remove)
        label = app.workspace.label("occasions", gone.get("occasion"))
        click.echo(
            _("{cadre}: event {number} removed ({date} {occasion})").format(
                cadre=cadre_id, number=remove, date=gone.get("date"), occasion=label
            )
        )
        return
    if not occasion:
        raise TalkbookError(_("event needs CADRE and OCCASION (or CADRE --remove N)"))
    cadre_id = resolve_cadre(app, cadre)
    logged = add_event(app, cadre_id, occasion, parse_date(when), note)
    label = app.workspace.label("occasions", logged["occasion"])
    click.echo(
        _("{cadre}: {occasion} on {date}").format(
            cadre=cadre_id, occasion=label, date=logged["date"]
        )
    )


def _event_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TalkbookError(_("event remove CADRE N: N is the event's number")) from None


@cli.command()
@click.argument("cadre")
@click.option("--speaker", metavar="PERSON", help="Who holds the talk (a person id or name).")
@click.option("--at", "at", metavar="DATETIME", help="When, e.g. 2026-12-01T09:30.")
@click.option("--occasion", default=None, help="The must-talk occasion, if any (code or label).")
@click.option("--place", default=None)
@click.option(
    "--recorder", default=None, metavar="PERSON", help="Who will record, if not the speaker."
)
@click.option("--continues", default=None, metavar="TALK", help="The talk this one continues.")
@click.option("--method", default=None, help="Instead of the suggested one (code or label).")
@click.option("--type", "talk_type", default=None, help="The talk type (code or label).")
@from_option
@pass_app
@writes
def plan(
    app: App,
    cadre: str,
    speaker: str | None,
    at: str | None,
    occasion: str | None,
    place: str | None,
    recorder: str | None,
    continues: str | None,
    method: str | None,
    talk_type: str | None,
    source: str | None,
) -> None:
    """Draft a talk plan with a suggested method, focus and preparation brief.

    The method follows the profile (introverted → direct questions, talkative → open
    conversation, experienced → consultation); the focus comes from recent events,
    difficulties and topics deferred by the talk it continues.

    CADRE is an id or a name; occasion, method and type take a code or a label.

    \b
    Example: talkbook plan C-7k2m9q --speaker P-03 --at 2026-12-01T09:30 --occasion post_change
    Example: talkbook plan 张伟 --speaker 李明 --at 2026-12-01T09:30 --occasion 岗位变动
    """
    from talkbook.catalog import begin, end

    app.ensure_trust()  # first, as ever: then the tree's check begins (under the write lock)
    begin(app)  # while the command's own modules load and its arguments are read
    try:
        from talkbook.names import resolve_cadre
        from talkbook.talks import draft_plan

        # Its flags and the suggestions make a whole plan: the editor is offered on a terminal.
        text = read_source(source) if source else None
        use_editor = text is None and sys.stdin.isatty()
        talk_id = draft_plan(
            app,
            resolve_cadre(app, cadre),
            speaker=speaker,
            at=at,
            occasion=occasion,
            place=place,
            recorder=recorder,
            continues=continues,
            text=text,
            use_editor=use_editor,
            source=source_name(source),
            method=method,
            talk_type=talk_type,
        )
    finally:
        end(app)  # a check never taken (the command refused first) is not left running
    emit_id(talk_id)


def _decision_command(name: str, decision: str, doc: str, comment_required: bool = False):
    @click.argument("talk")
    @click.option("--comment", required=comment_required, default=None)
    @pass_app
    @writes
    def command(app: App, talk: str, comment: str | None, **extra: str | None) -> None:
        from talkbook.talks import decide

        status = decide(app, talk, decision, comment, extra.get("to"))
        click.echo(_("{talk}: {status}").format(talk=talk, status=label("status", status)))

    command.__doc__ = doc  # English; cli._shared translates it when help is formatted
    command.__name__ = name
    if decision == "postponed":
        command = click.option("--to", default=None, metavar="DATETIME", help="The new time.")(
            command
        )
    return cli.command(name)(command)


# Each help is one literal (\b: click keeps the example's line as it is), marked for the catalog.
_decision_command(
    "submit",
    "submitted",
    N_("Submit a plan for approval.\n\n\b\nExample: talkbook submit T-k3x9p2"),
)
_decision_command(
    "approve",
    "approved",
    N_(
        "Approve a submitted plan (approvers only, never one's own).\n\n"
        "\b\nExample: talkbook approve T-k3x9p2 --comment 同意"
    ),
)
_decision_command(
    "reject",
    "rejected",
    N_(
        "Reject a submitted plan, saying why.\n\n"
        '\b\nExample: talkbook reject T-k3x9p2 --comment "谈话重点不够明确"'
    ),
    comment_required=True,
)
_decision_command(
    "postpone",
    "postponed",
    N_(
        "Postpone a plan (optionally to a new time); submit it again later.\n\n"
        "\b\nExample: talkbook postpone T-k3x9p2 --to 2026-12-08T15:00"
    ),
)
_decision_command(
    "cancel",
    "cancelled",
    N_("Cancel a plan.\n\n\b\nExample: talkbook cancel T-k3x9p2 --comment 已调离"),
)


@cli.command()
@click.argument("talk")
@from_option
@pass_app
@writes
def record(app: App, talk: str, source: str | None) -> None:
    """Write the record of a held talk (needs an approved plan); prefilled from the plan.

    \b
    Example: talkbook record T-k3x9p2 --from record.md
    """
    from talkbook.talks import write_record

    text = read_source(source) if source else None
    use_editor = text is None and editor_can_run()  # else refused once the talk is checked
    emit_id(write_record(app, talk, text, use_editor, source_name(source)))


@cli.command()
@click.argument("talk")
@click.option("--date", "on", metavar="YYYY-MM-DD", help="Confirmation date [default: today].")
@pass_app
@writes
def confirm(app: App, talk: str, on: str | None) -> None:
    """Confirm a record: from then on it changes only by addenda.

    \b
    Example: talkbook confirm T-k3x9p2
    """
    from talkbook.talks import confirm_record

    confirm_record(app, talk, parse_date(on))
    click.echo(_("{talk}: record confirmed").format(talk=talk))


@cli.command()
@click.argument("talk")
@click.option("--text", required=True, help="What is added (dated and attributed to you).")
@pass_app
@writes
def addendum(app: App, talk: str, text: str) -> None:
    """Add a dated, attributed addendum to a record.

    \b
    Example: talkbook addendum T-k3x9p2 --text "本人补充说明：……"
    """
    from talkbook.talks import add_addendum

    add_addendum(app, talk, text)
    click.echo(_("{talk}: addendum added").format(talk=talk))


FORMATS = click.Choice(["table", "json", "csv"])


def _table(rows: list[dict], columns: list[str], fmt: str, shown: list[dict] | None = None) -> None:
    """JSON and CSV: `rows`, codes. The table: `shown` (labels) if given, under headers in the
    reader's language."""
    if fmt == "json":
        echo_json(rows)
        return
    if fmt == "csv":
        echo_csv(rows, columns)
        return
    from talkbook.views import table_text

    click.echo(table_text(rows if shown is None else shown, columns))


@cli.command()
@click.option(
    "--as-of", "as_of", metavar="YYYY-MM-DD", help="The day to judge by [default: today]."
)
@click.option("--within", default=30, show_default=True, help="Also list what falls due this soon.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_app
def due(app: App, as_of: str | None, within: int, fmt: str) -> None:
    """Every unmet obligation, most urgent first; exit 1 when anything is overdue.

    Occasion talks past or near their deadline, cadence gaps, overdue follow-ups, plans
    waiting for approval too long.

    \b
    Example: talkbook due --as-of 2026-12-01 --format json
    """
    from talkbook.views import due_display, due_rows

    rows, notes = due_rows(app, parse_date(as_of), within)
    columns = ["cadre", "name", "reason", "talk", "deadline", "days_left", "overdue", "detail"]
    shown = due_display(app.workspace, rows) if fmt == "table" else None
    _table(rows, columns, fmt, shown)
    echo_notes(notes)
    if overdue := sum(bool(r["overdue"]) for r in rows):
        raise Findings(_("{n} overdue").format(n=overdue))


@cli.command()
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_app
def followups(app: App, as_of: str | None, fmt: str) -> None:
    """Open follow-ups of every record you can read, soonest first; close one with `done`.

    \b
    Example: talkbook followups --format csv
    """
    from talkbook.views import followup_rows

    rows, notes = followup_rows(app, parse_date(as_of))
    _table(rows, ["talk", "n", "cadre", "name", "what", "owner", "due", "overdue"], fmt)
    echo_notes(notes)


@cli.command()
@click.argument("talk")
@click.argument("number", type=int)
@click.option("--date", "on", metavar="YYYY-MM-DD", help="When it was done [default: today].")
@pass_app
@writes
def done(app: App, talk: str, number: int, on: str | None) -> None:
    """Mark a record's follow-up done (N as `talkbook followups` shows it).

    Progress is not a rewrite: this works on confirmed records too.

    \b
    Example: talkbook done T-k3x9p2 1
    """
    from talkbook.talks import close_followup

    close_followup(app, talk, number, parse_date(on))
    click.echo(_("{talk}: follow-up {number} done").format(talk=talk, number=number))


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH|ID]...")
@click.option("--staged", is_flag=True, help="Check what is staged for commit (the hook uses it).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_app
def validate(app: App, paths: tuple[str, ...], staged: bool, fmt: str) -> None:
    """Check every file: schemas, then rules across files; exit 1 on findings.

    Findings read `path:line: field: message`. Files your identity cannot decrypt are counted
    and named, not reported as errors.

    \b
    Example: talkbook validate --format json
    """
    from talkbook.crosscheck import validate as run

    report = run(app, list(paths) or None, staged)
    summary = _("{checked} file(s) checked, {findings} finding(s)").format(
        checked=report.checked, findings=len(report.findings)
    )
    if report.unreadable:
        summary += _(", {n} not readable with your identity: {files}").format(
            n=len(report.unreadable), files=" ".join(report.unreadable)
        )
    as_json = {
        "findings": [f.as_dict() for f in report.findings],
        "checked": report.checked,
        "unreadable": report.unreadable,
    }
    _findings(report.findings, as_json, summary, fmt)


def _findings(findings: list, as_json: object, summary: str, fmt: str) -> None:
    """Findings on stdout (a line each, or JSON), the count on stderr, exit 1 if any."""
    if fmt == "json":
        echo_json(as_json)
    else:
        for finding in findings:
            click.echo(str(finding))
    click.echo(summary, err=True)
    if findings:
        raise Findings(_("{n} finding(s)").format(n=len(findings)))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_app
def audit(app: App, fmt: str) -> None:
    """Check the history itself; exit 1 on findings.

    No plaintext ever committed (a whole age header under cadres/ and talks/; no cadre's name in
    any path, commit message or plaintext file; no stray Markdown or age file elsewhere); no
    symlink; each version encrypted to the keys its access rule gave at that commit; every
    change to the records made by a person of the workspace; every decision and addendum
    committed by the person it names; a confirmed record stays confirmed and unchanged but for
    addenda.

    \b
    Example: talkbook audit
    """
    from talkbook.audit import audit as run

    report = run(app)
    summary = _("{commits} commit(s) audited, {findings} finding(s)").format(
        commits=report.commits, findings=len(report.findings)
    )
    if report.unreadable:
        summary += _(", {n} revision(s) not readable with your identity").format(
            n=report.unreadable
        )
    _findings(report.findings, [f.as_dict() for f in report.findings], summary, fmt)
