"""Rows and text for the terminal: what list, due, followups and show print.

Contract: `table_text` lays rows out in columns measured in terminal cells (a CJK character takes
two); `status_label`, `method_label` and `display_row` turn the codes kept in files, JSON and CSV
into the words of the reader's language for a table; `show_text` is `talkbook show` (summary.py).

Only for the person at the terminal, who holds the key: names appear here and nowhere else.
Every line a table prints, and `show`'s text, passes through `terminal_safe`: no control
character or bidi override from a file reaches the terminal.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talkbook import gittrail, i18n, obligations
from talkbook.app import App
from talkbook.catalog import Catalog, load
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


def table_text(
    rows: list[dict[str, Any]],
    columns: list[str],
    headers: list[str] | None = None,
    empty: str | None = NOTHING,
) -> str:
    """Columns padded to the widest cell; `headers` name them (`column_titles` otherwise).
    No rows: `empty` ("(nothing)" in the reader's language), or the header and its rule alone
    when `empty` is None.

    Every line passes through terminal_safe whole, once: it swaps one character for one (U+FFFD
    takes one column, as each character it replaces does), so widths measured before are the
    widths shown, and a line costs one regex pass instead of one per cell."""
    if not rows and empty is not None:
        return _("(nothing)") if empty == NOTHING else empty
    titles = headers or column_titles(columns)
    yes = _("yes")
    padded = []
    for title, column in zip(titles, columns, strict=True):
        values = [row.get(column) for row in rows]
        cells = [title, *(v if type(v) is str else _cell(v, yes) for v in values)]
        width = max(map(_width, set(cells)))
        pad = {v: v + " " * (width - _width(v)) for v in set(cells)}  # names, labels repeat
        padded.append([pad[title], "-" * width, *map(pad.__getitem__, cells[1:])])
    return "\n".join(terminal_safe("  ".join(line)).rstrip() for line in zip(*padded, strict=True))


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


def display_row(
    ws: Workspace, row: dict[str, Any], staff: dict[str, str] | None = None
) -> dict[str, Any]:
    """A row of codes as a table shows it: labels in the reader's language, names of staff."""
    return _displayed(row, staff_names(ws) if staff is None else staff, ws.label)


def display_rows(ws: Workspace, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """display_row for a whole listing: staff names read once, each occasion's and talk type's
    label looked up once (ten thousand talks share a dozen of them)."""
    labels: dict[tuple[str, Any], str] = {}

    def label(table: str, code: Any) -> str:
        try:
            return labels[table, code]
        except KeyError:
            found = labels[table, code] = ws.label(table, code)
            return found
        except TypeError:  # a code that is no string (a hand-edited file): asked each time
            return ws.label(table, code)

    staff = staff_names(ws)
    return [_displayed(row, staff, label) for row in rows]


def _displayed(
    row: dict[str, Any], staff: dict[str, str], label: Callable[[str, Any], str]
) -> dict[str, Any]:
    shown = dict(row)
    if "status" in row:
        shown["status"] = status_label(row["status"])
    if "method" in row:
        shown["method"] = method_label(row["method"])
    if "occasion" in row:
        shown["occasion"] = label("occasions", row["occasion"])
    if "talk_type" in row:
        shown["talk_type"] = label("talk_types", row["talk_type"])
    for key in ("speaker", "recorder"):
        if row.get(key) is not None:
            shown[key] = staff.get(str(row[key]), str(row[key]))
    for key in ("at", "held_at"):
        if key in row:
            shown[key] = when_text(row[key])
    return shown


def created_dates(app: App) -> dict[str, dt.date]:
    """When each profile was added: where the cadence clock starts for a cadre never talked to."""
    added = gittrail.first_added(app.workspace.root, "cadres/")
    return {
        rel.removeprefix("cadres/").removesuffix(".md.age"): day
        for rel, day in added.items()
        if rel.startswith("cadres/")
    }


def due_rows(app: App, as_of: dt.date | None, within: int) -> tuple[list[dict], list[str]]:
    """The obligations, and a word on the files they could not take into account."""
    app.ensure_trust()  # the settings read here are verified ones
    day = as_of or app.today()
    catalog = load(app)
    found = obligations.due(app.workspace, catalog, day, created_dates(app), within)
    return [o.as_dict(day, catalog) for o in found], skipped_note(catalog)


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
    catalog = load(app)
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
    status = str(plan.meta.get("status"))
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
