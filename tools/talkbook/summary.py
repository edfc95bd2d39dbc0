"""`talkbook show`: a talk or a cadre as readable text, in the reader's language.

Contract: `show(app, ref)` takes a talk id (the plan with its key fields and body, the record with
its follow-ups, addenda and body, and a summary of the history from history.story), or a cadre
by id, unique name or file path (the profile's summary, its events and the talks the reader can
read). Labels come from talkbook.toml (occasions, talk types) and from `_()` (field names,
statuses, methods).

Security invariant: only what the identity decrypts is shown; a talk or cadre it cannot read is
one line (DecryptionError, exit 2) naming the id alone; the profile's `private` field is never
shown; the cadre's name appears only to whoever reads the profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkbook.app import App
from talkbook.catalog import load
from talkbook.errors import DecryptionError, NotRecipient, TalkbookError
from talkbook.i18n import _
from talkbook.models import Document, is_id
from talkbook.rules import as_list
from talkbook.views import method_label, person_name, status_label, when_text
from talkbook.workspace import Workspace, id_of_rel, kind_of_rel

PROFILE_FIELDS = (
    "gender",
    "birth_date",
    "unit",
    "post",
    "rank",
    "education",
    "major",
    "career_start",
    "personality",
    "retired",
)  # fmt: skip  (never `private`: it stays out of every summary)
INDENT = "    "


def show(app: App, ref: str) -> str:
    app.ensure_trust()  # the settings read here are verified ones
    if is_id("talk", ref):
        return talk_text(app, ref)
    if is_id("profile", ref):
        return cadre_text(app, ref)
    if "/" in ref or ref.endswith(".age"):  # a file of the workspace, as `cat` takes it
        rel = app.workspace.relative(app.workspace.resolve(ref))
        kind, file_id = kind_of_rel(rel), id_of_rel(rel)
        return cadre_text(app, file_id) if kind == "profile" else talk_text(app, file_id)
    from talkbook.listing import cadre_id_of

    return cadre_text(app, cadre_id_of(load(app), ref))


def _read(app: App, path: Path) -> Document | None:
    """The document, or None when the identity is not among its recipients."""
    try:
        return app.read(path)
    except NotRecipient:
        return None


def _unreadable(ref: str) -> DecryptionError:
    return DecryptionError(_("{ref}: not readable with your identity").format(ref=ref))


def _field(lines: list[str], label: str, value: Any, indent: str = "  ") -> None:
    """`label: value`, one line per item of a list; nothing for an empty value."""
    for item in as_list(value):
        if item not in (None, ""):
            lines.append(indent + _("{label}: {value}").format(label=label, value=item))


def _section(lines: list[str], title: str) -> None:
    """A section title, set off by a blank line."""
    if lines and lines[-1]:
        lines.append("")
    lines.append(title)


def _body(lines: list[str], body: str) -> None:
    if body.strip():
        lines.append("")
        lines.extend((INDENT + line).rstrip() for line in body.strip("\n").splitlines())
        lines.append("")


def _who(ws: Workspace, pid: Any) -> str:
    name = person_name(ws, pid)
    return f"{name} ({pid})" if pid and name != str(pid) else str(pid or "")


# -- a talk -----------------------------------------------------------------------------------
def talk_text(app: App, talk_id: str) -> str:
    ws = app.workspace
    folder = ws.talk_dir(talk_id)
    plan = _read(app, folder / "plan.md.age")
    if plan is None:
        raise _unreadable(talk_id)
    cadre = str(plan.meta.get("cadre"))
    profile = _profile_if_readable(app, cadre)
    name = f"{profile.meta.get('name')} ({cadre})" if profile else cadre
    lines = [f"{talk_id}  {name}"]
    record_path = folder / "record.md.age"
    held = record_path.exists()  # held, whoever reads it: views.talk_status's rule
    lines += _plan_lines(app, plan, "held" if held else plan.meta.get("status"))
    if held:
        record = _read(app, record_path)
        if record is None:
            _section(lines, _("record: held (not readable with your identity)"))
        else:
            lines += _record_lines(app, record)
    lines += _history_lines(app, talk_id)
    return "\n".join(lines).rstrip()


def _profile_if_readable(app: App, cadre_id: str) -> Document | None:
    try:
        path = app.workspace.cadre_path(cadre_id)
    except TalkbookError:
        return None
    return _read(app, path) if path.is_file() else None


def _plan_lines(app: App, plan: Document, status: Any) -> list[str]:
    ws, meta = app.workspace, plan.meta
    lines = [_("plan:")]
    _field(lines, _("status"), status_label(status))
    _field(lines, _("speaker"), _who(ws, meta.get("speaker")))
    _field(lines, _("recorder"), _who(ws, meta.get("recorder")))
    _field(lines, _("at"), when_text(meta.get("at")))
    _field(lines, _("place"), meta.get("place"))
    _field(lines, _("type"), ws.label("talk_types", meta.get("talk_type")))
    _field(lines, _("occasion"), ws.label("occasions", meta.get("occasion")))
    _field(lines, _("event date"), meta.get("event_date"))
    _field(lines, _("method"), method_label(meta.get("method")))
    _field(lines, _("continues"), meta.get("continues"))
    _field(lines, _("focus"), meta.get("focus"))
    _field(lines, _("preparations"), meta.get("preparations"))
    decisions = [d for d in as_list(meta.get("decisions")) if isinstance(d, dict)]
    if decisions:
        lines.append("  " + _("decisions:"))
    for d in decisions:
        comment = f"  {d['comment']}" if d.get("comment") else ""
        decided = status_label(d.get("decision"))
        lines.append(
            f"{INDENT}{when_text(d.get('at'))}  {_who(ws, d.get('by'))}  {decided}{comment}"
        )
    _body(lines, plan.body)
    return lines


def _record_lines(app: App, record: Document) -> list[str]:
    ws, meta = app.workspace, record.meta
    lines = ["", _("record:")]
    _field(lines, _("held at"), when_text(meta.get("held_at")))
    _field(lines, _("place"), meta.get("place"))
    _field(lines, _("recorder"), _who(ws, meta.get("recorder")))
    _field(lines, _("present"), meta.get("present"))
    _field(lines, _("method"), method_label(meta.get("method")))
    _field(lines, _("topics"), meta.get("topics"))
    _field(lines, _("deferred"), meta.get("deferred"))
    _field(lines, _("confirmed on"), meta.get("confirmed_on"))
    follow_ups = [f for f in as_list(meta.get("follow_ups")) if isinstance(f, dict)]
    if follow_ups:
        lines.append("  " + _("follow-ups:"))
    for number, f in enumerate(follow_ups, 1):
        mark = "x" if f.get("done") else " "
        done = "  " + _("done {day}").format(day=f["done_on"]) if f.get("done_on") else ""
        lines.append(
            f"{INDENT}{number}. [{mark}] {f.get('what')} ({f.get('owner')}, {f.get('due')}){done}"
        )
    _body(lines, record.body)
    addenda = [a for a in as_list(meta.get("addenda")) if isinstance(a, dict)]
    if addenda:
        _section(lines, _("addenda:"))
    for a in addenda:
        lines.append(f"  {when_text(a.get('at'))}  {_who(ws, a.get('by'))}")
        lines.extend(f"{INDENT}{line}" for line in str(a.get("text", "")).splitlines())
    return lines


def _history_lines(app: App, talk_id: str) -> list[str]:
    """One line per commit of the plan and the record, marked as `talkbook history` marks a
    step whose signature is not its author's."""
    from talkbook.history import story

    try:
        steps = story(app, talk_id)
    except TalkbookError:
        return []
    lines = ["", _("history:")]
    shown: list[str] = []
    for step in steps:
        line = f"  {when_text(step.when)[:16]}  {step.author}  {step.message}"
        if not step.verified:
            by = (
                _("signed by {person}").format(person=step.signed_by)
                if step.signed_by
                else _("no signature of a person")
            )
            line += "  " + _("(UNVERIFIED: {by})").format(by=by)
        if not shown or shown[-1] != line:  # one commit wrote the plan and the record
            shown.append(line)
    return lines + shown


# -- a cadre ----------------------------------------------------------------------------------
def cadre_text(app: App, cadre_id: str) -> str:
    ws = app.workspace
    profile = _read(app, ws.resolve(cadre_id))
    if profile is None:
        raise _unreadable(cadre_id)
    meta = profile.meta
    lines = [f"{cadre_id}  {meta.get('name', '')}"]
    for key in PROFILE_FIELDS:
        value = _personality(meta[key]) if key == "personality" and meta.get(key) else meta.get(key)
        _field(lines, _profile_label(key), value)
    events = sorted(
        (e for e in as_list(meta.get("events")) if isinstance(e, dict)),
        key=lambda e: str(e.get("date")),
    )
    lines.append(_("events ({n}):").format(n=len(events)))
    for e in events:
        note = f"  {e['note']}" if e.get("note") else ""
        lines.append(f"  {e.get('date')}  {ws.label('occasions', e.get('occasion'))}{note}")
    lines += _cadre_talk_lines(app, cadre_id)
    return "\n".join(lines)


def _profile_label(key: str) -> str:
    labels = {
        "gender": _("gender"),
        "birth_date": _("birth_date"),
        "unit": _("unit"),
        "post": _("post"),
        "rank": _("rank"),
        "education": _("education"),
        "major": _("major"),
        "career_start": _("career_start"),
        "personality": _("personality"),
        "retired": _("retired"),
    }
    return labels.get(key, key)


def _personality(code: Any) -> str:
    labels = {
        "introverted": _("introverted"),
        "extroverted": _("extroverted"),
        "balanced": _("balanced"),
    }
    return labels.get(str(code), str(code))


def _cadre_talk_lines(app: App, cadre_id: str) -> list[str]:
    from talkbook.views import table_text, talk_status

    ws = app.workspace
    catalog = load(app)
    plans = sorted(
        ((tid, p) for tid, p in catalog.plans.items() if p.get("cadre") == cadre_id),
        key=lambda pair: str(pair[1].meta.get("at")),
    )
    rows = []
    for talk_id, plan in plans:
        meta = plan.meta
        why = ws.label("occasions", meta.get("occasion")) or ws.label(
            "talk_types", meta.get("talk_type")
        )
        rows.append(
            {
                "id": talk_id,
                "status": status_label(talk_status(catalog, talk_id, ws.root)),
                "at": when_text(meta.get("at")),
                "speaker": person_name(ws, meta.get("speaker")),
                "why": why,
            }
        )
    columns = ["id", "status", "at", "speaker", "why"]
    aligned = table_text(rows, columns).splitlines()[2:] if rows else []  # no header, no rule
    return [_("talks ({n}):").format(n=len(plans)), *("  " + line for line in aligned)]
