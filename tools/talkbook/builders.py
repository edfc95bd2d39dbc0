"""Builders: a profile, plan or record Document made from its inputs, as the commands make it.

`cadre new`, `event`, `plan`, `submit/approve/…`, `record`, `confirm`, `addendum` and
`followup done` check who may act and what state allows it, call a builder, then validate, save
and commit. `talkbook demo`'s bulk path calls the same builders with the same inputs and writes
many documents per commit. So a document the demo writes has the shape a user's command gives:
suggestions, the brief rendered from the locale's template, the decision trail.

A builder does no I/O beyond rendering a template from a verified revision (App.ensure_trust),
compiled once and kept for the next command only as template_cache allows (HMAC'd under the
identity's key), and reads no clock: the caller passes `today` / `when`. Security invariant:
builders only shape documents in memory; nothing here writes a document, encrypts or logs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from talkbook import rules, workflow
from talkbook.models import Document

if TYPE_CHECKING:
    from talkbook.app import App


def render_body(app: App, kind: str, context: dict[str, Any]) -> str:
    """The body of a new document from the locale's template (a verified revision only), its
    compiled code kept between commands (template_cache: compiling it was most of a render)."""
    from talkbook.templating import render

    app.ensure_trust()
    ws = app.workspace
    return render(f"{kind}.md.j2", ws.locale, context, ws.templates_dir, app.compiled_templates)


# -- profiles -----------------------------------------------------------------------------------
def event_entry(occasion: str | None, date: dt.date, note: str | None) -> dict[str, Any]:
    """One logged event, as `talkbook event` appends it to the profile."""
    return {"date": date.isoformat(), "occasion": occasion, "note": note}


def with_event(doc: Document, event: dict[str, Any]) -> Document:
    return doc.with_meta(events=[*(doc.meta.get("events") or []), event])


# -- plans --------------------------------------------------------------------------------------
def plan_document(
    app: App,
    profile: dict[str, Any],
    *,
    cadre_id: str,
    talk_id: str,
    speaker: str,
    when: dt.datetime,
    today: dt.date,
    created_by: str,
    recorder: str | None = None,
    occasion: str | None = None,
    place: str | None = None,
    continues: str | None = None,
    deferred: list[str] | None = None,
    given: Document | None = None,
    method: str | None = None,
    talk_type: str | None = None,
) -> Document:
    """A new plan as `talkbook plan` drafts it: suggestions from the profile (method, focus with
    the deferred topics first, the event's date), the brief from the plan template, and what
    the user gave (`given`: a --from file) on top. Status draft, no decisions yet."""
    ws = app.workspace
    given = given or Document({})
    meta_in = given.meta
    deferred = list(deferred or [])
    event = rules.latest_event(profile, occasion) if occasion else None
    suggested_type = "continuation" if continues else ("occasion" if occasion else "routine")
    meta: dict[str, Any] = {
        "id": talk_id,
        "cadre": cadre_id,
        "speaker": speaker,
        "recorder": recorder or meta_in.get("recorder"),
        "at": when.isoformat(timespec="minutes"),
        "place": place or meta_in.get("place"),
        "talk_type": talk_type or suggested_type,
        "occasion": occasion,
        "event_date": event["date"] if event else None,
        "method": method or rules.suggest_method(profile, ws.config, today),
        "focus": rules.suggest_focus(profile, occasion, deferred, ws.label, today),
        "preparations": None,
        "status": "draft",
        "decisions": [],
        "continues": continues,
        "created_by": created_by,
    }
    meta.update({k: v for k, v in meta_in.items() if v is not None})
    meta.update(cadre=cadre_id, speaker=speaker, status="draft", decisions=[], occasion=occasion)
    meta.update({k: v for k, v in (("method", method), ("talk_type", talk_type)) if v})
    context = {
        "plan": meta,
        "brief": rules.brief(profile, occasion, deferred, ws.label, today),
        "occasion_label": ws.label("occasions", occasion) or None,
        "talk_type_label": ws.label("talk_types", meta["talk_type"]),
        "method": meta["method"],
        "continues": continues,
    }
    body = given.body if given.body.strip() else render_body(app, "plan", context)
    return Document(meta, body)


def decision_entry(by: str, decision: str, comment: str | None, when: dt.datetime) -> dict:
    """One entry of a plan's decision trail: who, when, what, why."""
    return {
        "by": by,
        "at": when.isoformat(timespec="minutes"),
        "decision": decision,
        "comment": comment,
    }


def with_decision(doc: Document, entry: dict[str, Any], at: str | None = None) -> Document:
    """The plan after a decision: the status it leads to, the entry appended, maybe a new time
    (`postpone --to`, already normalized by the caller)."""
    target = workflow.TRANSITIONS[entry["decision"]][1]
    changes: dict[str, Any] = {
        "status": target,
        "decisions": [*(doc.meta.get("decisions") or []), entry],
    }
    if at:
        changes["at"] = at
    return doc.with_meta(**changes)


# -- records ------------------------------------------------------------------------------------
def record_document(
    app: App, plan: dict[str, Any], recorder: str, given: Document | None = None
) -> Document:
    """A new record as `talkbook record` prefills it from the approved plan, with what the
    recorder gave on top (front matter and what was said)."""
    given = given or Document({})
    meta: dict[str, Any] = {
        "id": plan["id"],
        "cadre": plan["cadre"],
        "speaker": plan["speaker"],
        "recorder": recorder,
        "held_at": plan["at"],
        "place": plan.get("place"),
        "present": sorted({plan["speaker"], recorder}),
        "method": plan.get("method"),
        "occasion": plan.get("occasion"),
        "topics": list(plan.get("focus") or []),
        "follow_ups": [],
        "deferred": [],
        "confirmed_on": None,
        "addenda": [],
    }
    meta.update({k: v for k, v in given.meta.items() if v is not None})
    meta.update(id=plan["id"], cadre=plan["cadre"], speaker=plan["speaker"])
    body = (
        given.body
        if given.body.strip()
        else render_body(app, "record", {"record": meta, "plan": plan})
    )
    return Document(meta, body)


def with_confirmation(doc: Document, on: dt.date) -> Document:
    return doc.with_meta(confirmed_on=on.isoformat())


def with_addendum(doc: Document, by: str, when: dt.datetime, text: str) -> Document:
    """After confirmation a record changes only by dated, attributed addenda."""
    entry = {"by": by, "at": when.isoformat(timespec="minutes"), "text": text}
    return doc.with_meta(addenda=[*(doc.meta.get("addenda") or []), entry])


def with_followup_done(doc: Document, number: int, on: dt.date) -> Document:
    """Follow-up `number` (1-based, checked by the caller) marked done on a day."""
    items = [dict(item) for item in doc.meta.get("follow_ups") or []]
    items[number - 1].update(done=True, done_on=on.isoformat())
    return doc.with_meta(follow_ups=items)
