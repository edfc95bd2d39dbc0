"""What is owed: occasion talks, cadence gaps, follow-ups, approvals waiting.

Each obligation is a value; `due` lists those not met, most urgent first. A talk meets an occasion
when its record names that cadre and occasion and it was held on or after the event's date.
A retired cadre (profile field `retired`, from that day on) owes and is owed nothing here.
"""

from __future__ import annotations

import datetime as dt
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


def _held_on(record: Item) -> dt.date | None:
    try:
        return parse_date(str(record.meta.get("held_at")))
    except ValueError:
        return None


def occasion_obligations(ws: Workspace, catalog: Catalog, as_of: dt.date) -> list[Obligation]:
    found = []
    for cadre_id, profile in catalog.profiles.items():
        for event in rules.as_list(profile.meta.get("events")):
            deadline = rules.deadline(event, ws.config)
            if deadline is None:
                continue  # an occasion the workspace dropped
            since = parse_date(str(event["date"]))
            if since > as_of:
                continue
            occasion = event["occasion"]
            held = [
                _held_on(r)
                for r in catalog.held_talks(cadre_id)
                if r.meta.get("occasion") == occasion
            ]
            met = any(d is not None and since <= d <= as_of for d in held)
            if met:
                continue
            planned = [
                talk_id
                for talk_id, plan in catalog.plans_of(cadre_id).items()
                if plan.meta.get("occasion") == occasion
                and plan.meta.get("event_date") in (None, event["date"])
                and plan.meta.get("status") != "cancelled"
                and talk_id not in catalog.records
            ]
            found.append(
                Obligation(
                    cadre_id,
                    occasion,
                    deadline,
                    deadline < as_of,
                    since=since,
                    talk=planned[-1] if planned else None,
                    detail=ws.label("occasions", occasion),
                )
            )
    return found


def _role_holders(ws: Workspace, catalog: Catalog, role: str) -> list[tuple[str, Any]]:
    """(person id, unit) of each person whose own cadre profile has this role (a unit head,
    say): asked once per rule, not once per cadre (talkbook.toml's people are parsed anew on
    every `ws.people`)."""
    holders = []
    for person in ws.people.values():
        profile = catalog.profiles.get(person.cadre or "")
        if profile and role in rules.as_list(profile.meta.get("roles")):
            holders.append((person.id, profile.meta.get("unit")))
    return holders


def cadence_obligations(
    ws: Workspace,
    catalog: Catalog,
    as_of: dt.date,
    created: dict[str, dt.date],
    horizon: int = DEFAULT_HORIZON_DAYS,
) -> list[Obligation]:
    found = []
    person_of = _people_by_cadre(ws)
    for rule in ws.config.get("cadence") or []:
        every = int(rule["every_days"])
        holders = (
            _role_holders(ws, catalog, rule["speaker_role"]) if rule.get("speaker_role") else []
        )
        for cadre_id, profile in catalog.profiles.items():
            meta = profile.meta
            if rule.get("cadre_role") and rule["cadre_role"] not in rules.as_list(
                meta.get("roles")
            ):
                continue
            talks = catalog.held_talks(cadre_id)
            if rule.get("speaker_role"):
                unit = meta.get("unit")
                speakers = {pid for pid, their_unit in holders if their_unit == unit}
                speakers.discard(person_of.get(cadre_id))
                if not speakers:
                    continue  # nobody in that role here: the rule cannot be met by anyone
                talks = [t for t in talks if t.meta.get("speaker") in speakers]
            held = [d for d in map(_held_on, talks) if d and d <= as_of]
            since = max(held) if held else created.get(cadre_id, as_of)
            deadline = since + dt.timedelta(days=every)
            if (deadline - as_of).days > horizon:
                continue
            label = (rule.get("label") or {}).get(ws.locale) or rule.get("id", "cadence")
            found.append(
                Obligation(cadre_id, "cadence", deadline, deadline < as_of, since, detail=label)
            )
    return found


def _people_by_cadre(ws: Workspace) -> dict[str, str]:
    """The person who is each cadre (the first listed, if several say so)."""
    found: dict[str, str] = {}
    for person in ws.people.values():
        if person.cadre:
            found.setdefault(person.cadre, person.id)
    return found


def followup_obligations(catalog: Catalog, as_of: dt.date, upcoming: bool = False) -> list:
    found = []
    for talk_id, record in catalog.records.items():
        for number, item in enumerate(rules.as_list(record.meta.get("follow_ups")), 1):
            if item.get("done"):
                continue
            try:
                due = parse_date(str(item.get("due")))
            except ValueError:
                continue
            if due > as_of and not upcoming:
                continue
            found.append(
                Obligation(
                    str(record.meta.get("cadre")),
                    "follow_up",
                    due,
                    due < as_of,
                    since=_held_on(record),
                    talk=talk_id,
                    detail=str(item.get("what", "")),
                    owner=item.get("owner"),
                    number=number,
                )
            )
    return found


def approval_obligations(ws: Workspace, catalog: Catalog, as_of: dt.date) -> list[Obligation]:
    wait = int(ws.config.get("approval_wait_days", 3))
    found = []
    for talk_id, plan in catalog.plans.items():
        if plan.meta.get("status") != "submitted":
            continue
        submitted = [
            d for d in plan.meta.get("decisions") or [] if d.get("decision") == "submitted"
        ]
        if not submitted:
            continue
        since = parse_date(str(submitted[-1]["at"]))
        deadline = since + dt.timedelta(days=wait)
        if deadline >= as_of:
            continue
        found.append(
            Obligation(
                str(plan.meta.get("cadre")),
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
    everything = [
        *occasion_obligations(ws, catalog, as_of),
        *cadence_obligations(ws, catalog, as_of, created, horizon),
        *followup_obligations(catalog, as_of),
        *approval_obligations(ws, catalog, as_of),
    ]
    gone = retired(catalog, as_of)
    owed = [o for o in everything if o.cadre not in gone]
    return sorted(owed, key=lambda o: (not o.overdue, o.deadline, o.cadre, o.reason))


def retired(catalog: Catalog, as_of: dt.date) -> set[str]:
    """Cadres retired on or before `as_of` (`talkbook cadre retire`): nothing of theirs is due.
    Only profiles the reader can decrypt are known to be retired."""
    gone = set()
    for cadre_id, profile in catalog.profiles.items():
        retired_on = profile.meta.get("retired")
        if not retired_on:
            continue  # most cadres: no ValueError raised and caught for each of them
        try:
            day = parse_date(str(retired_on))
        except ValueError:
            continue
        if day <= as_of:
            gone.add(cadre_id)
    return gone
