"""What is owed: occasion talks, cadence gaps, follow-ups, approvals waiting.

Each obligation is a value; `due` lists those not met, most urgent first, reading the records
once (`Records`) for all kinds. A talk meets an occasion when its record names that cadre and
occasion and it was held on or after the event's date. A retired cadre (profile field
`retired`, from that day on) owes and is owed nothing here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from operator import attrgetter
from typing import Any, NamedTuple

from talkbook import rules
from talkbook.catalog import Catalog, Item
from talkbook.i18n import _
from talkbook.models import parse_date
from talkbook.workspace import Workspace

DEFAULT_HORIZON_DAYS = 30


class Obligation(NamedTuple):  # immutable, and built in a third of a frozen dataclass's time
    cadre: str
    reason: str  # an occasion id, "cadence", "follow_up" or "approval"
    deadline: dt.date
    overdue: bool
    since: dt.date | None = None
    talk: str | None = None
    detail: str = ""
    owner: str | None = None
    number: int | None = None  # a follow-up's place in its record, for `talkbook done`

    def days_left(self, as_of: dt.date) -> int:
        return (self.deadline - as_of).days

    def as_dict(self, as_of: dt.date, catalog: Catalog | None = None) -> dict[str, Any]:
        return {
            "cadre": self.cadre,
            "name": catalog.cadre_name(self.cadre) if catalog else "",
            "reason": self.reason,
            "talk": self.talk,
            "since": self.since.isoformat() if self.since else None,
            "deadline": self.deadline.isoformat(),
            "days_left": self.days_left(as_of),
            "overdue": self.overdue,
            "owner": self.owner,
            "detail": self.detail,
        }


def as_dicts(found: Iterable[Obligation], as_of: dt.date, catalog: Catalog) -> list[dict[str, Any]]:
    """`as_dict` of each, each cadre's name and each day's text made once (a due list of
    thousands names a few hundred cadres and days)."""
    names = Names(catalog)
    texts = Texts()
    rows = []
    for o in found:
        since, deadline = o.since, o.deadline
        rows.append(
            {
                "cadre": o.cadre,
                "name": names[o.cadre],
                "reason": o.reason,
                "talk": o.talk,
                "since": texts[since] if since else None,
                "deadline": texts[deadline],
                "days_left": (deadline - as_of).days,
                "overdue": o.overdue,
                "owner": o.owner,
                "detail": o.detail,
            }
        )
    return rows


class Names(dict[str, str]):
    """Catalog.cadre_name of each cadre, asked once."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog

    def __missing__(self, cadre: str) -> str:
        name = self[cadre] = self.catalog.cadre_name(cadre)
        return name


class Texts(dict[dt.date, str]):
    """Each day's ISO text, made once."""

    def __missing__(self, day: dt.date) -> str:
        text = self[day] = day.isoformat()
        return text


class Days(dict[str, dt.date | None]):
    """Front matter values as days, each text parsed once (ten thousand records share a few
    thousand days): `days[str(value)[:10]]`, None when it is none."""

    def __missing__(self, text: str) -> dt.date | None:
        try:
            day: dt.date | None = parse_date(text)
        except ValueError:
            day = None
        self[text] = day
        return day


Talk = tuple[Any, Item, dt.date | None]  # a record's occasion, the record, the day held
# a record with follow-ups: its id, its cadre (as text), the day it was held, its follow-ups
Following = tuple[str, str, dt.date | None, Any]


class Records(NamedTuple):
    """What obligations read of the records, read in one pass: the front matter of ten
    thousand records is touched once, not once per rule and event. Scalar fields are read with
    Item.get, which decodes no record's lists (only the follow-ups are asked for)."""

    of_cadre: dict[str, list[Talk]]  # each cadre's held talks
    following_up: list[Following]  # those with follow-ups, with what was read of them
    days: Days  # the days read so far, for the follow-ups' days

    @classmethod
    def read(cls, catalog: Catalog) -> Records:
        of_cadre: defaultdict[str, list[Talk]] = defaultdict(list)
        following_up = []
        days = Days()
        for talk_id, record in catalog.records.items():
            get = record.get
            day = days[str(get("held_at"))[:10]]
            cadre = str(get("cadre"))
            of_cadre[cadre].append((get("occasion"), record, day))
            if follow_ups := get("follow_ups"):  # none, or none listed: nothing to follow up
                following_up.append((talk_id, cadre, day, follow_ups))
        return cls(of_cadre, following_up, days)


def _following_up(catalog: Catalog, days: Days) -> list[Following]:
    """Records.following_up alone (followups asks nothing else): the follow-ups of each
    record, and the cadre and day of those that have some."""
    return [
        (talk_id, str(r.get("cadre")), days[str(r.get("held_at"))[:10]], follow_ups)
        for talk_id, r in catalog.records.items()
        if (follow_ups := r.get("follow_ups"))
    ]


def occasion_obligations(
    ws: Workspace, catalog: Catalog, as_of: dt.date, records: Records | None = None
) -> list[Obligation]:
    found = []
    held = (records or Records.read(catalog)).of_cadre
    allowed = _Allowed(ws.config)
    dates = _Dates()
    labels: dict[Any, str] = {}
    plans = None  # the open plans for occasions, looked through once an event is found unmet
    for cadre_id, profile in catalog.profiles.items():
        for event in _listed(profile.get("events")):
            step = allowed[event.get("occasion")]  # as rules.deadline
            if step is None:
                continue  # an occasion the workspace dropped
            since = dates[str(event["date"])]
            deadline = since + step
            if since > as_of:
                continue
            occasion = event["occasion"]
            if _met(held.get(cadre_id, ()), occasion, since, as_of):
                continue
            if occasion not in labels:
                labels[occasion] = ws.label("occasions", occasion)
            if plans is None:
                plans = _open_plans(catalog)
            found.append(
                Obligation(
                    cadre_id,
                    occasion,
                    deadline,
                    deadline < as_of,
                    since=since,
                    talk=_planned(plans, cadre_id, occasion, event["date"]),
                    detail=labels[occasion],
                )
            )
    return found


def _listed(value: Any) -> Any:
    """rules.as_list(value) to iterate over: a list as it is (as_list copies it)."""
    return value if type(value) is list else rules.as_list(value)


class _Allowed(dict[Any, dt.timedelta | None]):
    """The days each occasion allows (rules.deadline's), read from the settings once per
    occasion rather than once per event; None for an occasion the workspace dropped."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.rules = config.get("occasions") or {}

    def __missing__(self, occasion: Any) -> dt.timedelta | None:
        rule = self.rules.get(occasion)
        step = dt.timedelta(days=int(rule["deadline_days"])) if rule else None
        self[occasion] = step
        return step


class _Dates(dict[str, dt.date]):
    """parse_date of each text, parsed once (ValueError as parse_date's, and each time)."""

    def __missing__(self, text: str) -> dt.date:
        day = self[text] = parse_date(text)
        return day


def _met(talks: Iterable[Talk], occasion: Any, since: dt.date, as_of: dt.date) -> bool:
    """Whether a talk for this occasion was held between the event and the day."""
    for held_for, _record, day in talks:
        if held_for == occasion and day is not None and since <= day <= as_of:
            return True
    return False


OpenPlans = dict[tuple[str, Any], list[tuple[str, Any]]]


def _open_plans(catalog: Catalog) -> OpenPlans:
    """(talk id, event date) of each plan for an occasion, not cancelled and not yet held, by
    (cadre, occasion), in the catalog's order: one pass over the plans' scalar fields."""
    found: OpenPlans = defaultdict(list)
    held = catalog.records
    for talk_id, plan in catalog.plans.items():
        if talk_id in held:
            continue  # most plans: asked nothing
        get = plan.get
        occasion = get("occasion")
        if occasion is not None and get("status") != "cancelled":
            found[(str(get("cadre")), occasion)].append((talk_id, get("event_date")))
    return found


def _planned(plans: OpenPlans, cadre_id: str, occasion: Any, event_date: Any) -> str | None:
    """The last open plan for this cadre's event, if any."""
    planned = [
        talk_id
        for talk_id, date in plans.get((cadre_id, occasion), ())
        if date in (None, event_date)
    ]
    return planned[-1] if planned else None


def _role_holders(ws: Workspace, catalog: Catalog, role: str) -> list[tuple[str, Any]]:
    """(person id, unit) of each person whose own cadre profile has this role (a unit head,
    say): asked once per rule, not once per cadre (talkbook.toml's people are parsed anew on
    every `ws.people`)."""
    holders = []
    for person in ws.people.values():
        profile = catalog.profiles.get(person.cadre or "")
        if profile and role in rules.as_list(profile.get("roles")):
            holders.append((person.id, profile.get("unit")))
    return holders


def cadence_obligations(
    ws: Workspace,
    catalog: Catalog,
    as_of: dt.date,
    created: dict[str, dt.date],
    horizon: int = DEFAULT_HORIZON_DAYS,
    records: Records | None = None,
) -> list[Obligation]:
    found = []
    person_of = _people_by_cadre(ws)
    held = (records or Records.read(catalog)).of_cadre
    last = {cadre_id: last_day(talks, as_of) for cadre_id, talks in held.items()}
    for rule in ws.config.get("cadence") or []:
        every = dt.timedelta(days=int(rule["every_days"]))
        speaker_role, cadre_role = rule.get("speaker_role"), rule.get("cadre_role")
        holders = _role_holders(ws, catalog, speaker_role) if speaker_role else []
        label = None
        for cadre_id, profile in catalog.profiles.items():
            get = profile.get  # its scalars and roles: no tail decoded (catalog.Item)
            if cadre_role and cadre_role not in rules.as_list(get("roles")):
                continue
            if speaker_role:
                unit = get("unit")
                speakers = {pid for pid, their_unit in holders if their_unit == unit}
                speakers.discard(person_of.get(cadre_id))
                if not speakers:
                    continue  # nobody in that role here: the rule cannot be met by anyone
                talks = [t for t in held.get(cadre_id, ()) if t[1].get("speaker") in speakers]
                since = last_day(talks, as_of)
            else:
                since = last.get(cadre_id)
            if since is None:
                since = created.get(cadre_id, as_of)
            deadline = since + every
            if (deadline - as_of).days > horizon:
                continue
            if label is None:
                label = (rule.get("label") or {}).get(ws.locale) or rule.get("id", "cadence")
            found.append(
                Obligation(cadre_id, "cadence", deadline, deadline < as_of, since, detail=label)
            )
    return found


def last_day(talks: list[Talk], as_of: dt.date) -> dt.date | None:
    """The last day one of these talks was held, on or before `as_of`."""
    last = None
    for _o, _m, day in talks:
        if day is not None and day <= as_of and (last is None or day > last):
            last = day
    return last


def _people_by_cadre(ws: Workspace) -> dict[str, str]:
    """The person who is each cadre (the first listed, if several say so)."""
    found: dict[str, str] = {}
    for person in ws.people.values():
        if person.cadre:
            found.setdefault(person.cadre, person.id)
    return found


def followup_obligations(
    catalog: Catalog, as_of: dt.date, upcoming: bool = False, records: Records | None = None
) -> list:
    found = []
    if records is None:
        days = Days()
        following_up = _following_up(catalog, days)
    else:
        following_up, days = records.following_up, records.days
    for talk_id, cadre, held, follow_ups in following_up:
        for number, item in enumerate(_listed(follow_ups), 1):
            if item.get("done"):
                continue
            due = days[str(item.get("due"))[:10]]
            if due is None or due > as_of and not upcoming:
                continue
            found.append(
                Obligation(
                    cadre,
                    "follow_up",
                    due,
                    due < as_of,
                    held,
                    talk_id,
                    str(item.get("what", "")),
                    item.get("owner"),
                    number,
                )
            )
    return found


def approval_obligations(ws: Workspace, catalog: Catalog, as_of: dt.date) -> list[Obligation]:
    wait = int(ws.config.get("approval_wait_days", 3))
    found = []
    for talk_id, plan in catalog.plans.items():
        if plan.get("status") != "submitted":
            continue  # most plans: their decisions (a list) are not decoded
        submitted = [d for d in plan.get("decisions") or [] if d.get("decision") == "submitted"]
        if not submitted:
            continue
        since = parse_date(str(submitted[-1]["at"]))
        deadline = since + dt.timedelta(days=wait)
        if deadline >= as_of:
            continue
        found.append(
            Obligation(
                str(plan.get("cadre")),
                "approval",
                deadline,
                True,
                since,
                talk=talk_id,
                detail=_("submitted {day}").format(day=since.isoformat()),
            )
        )
    return found


def due(
    ws: Workspace,
    catalog: Catalog,
    as_of: dt.date,
    created: dict[str, dt.date],
    horizon: int = DEFAULT_HORIZON_DAYS,
) -> list[Obligation]:
    records = Records.read(catalog)
    everything = [
        *occasion_obligations(ws, catalog, as_of, records),
        *cadence_obligations(ws, catalog, as_of, created, horizon, records),
        *followup_obligations(catalog, as_of, records=records),
        *approval_obligations(ws, catalog, as_of),
    ]
    gone = retired(catalog, as_of)
    owed = sorted((o for o in everything if o.cadre not in gone), key=_URGENCY)
    # overdue first, each part in the order above: as sorted by (not overdue, deadline, …)
    return [o for o in owed if o.overdue] + [o for o in owed if not o.overdue]


_URGENCY = attrgetter("deadline", "cadre", "reason")


def retired(catalog: Catalog, as_of: dt.date) -> set[str]:
    """Cadres retired on or before `as_of` (`talkbook cadre retire`): nothing of theirs is due.
    Only profiles the reader can decrypt are known to be retired."""
    gone = set()
    for cadre_id, profile in catalog.profiles.items():
        retired_on = profile.get("retired")
        if not retired_on:
            continue  # most cadres: no ValueError raised and caught for each of them
        try:
            day = parse_date(str(retired_on))
        except ValueError:
            continue
        if day <= as_of:
            gone.add(cadre_id)
    return gone
