"""Cadre profiles: create one, log and remove events on it, retire it.

Security invariant: commit messages and errors carry ids and numbers only, never a name, an
occasion or a note; everything about a cadre stays in the encrypted profile.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from talkbook import builders
from talkbook.app import App, Origin
from talkbook.catalog import load
from talkbook.errors import EditAborted, InvalidDocument, NotFound, TalkbookError, WorkflowError
from talkbook.i18n import _
from talkbook.models import ID_PATTERNS, Document, new_id, parse
from talkbook.names import resolve_occasion

# The order fields appear in a new profile: the design's minimum, then what cadence rules use.
PROFILE_FIELDS: dict[str, Any] = {
    "id": None,
    "name": "",
    "gender": None,
    "birth_date": None,
    "unit": None,
    "post": None,
    "rank": None,
    "roles": [],
    "education": None,
    "major": None,
    "career_start": None,
    "work_history": [],
    "rewards": [],
    "punishments": [],
    "personality": None,
    "talkative": None,
    "strengths": None,
    "weaknesses": None,
    "evaluations": None,
    "difficulties": None,
    "family": None,
    "private": None,
    "events": [],
}


def render_body(app: App, kind: str, context: dict[str, Any]) -> str:
    """The locale's template for a new document (builders.render_body: verified only)."""
    return builders.render_body(app, kind, context)


def with_field(text: str, key: str, value: str) -> str:
    """Add `key: value` as the front matter's last line: the user's lines keep their numbers,
    so findings point at the line of the file they wrote."""
    lines = text.removeprefix("\ufeff").split("\n")
    closing = next(i for i in range(1, len(lines)) if lines[i].rstrip() == "---")
    return "\n".join([*lines[:closing], f"{key}: {value}", *lines[closing:]])


def new_cadre(app: App, text: str | None, source: str | None = None) -> str:
    """`talkbook cadre new [--from]`: returns the new id. Editor when text is None."""
    ws = app.workspace
    actor = app.require_role("custodian")
    taken = set(ws.cadre_ids())
    if text is None:
        meta = {**PROFILE_FIELDS, "id": new_id("C", taken)}
        initial = Document(meta, render_body(app, "profile", {"cadre": meta})).text()
        path = ws.cadre_path(meta["id"])
        edited = app.edit_text(initial, "profile", path)
        if edited is None:
            raise EditAborted(_("the profile was left as the template; nothing was added"))
        doc = parse(edited, "profile")
        if doc.meta.get("id") != meta["id"]:
            raise TalkbookError(_("id: keep the id the template gave"))
        text = edited
        origin = None
    else:
        origin = Origin(source or "--from")  # what is saved is the user's text, lines kept
        doc = parse(text, origin.name)
        if not doc.meta.get("id"):
            text = with_field(text, "id", new_id("C", taken))
        if not doc.body.strip():
            text = text.rstrip("\n") + "\n\n" + render_body(app, "profile", {"cadre": doc.meta})
        doc = parse(text, origin.name)
    cadre_id = str(doc.meta["id"])
    if not ID_PATTERNS["profile"].match(cadre_id):  # it becomes a path: never a name or "../"
        raise InvalidDocument(
            _("id: must look like C-k3x9p2 (C- and 6 lowercase letters or digits)")
        )
    path = ws.cadre_path(cadre_id)
    if path.exists():
        raise TalkbookError(
            _("{cadre} exists already; use `talkbook edit {cadre}`").format(cadre=cadre_id)
        )
    twins = _same_person(app, cadre_id, doc.meta)
    app.save("profile", path, text, f"cadre {cadre_id}: created", actor, origin)
    if twins:
        app.prompts.notice(
            _("{cadre} has the same name and birth date as {others} (a duplicate profile?)").format(
                cadre=cadre_id, others=", ".join(twins)
            )
        )
    return cadre_id


def _same_person(app: App, cadre_id: str, meta: dict[str, Any]) -> list[str]:
    """Other profiles with this name and birth date: likely the same person added twice."""
    name, born = meta.get("name"), meta.get("birth_date")
    if not name or not born:
        return []
    key = (str(name).strip(), str(born))
    others = load(app, [p for p in app.workspace.encrypted_files() if p.parent.name == "cadres"])
    return sorted(
        other_id
        for other_id, item in others.profiles.items()
        if other_id != cadre_id
        and (str(item.meta.get("name") or "").strip(), str(item.meta.get("birth_date"))) == key
    )


def read_profile(app: App, cadre_id: str) -> Document:
    path = app.workspace.cadre_path(cadre_id)
    if not path.is_file():
        raise NotFound(_("unknown cadre: {cadre}").format(cadre=cadre_id))
    return app.read(path)


def retired_on(profile: dict[str, Any]) -> dt.date | None:
    """The day a cadre retired (or leaves), or None; a malformed date reads as none (validate
    reports it through the schema)."""
    value = profile.get("retired")
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def refuse_if_retired(cadre_id: str, profile: dict[str, Any], today: dt.date, what: str) -> None:
    """A retired cadre gets nothing new (`what`: no new plans, no new events)."""
    day = retired_on(profile)
    if day is not None and day <= today:
        raise WorkflowError(
            _("{cadre}: retired on {day}; {what}").format(
                cadre=cadre_id, day=day.isoformat(), what=what
            )
        )


def add_event(
    app: App, cadre_id: str, occasion: str, date: dt.date | None, note: str | None
) -> dict[str, Any]:
    """`talkbook event`: logged on the profile itself, so it stays encrypted with it. The
    occasion may be its code or its label in either language."""
    ws = app.workspace
    code = resolve_occasion(ws, occasion)
    actor = app.require_role("custodian")
    doc = read_profile(app, cadre_id)
    refuse_if_retired(cadre_id, doc.meta, app.today(), _("no new events"))
    event = builders.event_entry(code, date or app.today(), note)
    updated = builders.with_event(doc, event)
    app.save("profile", ws.cadre_path(cadre_id), updated.text(), f"cadre {cadre_id}: event", actor)
    return event


def numbered_events(profile: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The events as `show` lists them, by date (ties in file order), numbered from 1: the
    number `event CADRE --remove N` takes. Each with its index in the file."""
    events = [e for e in profile.get("events") or [] if isinstance(e, dict)]
    ordered = sorted(enumerate(events), key=lambda pair: str(pair[1].get("date")))
    return [(index, event) for index, event in ordered]


def remove_event(app: App, cadre_id: str, number: int) -> dict[str, Any]:
    """`talkbook event CADRE --remove N`: the N-th event as `show` numbers it; one commit."""
    ws = app.workspace
    actor = app.require_role("custodian")
    doc = read_profile(app, cadre_id)
    events = numbered_events(doc.meta)
    if not 1 <= number <= len(events):
        raise NotFound(
            _("{cadre} has no event {number} (it has {count})").format(
                cadre=cadre_id, number=number, count=len(events)
            )
        )
    index, removed = events[number - 1]
    kept = [e for i, e in enumerate(doc.meta.get("events") or []) if i != index]
    updated = doc.with_meta(events=kept)
    message = f"cadre {cadre_id}: event removed"
    app.save("profile", ws.cadre_path(cadre_id), updated.text(), message, actor)
    return removed


def retire_cadre(app: App, cadre_id: str, day: dt.date | None = None) -> list[str]:
    """`talkbook cadre retire`: `retired: DATE` on the profile, which stays (encrypted) with its
    talks; from that day on the cadre is out of `due` and gets no new plans or events. Returns
    the cadre's open plans, left as they are for the user to cancel or hold."""
    ws = app.workspace
    actor = app.require_role("custodian")
    doc = read_profile(app, cadre_id)
    if (already := retired_on(doc.meta)) is not None:
        raise WorkflowError(
            _("{cadre}: retired on {day} already").format(cadre=cadre_id, day=already.isoformat())
        )
    when = (day or app.today()).isoformat()
    updated = doc.with_meta(retired=when)
    app.save(
        "profile", ws.cadre_path(cadre_id), updated.text(), f"cadre {cadre_id}: retired", actor
    )
    return _open_plans(app, cadre_id)


def _open_plans(app: App, cadre_id: str) -> list[str]:
    talks = [p for p in app.workspace.encrypted_files() if p.name == "plan.md.age"]
    catalog = load(app, talks)
    return sorted(
        talk_id
        for talk_id, plan in catalog.plans.items()
        if plan.meta.get("cadre") == cadre_id
        and plan.meta.get("status") in ("draft", "submitted", "approved", "postponed")
        and not (app.workspace.talk_dir(talk_id) / "record.md.age").exists()
    )
