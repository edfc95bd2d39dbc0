"""Queries: `talkbook list cadres|talks` with filters and formats, and `talkbook show`.

JSON and CSV carry codes (statuses, occasions, methods as kept in the files); a table carries
labels in the reader's language. What a listing left out, or that nothing matched, goes to
stderr, one line each, so stdout stays the listing alone (exit 0).
"""

from __future__ import annotations

from typing import Any

import click

from talkbook.app import App
from talkbook.cli._shared import cli, csv_text, echo_notes, json_text, parse_date, pass_app
from talkbook.i18n import _

TALK_TABLE = ["id", "cadre", "name", "speaker", "at", "status", "occasion", "method"]
CADRE_TABLE = ["id", "name", "unit", "post", "last_talk", "talks", "events"]


def _text(app: App, rows: list[dict[str, Any]], columns: list[str], table: list[str], fmt: str):
    """JSON: every field, as codes. CSV: the same fields, header first. Table: labels."""
    if fmt == "json":
        return json_text([{c: row.get(c) for c in columns} for row in rows]) + "\n"
    if fmt == "csv":
        return csv_text(rows, columns)
    from talkbook.views import column_titles, display_columns, table_text

    shown = display_columns(app.workspace)
    return table_text(rows, table, column_titles(table), empty=None, shown=shown) + "\n"


@cli.command("list")
@click.argument("what", type=click.Choice(["cadres", "talks"]))
@click.option("--status", help="A talk's status (draft, approved, held…), code or label.")
@click.option("--occasion", help="A must-talk occasion, by code or label (either language).")
@click.option("--type", "talk_type", help="A talk type, by code or label (either language).")
@click.option("--speaker", metavar="PERSON", help="Who holds the talk: a person id or name.")
@click.option("--cadre", help="A cadre, by id or unambiguous name.")
@click.option("--unit", help="The cadre's unit, as written in the profile.")
@click.option("--since", metavar="YYYY-MM-DD", help="Talks held (or planned) on or after this day.")
@click.option("--until", metavar="YYYY-MM-DD", help="… on or before this day.")
@click.option("--text", help="Case-insensitive text in the fields and names you can read.")
@click.option("--retired", "which", flag_value="retired", help="Cadres: retired ones only.")
@click.option("--all", "which", flag_value="all", help="Cadres: active and retired.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
    show_default=True,
)  # fmt: skip
@pass_app
def list_command(app: App, what: str, which: str | None, fmt: str, **typed: str | None) -> None:
    """List cadres or talks you can read, narrowed by filters (all must match).

    For cadres, --status, --type and --speaker keep those with such a talk, --occasion those
    with such an event or talk, and --since/--until go by their last talk. Only active cadres
    unless --retired or --all. JSON and CSV carry codes; the table, labels.

    \b
    Example: talkbook list talks --occasion 岗位变动 --since 2026-01-01 --format csv
    """
    from talkbook.catalog import Catalog, load_into
    from talkbook.listing import CADRE_COLUMNS, TALK_COLUMNS, listed_cadres, listed_talks

    typed["since"] = parse_date(typed["since"])  # type: ignore[assignment]
    typed["until"] = parse_date(typed["until"])  # type: ignore[assignment]
    app.ensure_trust()  # the settings read here are verified ones
    columns = CADRE_TABLE + (["retired"] if which else [])

    def cadres(catalog: Catalog) -> tuple[list[dict[str, Any]], list[str], bool, int, str]:
        rows, notes, filtered, left_out = listed_cadres(app, catalog, which or "active", typed)
        return rows, notes, filtered, left_out, _text(app, rows, CADRE_COLUMNS, columns, fmt)

    def talks(catalog: Catalog) -> tuple[list[dict[str, Any]], list[str], bool, int, str]:
        rows, notes, filtered = listed_talks(app, catalog, typed)
        return rows, notes, filtered, 0, _text(app, rows, TALK_COLUMNS, TALK_TABLE, fmt)

    # the rows and their text are made while the tree is checked for changes (load_into)
    rows, notes, filtered, left_out, text = load_into(app, cadres if what == "cadres" else talks)
    click.echo(text, nl=False)
    if left_out:
        notes.append(_("{n} retired cadre(s) left out (--all to include them)").format(n=left_out))
    if not rows:
        nothing = {
            ("cadres", True): _("no cadre matches these filters"),
            ("cadres", False): _("no cadre you can read"),
            ("talks", True): _("no talk matches these filters"),
            ("talks", False): _("no talk you can read"),
        }
        notes.insert(0, nothing[what, filtered])
    echo_notes(notes)


@cli.command()
@click.argument("ref", metavar="ID|CADRE")
@pass_app
def show(app: App, ref: str) -> None:
    """A talk (plan, record, follow-ups, addenda, history) or a cadre (profile, events, talks).

    A cadre by id or unambiguous name; only what your identity can read.

    \b
    Example: talkbook show T-k3x9p2
    """
    from talkbook import views

    click.echo(views.show_text(app, ref))
