"""`talkbook list cadres|talks`: a row per cadre or talk the identity can read, filtered.

Contract: `parse_filters` turns what the user typed (codes or labels in either language, ids or
names) into codes, refusing an unknown value with one line (exit 2); `talk_rows` and `cadre_rows`
return one dict of codes per talk or cadre, as JSON and CSV print them (a table turns codes into
labels with views.display_row). Dates compare as ISO text: a talk by its `held_at` when its record
is readable, else its `at`; a cadre by its last talk.

Security invariant: rows and the --text search see only what the identity decrypted: a profile it
cannot read gives no name, no unit and no match, and the profile's `private` field is never
searched nor listed. Errors never quote a cadre's name, only ids and codes from talkbook.toml.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from talkbook import names
from talkbook.app import App
from talkbook.catalog import Catalog, Item, load
from talkbook.errors import TalkbookError
from talkbook.i18n import _
from talkbook.rules import as_list
from talkbook.views import STATUSES, skipped_note, staff_names, status_label, talk_status
from talkbook.workspace import id_of_rel

UNSEARCHED = frozenset({"private"})  # kept out of briefs, listings and searches alike

TALK_COLUMNS = [
    "id", "cadre", "name", "unit", "speaker", "recorder", "at", "held_at", "status", "talk_type",
    "occasion", "method",
]  # fmt: skip
CADRE_COLUMNS = ["id", "name", "unit", "post", "rank", "last_talk", "talks", "events", "retired"]


@dataclass(frozen=True)
class Filters:
    """What the rows must match, as codes and ids; None matches everything."""

    status: str | None = None
    occasion: str | None = None
    talk_type: str | None = None
    speaker: str | None = None
    cadre: str | None = None
    unit: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    text: str | None = None

    def given(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def parse_filters(app: App, catalog: Catalog, **typed: Any) -> Filters:
    """The user's words as codes: each enumerated value by code or by label (either language),
    a person or a cadre by id or name (names.py)."""
    ws = app.workspace
    found = dict(typed)
    if typed.get("status") is not None:
        found["status"] = _status_code(typed["status"])
    found["occasion"] = names.resolve_occasion(ws, typed.get("occasion"))
    found["talk_type"] = names.resolve_talk_type(ws, typed.get("talk_type"))
    found["speaker"] = names.resolve_person(ws, typed.get("speaker"))
    if typed.get("cadre") is not None:
        found["cadre"] = cadre_id_of(catalog, typed["cadre"])
    if typed.get("text") is not None:
        found["text"] = str(typed["text"]).casefold()
    if typed.get("unit") is not None:
        found["unit"] = str(typed["unit"]).strip().casefold()
    since, until = typed.get("since"), typed.get("until")
    if since and until and since > until:
        raise TalkbookError(_("--since is after --until"))
    return Filters(**found)


def _fold(value: Any) -> str:
    return str(value).strip().casefold()


def _status_code(value: str) -> str:
    for code in STATUSES:
        if _fold(value) in (code, _fold(status_label(code))):
            return code
    raise TalkbookError(_("unknown status: choose from {codes}").format(codes=", ".join(STATUSES)))


def cadre_id_of(catalog: Catalog, ref: str) -> str:
    """A cadre by id (even one whose profile the reader cannot read: a speaker filters their
    talks by it), or by a name among the profiles the reader can read."""
    from talkbook.names import resolve_cadre

    return resolve_cadre(catalog, ref)


def strings(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every text in a front matter value, at any depth, but under the keys in `skip`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key not in skip:
                yield from strings(inner, skip)
    elif isinstance(value, list):
        for inner in value:
            yield from strings(inner, skip)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _mentions(needle: str | None, texts: Iterator[str]) -> bool:
    return needle is None or any(needle in text.casefold() for text in texts)


def _in_range(day: str | None, wanted: Filters) -> bool:
    if wanted.since is None and wanted.until is None:
        return True
    if not day:
        return False
    return (wanted.since is None or day[:10] >= wanted.since.isoformat()) and (
        wanted.until is None or day[:10] <= wanted.until.isoformat()
    )


# -- talks ------------------------------------------------------------------------------------
def talk_row(app: App, catalog: Catalog, talk_id: str, plan: Item) -> dict[str, Any]:
    meta = plan.meta
    record = catalog.records.get(talk_id)
    profile = catalog.profiles.get(str(meta.get("cadre")))
    return {
        "id": talk_id,
        "cadre": meta.get("cadre"),
        "name": profile.meta.get("name") if profile else None,
        "unit": profile.meta.get("unit") if profile else None,
        "speaker": meta.get("speaker"),
        "recorder": meta.get("recorder"),
        "at": meta.get("at"),
        "held_at": record.meta.get("held_at") if record else None,
        "status": talk_status(catalog, talk_id, app.workspace.root),
        "talk_type": meta.get("talk_type"),
        "occasion": meta.get("occasion"),
        "method": meta.get("method"),
    }


def _talk_matches(
    staff: dict[str, str], catalog: Catalog, row: dict[str, Any], wanted: Filters
) -> bool:
    """Whether a talk's row passes every filter; `staff` names the people (talkbook.toml)."""
    record = catalog.records.get(row["id"])
    plain = {
        "status": row["status"],
        "occasion": row["occasion"],
        "talk_type": row["talk_type"],
        "cadre": row["cadre"],
    }
    if any(getattr(wanted, key) not in (None, value) for key, value in plain.items()):
        return False
    speakers = {row["speaker"], record.meta.get("speaker") if record else None}
    if wanted.speaker is not None and wanted.speaker not in speakers:
        return False
    if wanted.unit is not None and (row["unit"] is None or _fold(row["unit"]) != wanted.unit):
        return False
    if not _in_range(str(row["held_at"] or row["at"] or ""), wanted):
        return False
    if wanted.text is None:
        return True
    people = [staff[p] for p in (row["speaker"], row["recorder"]) if p in staff]
    texts = [
        *strings(catalog.plans[row["id"]].meta),
        *(strings(record.meta) if record else []),
        *([row["name"]] if row["name"] else []),
        *people,
    ]
    return _mentions(wanted.text, iter(texts))


def talk_rows(app: App, **typed: Any) -> tuple[list[dict[str, Any]], list[str], bool]:
    """The talks the identity can read, soonest first, that match the filters; the notes on
    files left out; whether any filter was given."""
    app.ensure_trust()  # the settings read here are verified ones
    catalog = load(app)
    wanted = parse_filters(app, catalog, **typed)
    staff, filtered = staff_names(app.workspace), wanted.given()
    rows = []
    for talk_id, plan in sorted(catalog.plans.items(), key=lambda kv: str(kv[1].meta.get("at"))):
        row = talk_row(app, catalog, talk_id, plan)
        if not filtered or _talk_matches(staff, catalog, row, wanted):  # no filter: all match
            rows.append(row)
    return rows, skipped_note(catalog), filtered


# -- cadres -----------------------------------------------------------------------------------
def _last_talk(catalog: Catalog, app: App, plans: list[Item]) -> str | None:
    days = []
    for plan in plans:
        talk_id = id_of_rel(plan.rel)
        record = catalog.records.get(talk_id)
        if record is not None:
            days.append(str(record.meta.get("held_at", ""))[:10])
        elif talk_status(catalog, talk_id, app.workspace.root) == "held":
            days.append(str(plan.meta.get("at", ""))[:10])  # held, record not readable here
    return max(days) if days else None


def cadre_row(app: App, catalog: Catalog, cadre_id: str, plans: list[Item]) -> dict[str, Any]:
    meta = catalog.profiles[cadre_id].meta
    return {
        "id": cadre_id,
        "name": meta.get("name"),
        "unit": meta.get("unit"),
        "post": meta.get("post"),
        "rank": meta.get("rank"),
        "last_talk": _last_talk(catalog, app, plans),
        "talks": len(plans),
        "events": len(as_list(meta.get("events"))),
        "retired": str(meta["retired"]) if meta.get("retired") else None,
    }


def _cadre_matches(
    app: App, catalog: Catalog, row: dict[str, Any], plans: list[Item], wanted: Filters
) -> bool:
    meta = catalog.profiles[row["id"]].meta
    if wanted.cadre is not None and row["id"] != wanted.cadre:
        return False
    if wanted.unit is not None and (row["unit"] is None or _fold(row["unit"]) != wanted.unit):
        return False
    if wanted.occasion is not None:
        occasions = {e.get("occasion") for e in as_list(meta.get("events")) if isinstance(e, dict)}
        occasions |= {p.meta.get("occasion") for p in plans}
        if wanted.occasion not in occasions:
            return False
    if not _in_range(row["last_talk"], wanted):
        return False
    if wanted.status or wanted.talk_type or wanted.speaker:  # a talk of theirs that matches
        talk_wanted = Filters(wanted.status, None, wanted.talk_type, wanted.speaker)
        talks = [talk_row(app, catalog, id_of_rel(p.rel), p) for p in plans]
        if not any(_talk_matches({}, catalog, talk, talk_wanted) for talk in talks):
            return False
    return _mentions(wanted.text, strings(meta, UNSEARCHED))


def cadre_rows(
    app: App, which: str = "active", **typed: Any
) -> tuple[list[dict[str, Any]], list[str], bool, int]:
    """The profiles the identity can read that match the filters, by id; the notes on files left
    out; whether any filter was given; how many retired cadres `which` ("active", "retired" or
    "all") left out."""
    app.ensure_trust()  # the settings read here are verified ones
    catalog = load(app)
    wanted = parse_filters(app, catalog, **typed)
    plans_of: dict[str, list[Item]] = {}
    for plan in catalog.plans.values():
        plans_of.setdefault(str(plan.meta.get("cadre")), []).append(plan)
    rows, retired_out, filtered = [], 0, wanted.given()
    for cadre_id in sorted(catalog.profiles):
        plans = plans_of.get(cadre_id, [])
        row = cadre_row(app, catalog, cadre_id, plans)
        if filtered and not _cadre_matches(app, catalog, row, plans, wanted):  # no filter: all
            continue
        if which == "active" and row["retired"] or which == "retired" and not row["retired"]:
            retired_out += bool(row["retired"])
            continue
        rows.append(row)
    return rows, skipped_note(catalog), filtered, retired_out
