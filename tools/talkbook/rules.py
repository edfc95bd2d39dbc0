"""The practice as rules: method by personality, focus from events, the preparation brief.

Thresholds and labels come from talkbook.toml; nothing here decides a talk, it only suggests
what the plan starts from, and the person drafting it may change any of it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from talkbook.models import parse_date

METHODS = ("direct_questions", "open_conversation", "consultation")
RECENT_EVENT_DAYS = 90
# Family matters reach the speaker only when they bear on the talk.
FAMILY_OCCASIONS = {"family_emergency", "hardship", "ideological_fluctuation", "own_request"}


def as_list(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def years_between(start: str | None, end: dt.date) -> int | None:
    if not start:
        return None
    try:
        begin = parse_date(str(start))
    except ValueError:
        return None
    return end.year - begin.year - ((end.month, end.day) < (begin.month, begin.day))


def is_experienced(profile: dict[str, Any], config: dict[str, Any], today: dt.date) -> bool:
    experience = (config.get("methods") or {}).get("experience") or {}
    years = years_between(profile.get("career_start"), today)
    if years is not None and years >= int(experience.get("career_years", 25)):
        return True
    return bool(profile.get("rank")) and profile.get("rank") in experience.get("ranks", [])


def suggest_method(profile: dict[str, Any], config: dict[str, Any], today: dt.date) -> str:
    """Experienced → consultation; introverted or reticent → direct questions; else open talk."""
    if is_experienced(profile, config, today):
        return "consultation"
    if profile.get("personality") == "introverted" or profile.get("talkative") is False:
        return "direct_questions"  # reticent, not good at expressing themselves
    # extroverted, talkative or balanced: an open, free-ranging conversation
    return "open_conversation"


def recent_events(
    profile: dict[str, Any], today: dt.date, days: int = RECENT_EVENT_DAYS
) -> list[dict[str, Any]]:
    events = []
    for event in as_list(profile.get("events")):
        try:
            when = parse_date(str(event.get("date")))
        except (ValueError, AttributeError):
            continue
        if today - dt.timedelta(days=days) <= when <= today:
            events.append(event)
    return sorted(events, key=lambda e: str(e.get("date")), reverse=True)


def latest_event(profile: dict[str, Any], occasion: str) -> dict[str, Any] | None:
    matching = [e for e in as_list(profile.get("events")) if e.get("occasion") == occasion]
    return max(matching, key=lambda e: str(e.get("date")), default=None)


def suggest_focus(
    profile: dict[str, Any],
    occasion: str | None,
    deferred: list[str],
    label: Any,
    today: dt.date,
) -> list[str]:
    """Deferred topics first (a continuation picks them up), then events, then difficulties."""
    focus: list[str] = list(deferred)
    events = recent_events(profile, today)
    if occasion:
        events = sorted(events, key=lambda e: e.get("occasion") != occasion)
    for event in events:
        text = label("occasions", event.get("occasion"))
        colon = "：" if any(ord(c) >= 0x2E80 for c in text) else ": "  # CJK label, CJK colon
        focus.append(f"{text}{colon}{event['note']}" if event.get("note") else text)
    focus.extend(str(d) for d in as_list(profile.get("difficulties")))
    return list(dict.fromkeys(focus))


def brief(
    profile: dict[str, Any], occasion: str | None, deferred: list[str], label: Any, today: dt.date
) -> dict[str, Any]:
    """What the speaker needs from the profile, so the speaker never needs the profile itself."""
    birth = profile.get("birth_date")
    return {
        "name": profile.get("name"),
        "gender": profile.get("gender"),
        "age": years_between(birth, today),
        "unit": profile.get("unit"),
        "post": profile.get("post"),
        "rank": profile.get("rank"),
        "education": profile.get("education"),
        "major": profile.get("major"),
        "career_years": years_between(profile.get("career_start"), today),
        "work_history": as_list(profile.get("work_history")),
        "rewards": as_list(profile.get("rewards")),
        "punishments": as_list(profile.get("punishments")),
        "personality": profile.get("personality"),
        "talkative": profile.get("talkative"),
        "strengths": profile.get("strengths"),
        "weaknesses": profile.get("weaknesses"),
        "evaluations": profile.get("evaluations"),
        "difficulties": profile.get("difficulties"),
        "family": profile.get("family") if occasion in FAMILY_OCCASIONS else None,
        "recent_events": [
            {**e, "occasion_label": label("occasions", e.get("occasion"))}
            for e in recent_events(profile, today)
        ],
        "deferred": deferred,
    }


def deadline(event: dict[str, Any], config: dict[str, Any]) -> dt.date | None:
    rule = (config.get("occasions") or {}).get(event.get("occasion"))
    if not rule:
        return None
    return parse_date(str(event["date"])) + dt.timedelta(days=int(rule["deadline_days"]))
