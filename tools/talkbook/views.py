"""Rows and text for the terminal: what list, due, followups and show print.

Contract: `table_text` lays rows out in columns measured in terminal cells (a CJK character takes
two); `status_label`, `method_label`, `display_columns` (a whole table's columns) and
`display_row` turn the codes kept in files, JSON and CSV into the words of the reader's language
for a table; `show_text` is `talkbook show` (summary.py).

Only for the person at the terminal, who holds the key: names appear here and nowhere else.
Every line a table prints, and `show`'s text, passes through `terminal_safe`: no control
character or bidi override from a file reaches the terminal.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talkbook import gittrail, i18n, obligations
from talkbook.app import App
from talkbook.catalog import Catalog, load_into
from talkbook.i18n import N_, _
from talkbook.workspace import Workspace

NOTHING = N_("(nothing)")


def column_titles(columns: list[str]) -> list[str]:
    """A table's column keys as headers in the reader's language (English: the keys, but
    `last_talk`)."""
    titles = {
        "id": _("id"),
        "cadre": _("cadre"),
        "name": _("name"),
        "speaker": _("speaker"),
        "at": _("at"),
        "status": _("status"),
        "occasion": _("occasion"),
        "method": _("method"),
        "unit": _("unit"),
        "post": _("post"),
        "last_talk": _("last talk"),
        "talks": _("talks"),
        "events": _("events"),
        "retired": _("retired"),
        "reason": _("reason"),
        "talk": _("talk"),
        "deadline": _("deadline"),
        "days_left": _("days_left"),
        "overdue": _("overdue"),
        "detail": _("detail"),
        "n": _("n"),
        "what": _("what"),
        "owner": _("owner"),
        "due": _("due"),
    }
    return [titles.get(c, c) for c in columns]


REASONS = ("cadence", "follow_up", "approval")  # any other reason is an occasion


def reason_label(ws: Workspace, code: Any) -> str:
    """Why something is due, as the reader reads it: an occasion by its workspace label, the
    other reasons by i18n.label."""
    if code in REASONS:
        return _label("reason", str(code), i18n.language())
    return ws.label("occasions", None if code is None else str(code))


def due_display(ws: Workspace, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`due` rows (codes) as its table shows them: reasons as labels; an occasion's detail,
    which is its label, is not said twice."""
    shown = []
    for row in rows:
        reason = reason_label(ws, row.get("reason"))
        detail = "" if row.get("detail") == reason else row.get("detail")
        shown.append({**row, "reason": reason, "detail": detail})
    return shown


@functools.lru_cache(maxsize=65536)  # names, dates and labels repeat down a long listing
def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Unicode's Cc (U+0000-001F, U+007F-009F) but newline and tab, and the bidi controls above.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text for a terminal: control characters (an ESC starts a sequence that can retitle the
    window, write the clipboard or hide lines) and bidi overrides, which anyone who can push
    may put in a field, a body or a commit's author, shown as U+FFFD; newlines and tabs stay."""
    return UNSAFE.sub("\ufffd", text)


def _cell(value: Any, yes: str) -> str:
    """A value as its cell shows it, before terminal_safe (which `table_text` runs per line)."""
    if value is None or value is False:
        return ""
    if value is True:
        return yes
    return value if type(value) is str else str(value)


Shown = dict[str, Callable[[Any], Any]]  # per column: how its value reads (display_columns)


def table_text(
    rows: list[dict[str, Any]],
    columns: list[str],
    headers: list[str] | None = None,
    empty: str | None = NOTHING,
    shown: Shown | None = None,
) -> str:
    """Columns padded to the widest cell; `headers` name them (`column_titles` otherwise);
    `shown` turns a column's values into what the table shows (display_columns), column by
    column: no row is copied. No rows: `empty` ("(nothing)" in the reader's language), or the
    header and its rule alone when `empty` is None.

    Every line passes through terminal_safe whole, once: it swaps one character for one (U+FFFD
    takes one column, as each character it replaces does), so widths measured before are the
    widths shown, and a line costs one regex pass instead of one per cell."""
    if not rows and empty is not None:
        return _("(nothing)") if empty == NOTHING else empty
    titles = headers or column_titles(columns)
    table = [list(map(row.get, columns)) for row in rows]  # each row once, its cells in C
    by_column = zip(*table, strict=True) if table else [()] * len(columns)
    padded = [
        _padded(title, _column_cells(values, (shown or {}).get(column)))
        for title, column, values in zip(titles, columns, by_column, strict=True)
    ]
    # map over C functions: no Python frame per line of a ten-thousand-line listing
    joined = map("  ".join, zip(*padded, strict=True))
    lines = map(functools.partial(UNSAFE.sub, "\ufffd"), joined)
    return "\n".join(map(str.rstrip, lines))


def _column_cells(values: tuple[Any, ...], show: Callable[[Any], Any] | None) -> list[str]:
    """A column's cells: its values as `show` turns them, then as `_cell` writes them."""
    if show is not None:
        values = _shown(values, show)
    if set(map(type, values)) <= {str}:  # most columns: text already, as it is shown
        return list(values)
    yes = _("yes")
    return [v if type(v) is str else _cell(v, yes) for v in values]


def _shown(values: tuple[Any, ...], show: Callable[[Any], Any]) -> tuple[Any, ...]:
    """show(value) of each value: asked once per distinct text when the column is text (a
    label, a name: thousands of rows share a dozen), each time otherwise. `show` answers a
    text the same each time it is asked (display_columns)."""
    if not set(map(type, values)) <= {str, type(None)}:
        return tuple(map(show, values))
    distinct = set(values)
    if len(distinct) * 2 > len(values):  # mostly different (times): no gain in asking once
        return tuple(map(show, values))
    answers = dict(zip(distinct, map(show, distinct), strict=True))
    return tuple(map(answers.__getitem__, values))


def _padded(title: str, cells: list[str]) -> list[str]:
    """The title, its rule and the cells, each padded to the column's width."""
    if all(map(str.isascii, cells)):  # ids, times, numbers: one column per character
        width = max(_width(title), max(map(len, cells), default=0))
        return [_pad(title, width), "-" * width, *map(str.ljust, cells, itertools.repeat(width))]
    distinct = set(cells)  # names, labels and dates repeat down a long listing
    widths = dict(zip(distinct, map(_width, distinct), strict=True))
    widths[title] = _width(title)
    width = max(widths.values())
    pad = {v: v + " " * (width - w) for v, w in widths.items() if w < width}
    return [pad.get(title, title), "-" * width, *map(pad.get, cells, cells)]  # get(v, v)


def _pad(text: str, width: int) -> str:
    """Text padded with spaces to `width` terminal columns."""
    return text + " " * (width - _width(text))


@functools.lru_cache(maxsize=256)
def _label(kind: str, code: str, language: str) -> str:
    """i18n.label, asked once per code and language: a listing has thousands of rows."""
    return i18n.label(kind, code)


def status_label(code: Any) -> str:
    """A plan's status in the reader's language (i18n.label; an unknown code as itself)."""
    return "" if code is None else _label("status", str(code), i18n.language())


STATUSES = ("draft", "submitted", "approved", "rejected", "postponed", "cancelled", "held")


def method_label(code: Any) -> str:
    """A talk method in the reader's language (i18n.label; an unknown code as itself)."""
    return "" if code is None else _label("method", str(code), i18n.language())


def when_text(value: Any) -> str:
    """A date-time as people read it: `2026-12-01 09:30`."""
    return "" if value is None else str(value).replace("T", " ")


def person_name(ws: Workspace, pid: Any) -> str:
    """A person of the workspace by name (talkbook.toml is plaintext); the id otherwise."""
    return staff_names(ws).get(str(pid), "" if pid is None else str(pid))


def staff_names(ws: Workspace) -> dict[str, str]:
    """Every person's name by id, read once for a whole listing."""
    return {pid: person.name for pid, person in ws.people.items()}


def display_columns(ws: Workspace) -> Shown:
    """How each column of codes reads in a table: labels in the reader's language, staff by
    name, times as people write them; a column not named here shows as it is. Staff names are
    read once, and each occasion's and talk type's label asked once per listing (ten thousand
    talks share a dozen of them)."""
    staff = staff_names(ws)

    def person(pid: Any) -> Any:
        return pid if pid is None else staff.get(str(pid), str(pid))

    return {
        "status": _once(status_label),
        "method": _once(method_label),
        "occasion": _once(functools.partial(ws.label, "occasions")),
        "talk_type": _once(functools.partial(ws.label, "talk_types")),
        "speaker": person,
        "recorder": person,
        "at": when_text,
        "held_at": when_text,
    }


def _once(label: Callable[[Any], str]) -> Callable[[Any], str]:
    """`label`, asked once per code (a code that is no string, from a hand-edited file, each
    time: 1 and True are one key to a dict)."""
    found: dict[Any, str] = {}

    def once(code: Any) -> str:
        if type(code) is not str and code is not None:
            return label(code)
        try:
            return found[code]
        except KeyError:
            answer = found[code] = label(code)
            return answer

    return once


def display_row(ws: Workspace, row: dict[str, Any]) -> dict[str, Any]:
    """A row of codes as a table shows it: labels in the reader's language, names of staff."""
    shown = display_columns(ws)
    return {key: shown[key](value) if key in shown else value for key, value in row.items()}


def created_dates(app: App) -> dict[str, dt.date]:
    """When each profile was added: where the cadence clock starts for a cadre never talked to."""
    return created_dates_later(app)()


def created_dates_later(app: App) -> Callable[[], dict[str, dt.date]]:
    """created_dates, its git log started now and read when asked for (gittrail)."""
    added_later = gittrail.first_added_later(app.workspace.root, "cadres/")

    def by_cadre() -> dict[str, dt.date]:
        return {
            rel.removeprefix("cadres/").removesuffix(".md.age"): day
            for rel, day in added_later().items()
            if rel.startswith("cadres/")
        }

    return functools.cache(by_cadre)


def due_rows(app: App, as_of: dt.date | None, within: int) -> tuple[list[dict], list[str]]:
    """The obligations, and a word on the files they could not take into account."""
    app.ensure_trust()  # the settings read here are verified ones
    day = as_of or app.today()
    created = created_dates_later(app)  # git's log runs while the index loads

    def due(catalog: Catalog) -> tuple[list[dict], list[str]]:
        found = obligations.due(app.workspace, catalog, day, created(), within)
        return [o.as_dict(day, catalog) for o in found], skipped_note(catalog)

    return load_into(app, due)


def skipped_note(catalog: Catalog) -> list[str]:
    notes = []
    if catalog.unreadable:
        notes.append(
            _("{n} file(s) not readable with your identity skipped").format(
                n=len(catalog.unreadable)
            )
        )
    if catalog.malformed:
        names = " ".join(rel for rel, _finding in catalog.malformed)
        notes.append(
            _("{n} malformed file(s) skipped (run validate): {files}").format(
                n=len(catalog.malformed), files=names
            )
        )
    return notes


def followup_rows(app: App, as_of: dt.date | None) -> tuple[list[dict], list[str]]:
    app.ensure_trust()  # the settings read here are verified ones
    day = as_of or app.today()
    return load_into(app, lambda catalog: _followup_rows(catalog, day))


def _followup_rows(catalog: Catalog, day: dt.date) -> tuple[list[dict], list[str]]:
    found = sorted(
        obligations.followup_obligations(catalog, day, upcoming=True), key=lambda o: o.deadline
    )
    return [
        {
            "talk": o.talk,
            "n": o.number,
            "cadre": o.cadre,
            "name": catalog.cadre_name(o.cadre),
            "what": o.detail,
            "owner": o.owner,
            "due": o.deadline.isoformat(),
            "overdue": o.overdue,
        }
        for o in found
    ], skipped_note(catalog)


def talk_status(catalog: Catalog, talk_id: str, root: Path | None = None) -> str:
    """A talk with a record is held, whether or not the reader can decrypt the record: an
    approver reads the plan, never the record, and the record's existence is in its path
    (`talks/<year>/<talk-id>/record.md.age`), which is not confidential — for a plan that was
    approved; a draft or submitted plan stays what it says."""
    if talk_id in catalog.records:
        return "held"
    plan = catalog.plans.get(talk_id)
    if plan is None:
        return "?"
    status = str(plan.get("status"))
    # Only an approved plan is held by a record it cannot read (a plan recorded before `held`
    # existed): a record file anyone could push beside a submitted plan changes nothing.
    if status == "approved" and root is not None and _record_beside(root, plan.rel):
        return "held"
    return status


def _record_beside(root: Path, plan_rel: str) -> bool:
    """Whether a record file lies beside this plan (os.path: pathlib costs ten times more, and
    a listing asks for every approved talk)."""
    return os.path.isfile(os.path.join(root, os.path.dirname(plan_rel), "record.md.age"))


def show_text(app: App, ref: str) -> str:
    """`talkbook show`: a talk (plan, record, addenda, follow-ups, history) or a cadre."""
    from talkbook.summary import show

    return terminal_safe(show(app, ref))
