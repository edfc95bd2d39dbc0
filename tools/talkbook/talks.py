"""The life of a talk: plan → submitted → approved (or rejected) → held (record), or
postponed / cancelled. Each step is one commit authored by whoever took it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkbook import builders, rules, workflow
from talkbook.app import App, Origin, Pending
from talkbook.catalog import Catalog, begin, load_into
from talkbook.errors import (
    EditAborted,
    NotFound,
    PermissionDenied,
    TalkbookError,
    WorkflowError,
)
from talkbook.i18n import _, label, ngettext
from talkbook.models import Document, new_id, parse, parse_datetime
from talkbook.names import resolve_method, resolve_occasion, resolve_person, resolve_talk_type
from talkbook.profiles import read_profile, refuse_if_retired
from talkbook.workspace import Person, id_of_rel


def plan_path(app: App, talk_id: str) -> Path:
    return app.workspace.talk_dir(talk_id) / "plan.md.age"


def record_path(app: App, talk_id: str) -> Path:
    return app.workspace.talk_dir(talk_id) / "record.md.age"


def read_plan(app: App, talk_id: str) -> Document:
    path = plan_path(app, talk_id)
    if not path.is_file():
        raise NotFound(_("unknown talk: {talk}").format(talk=talk_id))
    return app.read(path)


def _profile_meta(app: App, catalog: Catalog, cadre_id: str) -> dict[str, Any]:
    """The cadre's front matter: the catalog's (decrypted and past the schema when its bytes
    last changed), else read here, which says why it cannot be (unknown, not yours, unfit)."""
    item = catalog.profiles.get(cadre_id)
    return item.meta if item is not None else read_profile(app, cadre_id).meta


def _deferred_from(app: App, cadre_id: str, talk_id: str | None, catalog: Catalog) -> list[str]:
    """Topics put off to a later talk: those of the talk continued, or else those of this
    cadre's held talks that no plan has continued yet (so nothing deferred is forgotten)."""
    if talk_id:
        path = record_path(app, talk_id)
        if not path.is_file():
            raise WorkflowError(
                _("{talk} has no record yet; only a held talk can be continued").format(
                    talk=talk_id
                )
            )
        return [str(t) for t in rules.as_list(app.read(path).meta.get("deferred"))]
    # one pass over the records (grouping every cadre's would cost more), and the plans are
    # looked through only when a held talk of this cadre put something off
    held = [r for r in catalog.records.values() if r.get("cadre") == cadre_id]
    deferring = [r for r in held if rules.as_list(r.get("deferred"))]
    if not deferring:
        return []
    continued = {plan.get("continues") for plan in catalog.plans.values()}
    open_topics: list[str] = []
    for record in sorted(deferring, key=lambda r: str(r.get("held_at"))):
        if record.get("id") not in continued:
            open_topics += [str(t) for t in rules.as_list(record.get("deferred"))]
    return list(dict.fromkeys(open_topics))


def draft_plan(
    app: App,
    cadre_id: str,
    *,
    speaker: str | None,
    at: str | None,
    recorder: str | None = None,
    occasion: str | None = None,
    place: str | None = None,
    continues: str | None = None,
    text: str | None = None,
    use_editor: bool = False,
    source: str = "--from",
    method: str | None = None,
    talk_type: str | None = None,
) -> str:
    """`talkbook plan`: suggestions from the profile, the user's file or editor on top.

    Occasion, talk type and method may be given by code or by label (names.py)."""
    actor = app.require_role("custodian")  # the brief comes from the profile: custodians only
    begin(app)  # the tree is checked for changes from now on: parsing what was given meets it
    asked = _Asked(
        speaker, at, recorder, occasion, place, continues, method, talk_type, text, source
    )
    given, fields = _given(app, asked)  # refused before the catalog is looked at, as ever
    # drafted while the tree is checked for changes (load_into): rendering the brief meets
    # that wait; what the catalog makes it refuse is refused once the catalog proves current
    draft = load_into(
        app,
        functools.partial(_drafted, app, cadre_id, actor.id, given, fields),
        select=functools.partial(_read_for_plan, cadre_id),
    )
    talk_id = draft.talk_id
    path = app.workspace.talk_dir(talk_id, draft.year) / "plan.md.age"
    if path.exists():
        raise TalkbookError(
            _("{talk} exists already; use `talkbook edit {talk}`").format(talk=talk_id)
        )
    final = draft.document.text()
    origin = Origin(source, text) if text else None
    if use_editor:
        edited = app.edit_text(final, "plan", path)
        if edited is None:
            edited = final  # accepted as suggested
        final, origin = edited, None
    app.save("plan", path, final, f"plan {talk_id}: drafted", actor, origin)
    for warning in draft.warnings:
        app.prompts.notice(warning)
    return talk_id


@dataclass(frozen=True)
class _Asked:
    """What `talkbook plan` was given: its flags as typed, and the --from file's text."""

    speaker: str | None
    at: str | None
    recorder: str | None
    occasion: str | None
    place: str | None
    continues: str | None
    method: str | None
    talk_type: str | None
    text: str | None
    source: str


@dataclass(frozen=True)
class _Draft:
    """A plan as drafted from the catalog, its year, and what to say once it is saved."""

    talk_id: str
    year: int
    document: Document
    warnings: list[str]


def _drafted(
    app: App,
    cadre_id: str,
    created_by: str,
    given: Document,
    fields: dict[str, Any],
    catalog: Catalog,
) -> _Draft:
    """The plan the catalog suggests, with what the user gave on top (`given`, and `fields` as
    _given resolved them): it only reads, so it may run twice (catalog.load_into); what it
    raises is raised once the catalog proves current. The warnings are the catalog's, said
    only after the plan is saved."""
    profile = _profile_meta(app, catalog, cadre_id)
    today = app.today()
    refuse_if_retired(cadre_id, profile, today, _("no new plans"))
    occasion, continues, when = fields["occasion"], fields["continues"], fields["when"]
    deferred = _deferred_from(app, cadre_id, continues, catalog)
    event = rules.latest_event(profile, occasion) if occasion else None
    talk_id = str(given.meta.get("id") or _new_talk_id(app))
    document = builders.plan_document(
        app, profile, cadre_id=cadre_id, talk_id=talk_id, today=today, deferred=deferred,
        given=given, created_by=created_by, **fields,
    )  # fmt: skip
    warnings = _plan_warnings(cadre_id, talk_id, occasion, event, when, catalog)
    # save's imports, validator and git trees made ready here, after the draft: while the
    # index's child may still sweep (it only imports, compiles and reads; done once)
    app.prepare_save("plan", app.workspace.root / "talks" / str(when.year))
    return _Draft(talk_id, when.year, document, warnings)


def _read_for_plan(cadre_id: str, kind: str, rel: str, head: dict[str, Any]) -> bool:
    """What _drafted reads of the catalog (a few of 21,000 documents): the cadre's profile,
    plans and records, and every plan that continues a talk (_deferred_from)."""
    if kind == "profile":
        return id_of_rel(rel) == cadre_id
    return head.get("cadre") == cadre_id or (kind == "plan" and bool(head.get("continues")))


def _given(app: App, asked: _Asked) -> tuple[Document, dict[str, Any]]:
    """The --from file parsed, and the fields builders.plan_document takes from the flags (or
    else that file): names and labels resolved (names.py); refused without a speaker or a time,
    with someone who left, or with a time that is none."""
    ws = app.workspace
    given = parse(asked.text, asked.source) if asked.text else Document({})
    meta_in = given.meta
    speaker = resolve_person(ws, asked.speaker or meta_in.get("speaker"))
    recorder = resolve_person(ws, asked.recorder)
    at = asked.at or meta_in.get("at")
    occasion = resolve_occasion(ws, asked.occasion or meta_in.get("occasion"))
    method, talk_type = resolve_method(asked.method), resolve_talk_type(ws, asked.talk_type)
    continues = asked.continues or meta_in.get("continues")
    if not speaker or not at:
        raise TalkbookError(_("a plan needs --speaker and --at (or both in the --from file)"))
    for role, pid in (("speaker", speaker), ("recorder", recorder or meta_in.get("recorder"))):
        person = ws.people.get(str(pid)) if pid else None
        if person is not None and person.left:
            raise PermissionDenied(
                _("--{role} {person} left on {day}; name someone current").format(
                    role=role, person=pid, day=person.left
                )
            )
    try:
        when = parse_datetime(str(at))
    except ValueError:
        raise TalkbookError(
            _("--at {value} is not a date and time (YYYY-MM-DDTHH:MM)").format(value=repr(at))
        ) from None
    fields = {
        "speaker": speaker, "when": when, "recorder": recorder, "occasion": occasion,
        "place": asked.place, "continues": continues, "method": method, "talk_type": talk_type,
    }  # fmt: skip
    return given, fields


def _new_talk_id(app: App) -> str:
    """A random talk id no year's folder has yet."""
    while True:
        candidate = new_id("T")
        if not app.workspace.talk_taken(candidate):
            return candidate


OPEN_STATUSES = ("draft", "submitted", "approved")


def _plan_warnings(
    cadre_id: str,
    talk_id: str,
    occasion: str | None,
    event: dict[str, Any] | None,
    when: dt.datetime,
    catalog: Catalog,
) -> list[str]:
    """What may be a slip, said after the plan is saved: ids only, never a name or a note."""
    warnings: list[str] = []
    if occasion and event is None:
        warnings.append(
            _("cadre {cadre} has no logged event for this occasion").format(cadre=cadre_id)
        )
    elif event is not None:
        try:
            event_day = dt.date.fromisoformat(str(event.get("date"))[:10])
        except ValueError:
            event_day = None
        if event_day is not None and when.date() < event_day:
            warnings.append(
                _(
                    "plan {talk}: --at is earlier than cadre {cadre}'s logged event"
                    " for this occasion"
                ).format(talk=talk_id, cadre=cadre_id)
            )
    others = sorted(
        tid
        for tid, plan in catalog.plans.items()
        if tid != talk_id
        and plan.get("cadre") == cadre_id
        and plan.get("status") in OPEN_STATUSES
        and tid not in catalog.records
    )
    if others:
        already = ngettext(
            "{cadre} already has an open plan {talks}",
            "{cadre} already has an open plans {talks}",
            len(others),
        )
        warnings.append(already.format(cadre=cadre_id, talks=", ".join(others)))
    return warnings


def _authorize(app: App, decision: str, plan: dict[str, Any]) -> Person:
    actor = app.actor()
    if problem := workflow.may_decide(actor, decision, plan):
        raise PermissionDenied(problem)
    return actor


def decide(
    app: App, talk_id: str, decision: str, comment: str | None = None, at: str | None = None
) -> str:
    """submit / approve / reject / postpone / cancel: returns the new status."""
    sources, target = workflow.TRANSITIONS[decision]
    app.ensure_trust()  # a broken chain is the first thing said, before any read
    doc = read_plan(app, talk_id)
    status = doc.meta.get("status")
    if record_path(app, talk_id).exists():
        raise WorkflowError(
            _("{talk} has been held; its plan no longer changes").format(talk=talk_id)
        )
    if status not in sources:
        raise WorkflowError(
            _("{talk} is {status}; it cannot be {decision}").format(
                talk=talk_id,
                status=label("status", str(status)),
                decision=label("status", decision),
            )
        )
    if decision == "rejected" and not (comment or "").strip():
        raise TalkbookError(_("a rejection needs --comment saying why"))
    actor = _authorize(app, decision, doc.meta)
    entry = builders.decision_entry(actor.id, decision, comment, app.now())
    if at:
        try:
            at = parse_datetime(at).isoformat(timespec="minutes")
        except ValueError:
            raise TalkbookError(
                _("--to {value} is not a date and time (YYYY-MM-DDTHH:MM)").format(value=repr(at))
            ) from None
    updated = builders.with_decision(doc, entry, at)
    app.save("plan", plan_path(app, talk_id), updated.text(), f"plan {talk_id}: {decision}", actor)
    if status == "approved" and decision == "postponed":
        app.prompts.notice(
            _("{talk}: postponed; its approval was voided, submit it again").format(talk=talk_id)
        )
    return target


def write_record(
    app: App,
    talk_id: str,
    text: str | None = None,
    use_editor: bool = False,
    source: str = "--from",
) -> str:
    """`talkbook record T`: needs an approved plan; prefilled from it. What was said comes
    from `text` or the editor: the bare template is never recorded."""
    app.ensure_trust()
    plan_doc = read_plan(app, talk_id)
    plan = plan_doc.meta
    path = record_path(app, talk_id)
    if path.exists():
        raise WorkflowError(
            _("{talk} has a record already; use `talkbook edit {talk}/record`").format(talk=talk_id)
        )
    if plan.get("status") != "approved":
        raise WorkflowError(
            _("{talk} is {status}; a record needs an approved plan").format(
                talk=talk_id, status=label("status", str(plan.get("status")))
            )
        )
    _verified_approval(app, talk_id, plan_doc)
    actor = app.actor()
    if problem := workflow.may_record(actor, plan):
        raise PermissionDenied(problem)
    if text is None and not use_editor:  # what was said comes from the user, never the template
        raise TalkbookError(_("no terminal for the editor: pass --from FILE or --from -"))
    if text is not None and not text.strip():
        raise TalkbookError(_("{source}: empty; nothing was recorded").format(source=source))
    given = parse(text, source) if text else Document({})
    document = builders.record_document(app, plan, actor.id, given)
    meta, body = document.meta, document.body
    held = parse_datetime(str(meta["held_at"]))
    if held > app.now() + dt.timedelta(minutes=5):
        raise WorkflowError(
            _("{talk}: held_at {held_at} is in the future; record a talk once held").format(
                talk=talk_id, held_at=meta["held_at"]
            )
        )
    final = Document(meta, body).text()
    origin = Origin(source, text) if text else None
    if use_editor:
        edited = app.edit_text(final, "record", path)
        if edited is None:
            raise EditAborted(_("the record was left as the template; nothing was recorded"))
        final, origin = edited, None
    plan_now_held = workflow.held(plan_doc, actor, app.now()).text()
    app.save_together(
        [
            Pending("record", path, final, origin),
            Pending("plan", plan_path(app, talk_id), plan_now_held),
        ],
        f"record {talk_id}: written",
        actor,
    )
    app.prompts.notice(_("{talk}: recorded; its plan is now held").format(talk=talk_id))
    return talk_id


def _verified_approval(app: App, talk_id: str, plan: Document) -> None:
    """The approval is the plan's last decision, it arrived in a commit its approver (not the
    plan's speaker) signed, and the plan is still what was approved: a decision typed in by
    anyone else, or a plan changed after its approval, is not one to hold a talk on."""
    from talkbook.history import introduced_by

    decisions = [d for d in plan.meta.get("decisions") or [] if isinstance(d, dict)]
    approval = decisions[-1] if decisions and decisions[-1].get("decision") == "approved" else {}
    found = introduced_by(app, app.rel(plan_path(app, talk_id)), "decisions", approval)
    signer, approved = found if found else (None, None)
    person = app.workspace.people.get(signer) if signer else None
    if (
        not approval
        or person is None
        or signer != approval.get("by")
        or signer == plan.meta.get("speaker")
        or not person.has_role("approver")
        or approved is None
        or workflow.without_decisions(approved) != workflow.without_decisions(plan)
    ):
        raise WorkflowError(
            _(
                "{talk}: its approval is not verified (no commit signed by its approver "
                "brought it, or the plan changed since); nothing was recorded"
            ).format(talk=talk_id)
        )


def confirm_record(app: App, talk_id: str, on: dt.date | None = None) -> None:
    path = record_path(app, talk_id)
    if not path.is_file():
        raise NotFound(_("{talk} has no record").format(talk=talk_id))
    doc = app.read(path)
    if doc.meta.get("confirmed_on"):
        raise WorkflowError(
            _("{talk}: the record was confirmed on {day}").format(
                talk=talk_id, day=doc.meta["confirmed_on"]
            )
        )
    actor = app.actor()
    updated = builders.with_confirmation(doc, on or app.today())
    app.save("record", path, updated.text(), f"record {talk_id}: confirmed", actor)


def add_addendum(app: App, talk_id: str, text: str) -> None:
    """After confirmation the record changes only by dated, attributed addenda."""
    path = record_path(app, talk_id)
    if not path.is_file():
        raise NotFound(_("{talk} has no record").format(talk=talk_id))
    if not text.strip():
        raise TalkbookError(_("an addendum needs text"))
    doc = app.read(path)
    actor = app.actor()
    updated = builders.with_addendum(doc, actor.id, app.now(), text)
    app.save("record", path, updated.text(), f"record {talk_id}: addendum", actor)


def close_followup(app: App, talk_id: str, number: int, on: dt.date | None = None) -> dict:
    """Mark follow-up `number` (1-based) done: progress, allowed even on a confirmed record."""
    path = record_path(app, talk_id)
    if not path.is_file():
        raise NotFound(_("{talk} has no record").format(talk=talk_id))
    doc = app.read(path)
    items = [dict(item) for item in doc.meta.get("follow_ups") or []]
    if not 1 <= number <= len(items):
        raise NotFound(
            _("{talk} has no follow-up {number} (it has {count})").format(
                talk=talk_id, number=number, count=len(items)
            )
        )
    if items[number - 1].get("done"):
        raise WorkflowError(
            _("{talk}: follow-up {number} is done already").format(talk=talk_id, number=number)
        )
    actor = app.actor()
    updated = builders.with_followup_done(doc, number, on or app.today())
    message = f"record {talk_id}: follow-up {number} done"
    app.save("record", path, updated.text(), message, actor)
    return dict(updated.meta["follow_ups"][number - 1])
