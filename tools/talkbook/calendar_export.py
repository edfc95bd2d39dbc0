"""Approved talks not yet held, as an iCalendar (RFC 5545) calendar: `talkbook calendar`.

Contract:

- The talks are the plans the identity can decrypt (read through `catalog.load`, the one
  loader) whose status is `approved` and that have no record yet. A record counts as existing
  when the file is there, whether or not this identity may read it. Plans it cannot decrypt are
  not there at all: a speaker's calendar holds only the speaker's own talks.
- One VEVENT per talk: UID `<talk-id>@talkbook` (stable, so a calendar application updates an
  event when the file is imported again), DTSTART the plan's `at` as a *floating* local time
  (no TZID: talkbook.toml has no time zone and `at` is written as the local wall-clock time of
  the organization, so the event lands at the same hour in every calendar application), a
  DURATION of one hour, SUMMARY a neutral word in the workspace's locale and the talk id
  (`谈心谈话 T-k3x9p2`, `Talk T-k3x9p2`), CLASS CONFIDENTIAL, and DTSTAMP the clock's now in UTC.
- Events come sorted by start, then id; the same workspace at the same clock gives the same bytes.

Security invariant: without `details`, nothing confidential leaves the ciphertext — no cadre
name or id, no place, occasion, focus, method, speaker or body text; only the talk id, the
time and a neutral word. With `details`, SUMMARY adds the cadre's name when this identity can
decrypt the profile (custodians) and LOCATION carries the plan's place; never more than that.
Where the calendar is written (stdout, or an owner-only file written atomically) is the
caller's business: this module builds bytes and touches no file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from talkbook.catalog import Catalog, Item, load

DURATION = dt.timedelta(hours=1)
PRODID = "-//talkbook//talkbook calendar//EN"
SUMMARY_WORD = {"zh-CN": "谈心谈话", "en": "Talk"}


@dataclass(frozen=True)
class Scheduled:
    """One approved talk not yet held, with only what the calendar may carry."""

    talk: str
    start: dt.datetime
    name: str = ""  # the cadre's name: only with details, and only if the profile was readable
    place: str = ""  # only with details


def uid(talk_id: str) -> str:
    return f"{talk_id}@talkbook"


def summary(locale: str, talk: Scheduled) -> str:
    word = SUMMARY_WORD.get(locale, SUMMARY_WORD["en"])
    return f"{word} {talk.talk}" + (f" {talk.name}" if talk.name else "")


def scheduled(app, catalog: Catalog, details: bool = False) -> list[Scheduled]:
    """The approved plans of `catalog` with no record file beside them, soonest first."""
    root = app.workspace.root
    found = []
    for talk_id, plan in catalog.plans.items():
        if plan.meta.get("status") != "approved" or _held(root, catalog, talk_id, plan):
            continue
        meta = plan.meta
        found.append(
            Scheduled(
                talk=talk_id,
                start=dt.datetime.fromisoformat(str(meta["at"])).replace(tzinfo=None),
                name=catalog.cadre_name(str(meta.get("cadre"))) if details else "",
                place=str(meta.get("place") or "") if details else "",
            )
        )
    return sorted(found, key=lambda s: (s.start, s.talk))


def _held(root, catalog: Catalog, talk_id: str, plan: Item) -> bool:
    if talk_id in catalog.records:
        return True
    record = (root / plan.rel).with_name("record.md.age")
    return record.exists() or record.is_symlink()


def to_ical(locale: str, talks: list[Scheduled], now: dt.datetime) -> bytes:
    """The calendar as iCalendar bytes (CRLF lines, UTF-8)."""
    from icalendar import Calendar, Event

    stamp = now.astimezone(dt.UTC) if now.tzinfo else now.astimezone().astimezone(dt.UTC)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    for talk in talks:
        event = Event()
        event.add("uid", uid(talk.talk))
        event.add("dtstamp", stamp)
        event.add("dtstart", talk.start)  # naive: a floating local time
        event.add("duration", DURATION)
        event.add("summary", summary(locale, talk))
        event.add("class", "CONFIDENTIAL")
        if talk.place:
            event.add("location", talk.place)
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def export(app, details: bool = False) -> tuple[bytes, Catalog]:
    """The calendar of what this identity can read; the catalog too, for the caller's notes
    on files it had to skip. Verifies the chain of custody first, as every reader does."""
    app.ensure_trust()  # the settings (locale) read here are verified ones
    catalog = load(app)
    talks = scheduled(app, catalog, details)
    return to_ical(app.workspace.locale, talks, app.now()), catalog
