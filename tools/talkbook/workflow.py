"""The workflow's pure rules: which step may follow which, who may take it, which fields each
command owns, and what an edit may change. No I/O: talks.py and app.py apply these rules.

A plan ends `held` when its record is written (`record` sets it in the same commit, with a
`held` entry in its decisions); from then on only the record changes, by addenda and follow-up
progress. Plans of workspaces made before `held` existed stay `approved` under their record:
a record in the talk's folder counts as held wherever status is shown or checked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from talkbook.i18n import _, label
from talkbook.models import Document
from talkbook.workspace import Person

HELD = "held"  # the plan's status once its record is written: terminal

# decision → (states it may leave from, state it leads to)
TRANSITIONS: dict[str, tuple[set[str], str]] = {
    "submitted": ({"draft", "rejected", "postponed"}, "submitted"),
    "approved": ({"submitted"}, "approved"),
    "rejected": ({"submitted"}, "rejected"),
    "postponed": ({"draft", "submitted", "approved"}, "postponed"),
    "cancelled": ({"draft", "submitted", "approved", "rejected", "postponed"}, "cancelled"),
}
# who may take each step: a role, or "speaker" for the plan's own speaker (see may_decide)
DECIDERS = {
    "submitted": ("custodian", "speaker"),
    "approved": ("approver",),
    "rejected": ("approver",),
    "postponed": ("custodian", "approver", "speaker"),
    "cancelled": ("custodian", "approver"),
}

# Fields an edit may not touch: the workflow's commands own them, attributed to their actor.
WORKFLOW_FIELDS = {
    "plan": {
        "status": "submit, approve, reject, postpone, cancel",
        "decisions": "submit, approve, reject, postpone, cancel",
    },
    "record": {"confirmed_on": "confirm", "addenda": "addendum"},
}


def without_decisions(plan: Document) -> tuple[dict[str, Any], str]:
    """What an approver approves: the plan without its status and decision trail."""
    meta = {k: v for k, v in plan.meta.items() if k not in ("status", "decisions")}
    return meta, plan.body.strip()


def may_decide(actor: Person, decision: str, plan: dict[str, Any]) -> str | None:
    """None when `actor` may take this step on this plan; else why not."""
    allowed = DECIDERS[decision]
    is_speaker = actor.id == plan.get("speaker")
    if actor.left:
        return _("{person} left on {day}").format(person=actor.id, day=actor.left)
    # "speaker" is this plan's own speaker, never anyone who speaks in other talks
    by_role = any(actor.has_role(r) for r in allowed if r != "speaker")
    if not (by_role or ("speaker" in allowed and is_speaker)):
        return _("{person} may not mark this plan {decision}").format(
            person=actor.id, decision=label("status", decision)
        )
    if decision in ("approved", "rejected") and is_speaker:
        return _("{person} is this plan's speaker and cannot approve or reject it").format(
            person=actor.id
        )
    return None


def may_record(actor: Person, plan: dict[str, Any]) -> str | None:
    """None when `actor` may write the record of this plan's talk: its speaker, or the recorder
    the plan names (`plan --recorder`); else why not."""
    if actor.left:
        return _("{person} left on {day}").format(person=actor.id, day=actor.left)
    if actor.id == plan.get("speaker"):
        return None
    if actor.id == plan.get("recorder") and actor.has_role("recorder"):
        return None
    return _("{person} is neither this talk's speaker nor the recorder its plan names").format(
        person=actor.id
    )


def reopen_after_edit(
    before: Document, after: Document, actor: Person, now: dt.datetime
) -> Document | None:
    """An edited plan that was submitted or approved goes back to draft: what the approver saw
    is no longer what would be held. None when the plan was in no such state."""
    status = before.meta.get("status")
    if status not in ("submitted", "approved"):
        return None
    entry = {
        "by": actor.id,
        "at": now.isoformat(timespec="minutes"),
        "decision": "reopened",
        "comment": f"edited while {status}",
    }
    decisions = [*_entries(after.meta.get("decisions")), entry]
    return after.with_meta(status="draft", decisions=decisions)


def reopen_notice(talk_id: str, status: Any) -> str:
    """What the user is told when an edit sent a plan back to draft (never silently)."""
    if status == "approved":
        text = _("{talk}: back to draft; its approval was voided, submit it again")
    else:
        text = _("{talk}: back to draft; its submission was withdrawn, submit it again")
    return text.format(talk=talk_id)


def held(plan: Document, actor: Person, now: dt.datetime) -> Document:
    """The plan once its talk is recorded: status held, and who recorded it, when."""
    entry = {
        "by": actor.id,
        "at": now.isoformat(timespec="minutes"),
        "decision": HELD,
        "comment": None,
    }
    return plan.with_meta(status=HELD, decisions=[*_entries(plan.meta.get("decisions")), entry])


def _entries(value: Any) -> list[Any]:
    """A list field as a list, whatever an edit put there (the schema check that follows says
    what is wrong): these rules run on documents not validated yet and never crash on a type."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _agreed(follow_ups: Any) -> list[Any]:
    """What the talk agreed: the follow-ups without their progress (done, done_on)."""
    return [
        {k: v for k, v in item.items() if k not in ("done", "done_on")}
        if isinstance(item, dict)
        else item
        for item in _entries(follow_ups)
    ]


def confirmed_rewrite(before: Document, after: Document) -> str | None:
    """None when `after` is `before` plus appended addenda; else what was rewritten."""
    if not before.meta.get("confirmed_on"):
        return None
    old_addenda = _entries(before.meta.get("addenda"))
    if _entries(after.meta.get("addenda"))[: len(old_addenda)] != old_addenda:
        return _("addenda: earlier addenda were changed")
    keys = dict.fromkeys([*before.meta, *after.meta])
    changed = [
        k
        for k in keys
        if k not in ("addenda", "follow_ups") and before.meta.get(k) != after.meta.get(k)
    ]
    if _agreed(before.meta.get("follow_ups")) != _agreed(after.meta.get("follow_ups")):
        changed.append("follow_ups")
    if before.body.strip() != after.body.strip():
        changed.append("body")
    if changed:
        return _("{field}: the record was confirmed; change it only by an addendum").format(
            field=changed[0]
        )
    return None
