"""`talkbook list cadres|talks`: a row per cadre or talk the identity can read, filtered.

Contract: `parse_filters` turns what the user typed (codes or labels in either language, ids or
names) into codes, refusing an unknown value with one line (exit 2); `listed_talks` and
`listed_cadres` (run by the list command inside catalog.load_into) return one dict of codes per
talk or cadre, as JSON and CSV print them (a table turns codes into labels with
views.display_columns), talks soonest first. Dates compare as ISO text: a talk by its `held_at`
when its record is readable, else its `at`; a cadre by its last talk.

Security invariant: rows and the --text search see only what the identity decrypted: a profile it
cannot read gives no name, no unit and no match, and the profile's `private` field is never
searched nor listed. Errors never quote a cadre's name, only ids and codes from talkbook.toml.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, NamedTuple

from talkbook import names
from talkbook.app import App
from talkbook.catalog import Catalog, Item
from talkbook.errors import TalkbookError
from talkbook.i18n import _
from talkbook.rules import as_list
from talkbook.views import STATUSES, skipped_note, staff_names, status_label, talk_status

UNSEARCHED = frozenset({"private"})  # kept out of briefs, listings and searches alike

TALK_COLUMNS = [
    "id", "cadre", "name", "unit", "speaker", "recorder", "at", "held_at", "status", "talk_type",
    "occasion", "method",
]  # fmt: skip
CADRE_COLUMNS = ["id", "name", "unit", "post", "rank", "last_talk", "talks", "events", "retired"]


class Filters(NamedTuple):
    """What the rows must match, as codes and ids; None matches everything. A NamedTuple, not a
    dataclass: every list command defines it at import, and this is built in a fifth of the time."""

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
        return any(value is not None for value in self)


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
Person = tuple[Any, Any]  # a cadre's name and unit, from the profile
NOBODY: Person = (None, None)  # a cadre whose profile the reader cannot read


def cadre_people(catalog: Catalog) -> dict[str, Person]:
    """Each readable profile's name and unit, read once for a listing: ten thousand talks look
    up two thousand profiles, and a small table answers faster than the profiles' own."""
    return {cid: (p.get("name"), p.get("unit")) for cid, p in catalog.profiles.items()}


def talk_row(
    app: App, catalog: Catalog, talk_id: str, plan: Item, people: dict[str, Person]
) -> dict[str, Any]:
    """A talk's row of codes; `people` is cadre_people(catalog)."""
    get = plan.get  # its scalars: the lists stay undecoded (catalog.Item)
    record = catalog.records.get(talk_id)
    cadre = get("cadre")
    name, unit = people.get(str(cadre), NOBODY)
    return {
        "id": talk_id,
        "cadre": cadre,
        "name": name,
        "unit": unit,
        "speaker": get("speaker"),
        "recorder": get("recorder"),
        "at": get("at"),
        "held_at": record.get("held_at") if record else None,
        "status": "held" if record else talk_status(catalog, talk_id, app.workspace.root),
        "talk_type": get("talk_type"),
        "occasion": get("occasion"),
        "method": get("method"),
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
    speakers = {row["speaker"], record.get("speaker") if record else None}
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


def listed_talks(
    app: App, catalog: Catalog, typed: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str], bool]:
    """The talks in `catalog` (what the identity can read), soonest first, that match the
    filters; the notes on files left out; whether any filter was given. Only reads: it runs
    inside catalog.load_into, possibly twice."""
    wanted = parse_filters(app, catalog, **typed)
    staff, filtered, people = staff_names(app.workspace), wanted.given(), cadre_people(catalog)
    rows = [talk_row(app, catalog, tid, plan, people) for tid, plan in catalog.plans.items()]
    if filtered:
        rows = [row for row in rows if _talk_matches(staff, catalog, row, wanted)]
    rows.sort(key=lambda row: str(row["at"]))  # stable: ties keep the catalog's order
    return rows, skipped_note(catalog), filtered


# -- cadres -----------------------------------------------------------------------------------
Talks = list[tuple[str, Item]]  # a cadre's plans, by talk id


def _last_talk(catalog: Catalog, app: App, talks: Talks) -> str | None:
    days = []
    records = catalog.records
    for talk_id, plan in talks:
        record = records.get(talk_id)
        if record is not None:
            days.append(str(record.get("held_at", ""))[:10])
        elif talk_status(catalog, talk_id, app.workspace.root) == "held":
            days.append(str(plan.get("at", ""))[:10])  # held, record not readable here
    return max(days) if days else None


def cadre_row(app: App, catalog: Catalog, cadre_id: str, talks: Talks) -> dict[str, Any]:
    get = catalog.profiles[cadre_id].get  # its scalars and events: no tail decoded (catalog.Item)
    return {
        "id": cadre_id,
        "name": get("name"),
        "unit": get("unit"),
        "post": get("post"),
        "rank": get("rank"),
        "last_talk": _last_talk(catalog, app, talks),
        "talks": len(talks),
        "events": len(as_list(get("events"))),
        "retired": str(get("retired")) if get("retired") else None,
    }


def _cadre_matches(
    app: App, catalog: Catalog, row: dict[str, Any], talks: Talks, wanted: Filters
) -> bool:
    profile = catalog.profiles[row["id"]]
    if wanted.cadre is not None and row["id"] != wanted.cadre:
        return False
    if wanted.unit is not None and (row["unit"] is None or _fold(row["unit"]) != wanted.unit):
        return False
    if wanted.occasion is not None:
        events = as_list(profile.get("events"))
        occasions = {e.get("occasion") for e in events if isinstance(e, dict)}
        occasions |= {plan.get("occasion") for _id, plan in talks}
        if wanted.occasion not in occasions:
            return False
    if not _in_range(row["last_talk"], wanted):
        return False
    if wanted.status or wanted.talk_type or wanted.speaker:  # a talk of theirs that matches
        talk_wanted = Filters(wanted.status, None, wanted.talk_type, wanted.speaker)
        rows = [talk_row(app, catalog, talk_id, plan, {}) for talk_id, plan in talks]  # no name
        if not any(_talk_matches({}, catalog, talk, talk_wanted) for talk in rows):
            return False
    if wanted.text is None:
        return True
    return _mentions(wanted.text, strings(profile.meta, UNSEARCHED))


def listed_cadres(
    app: App, catalog: Catalog, which: str, typed: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str], bool, int]:
    """The profiles in `catalog` that match the filters, by id; the notes on files left out;
    whether any filter was given; how many retired cadres `which` ("active", "retired" or
    "all") left out. Only reads, as listed_talks."""
    wanted = parse_filters(app, catalog, **typed)
    talks_of: dict[str, Talks] = {}
    for talk_id, plan in catalog.plans.items():
        talks_of.setdefault(str(plan.get("cadre")), []).append((talk_id, plan))
    rows, retired_out, filtered = [], 0, wanted.given()
    for cadre_id in sorted(catalog.profiles):
        talks = talks_of.get(cadre_id, [])
        row = cadre_row(app, catalog, cadre_id, talks)
        if filtered and not _cadre_matches(app, catalog, row, talks, wanted):  # no filter: all
            continue
        if which == "active" and row["retired"] or which == "retired" and not row["retired"]:
            retired_out += bool(row["retired"])
            continue
        rows.append(row)
    return rows, skipped_note(catalog), filtered, retired_out
