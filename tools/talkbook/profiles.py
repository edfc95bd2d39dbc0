"""Cadre profiles: create one, log events on it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from talkbook.app import App, Origin
from talkbook.catalog import load
from talkbook.errors import EditAborted, InvalidDocument, NotFound, TalkbookError
from talkbook.models import ID_PATTERNS, Document, new_id, parse
from talkbook.templating import render

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
    app.ensure_trust()  # templates render only from a verified revision (or the user's own edit)
    ws = app.workspace
    return render(f"{kind}.md.j2", ws.locale, context, ws.templates_dir)


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
            raise EditAborted("the profile was left as the template; nothing was added")
        doc = parse(edited, "profile")
        if doc.meta.get("id") != meta["id"]:
            raise TalkbookError("id: keep the id the template gave")
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
        raise InvalidDocument("id: must look like C-k3x9p2 (C- and 6 lowercase letters or digits)")
    path = ws.cadre_path(cadre_id)
    if path.exists():
        raise TalkbookError(f"{cadre_id} exists already; use `talkbook edit {cadre_id}`")
    twins = _same_person(app, cadre_id, doc.meta)
    app.save("profile", path, text, f"cadre {cadre_id}: created", actor, origin)
    if twins:
        app.prompts.notice(
            f"{cadre_id} has the same name and birth date as {', '.join(twins)}"
            " (a duplicate profile?)"
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
        raise NotFound(f"unknown cadre: {cadre_id}")
    return app.read(path)


def add_event(
    app: App, cadre_id: str, occasion: str, date: dt.date | None, note: str | None
) -> dict[str, Any]:
    """`talkbook event`: logged on the profile itself, so it stays encrypted with it."""
    ws = app.workspace
    occasions = ws.config.get("occasions") or {}
    if occasion not in occasions:
        raise TalkbookError(
            f"unknown occasion {occasion!r}: choose from {', '.join(sorted(occasions))}"
        )
    actor = app.require_role("custodian")
    doc = read_profile(app, cadre_id)
    event = {"date": (date or app.today()).isoformat(), "occasion": occasion, "note": note}
    events = [*(doc.meta.get("events") or []), event]
    updated = doc.with_meta(events=events)
    app.save("profile", ws.cadre_path(cadre_id), updated.text(), f"cadre {cadre_id}: event", actor)
    return event
