"""Rows and text for the terminal: what list, due, followups and show print.

Only for the person at the terminal, who holds the key: names appear here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path
from typing import Any

from talkbook import gittrail, obligations
from talkbook.app import App
from talkbook.catalog import Catalog, load
from talkbook.models import ID_PATTERNS
from talkbook.rules import as_list


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def table_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(nothing)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(_width(c), *(_width(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        padded = [v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def created_dates(app: App) -> dict[str, dt.date]:
    """When each profile was added: where the cadence clock starts for a cadre never talked to."""
    added = gittrail.first_added(app.workspace.root)
    return {
        rel.removeprefix("cadres/").removesuffix(".md.age"): day
        for rel, day in added.items()
        if rel.startswith("cadres/")
    }


def due_rows(app: App, as_of: dt.date | None, within: int) -> tuple[list[dict], list[str]]:
    """The obligations, and a word on the files they could not take into account."""
    app.ensure_trust()  # the settings read here are verified ones
    day = as_of or app.today()
    catalog = load(app)
    found = obligations.due(app.workspace, catalog, day, created_dates(app), within)
    return [o.as_dict(day, catalog) for o in found], skipped_note(catalog)


def skipped_note(catalog: Catalog) -> list[str]:
    notes = []
    if catalog.unreadable:
        notes.append(f"{len(catalog.unreadable)} file(s) not readable with your identity skipped")
    if catalog.malformed:
        names = " ".join(rel for rel, _ in catalog.malformed)
        notes.append(f"{len(catalog.malformed)} malformed file(s) skipped (run validate): {names}")
    return notes


def followup_rows(app: App, as_of: dt.date | None) -> tuple[list[dict], list[str]]:
    app.ensure_trust()  # the settings read here are verified ones
    day = as_of or app.today()
    catalog = load(app)
    found = sorted(
        obligations.followup_obligations(catalog, day, upcoming=True), key=lambda o: o.deadline
    )
    return [
        {
            "talk": o.talk,
            "n": o.number,
            "cadre": o.cadre,
            "name": catalog.cadre_name(o.cadre),
            "what": o.detail,
            "owner": o.owner,
            "due": o.deadline.isoformat(),
            "overdue": o.overdue,
        }
        for o in found
    ], skipped_note(catalog)


def talk_status(catalog: Catalog, talk_id: str, root: Path | None = None) -> str:
    """A talk with a record is held, whether or not the reader can decrypt the record: an
    approver reads the plan, never the record, and the record's existence is in its path
    (`talks/<year>/<talk-id>/record.md.age`), which is not confidential."""
    if talk_id in catalog.records:
        return "held"
    plan = catalog.plans.get(talk_id)
    if plan is None:
        return "?"
    if root is not None and (root / plan.rel).with_name("record.md.age").is_file():
        return "held"
    return str(plan.meta.get("status"))


def talk_rows(app: App, status: str | None, cadre: str | None) -> tuple[list[dict], list[str]]:
    app.ensure_trust()  # the settings read here are verified ones
    catalog = load(app)
    rows = []
    for talk_id, plan in sorted(catalog.plans.items(), key=lambda kv: str(kv[1].meta.get("at"))):
        row = {
            "id": talk_id,
            "cadre": plan.meta.get("cadre"),
            "speaker": plan.meta.get("speaker"),
            "at": plan.meta.get("at"),
            "occasion": plan.meta.get("occasion"),
            "method": plan.meta.get("method"),
            "status": talk_status(catalog, talk_id, app.workspace.root),
        }
        if (status is None or row["status"] == status) and (cadre is None or row["cadre"] == cadre):
            rows.append(row)
    return rows, skipped_note(catalog)


def cadre_rows(app: App, unit: str | None) -> tuple[list[dict], list[str]]:
    app.ensure_trust()  # the settings read here are verified ones
    catalog = load(app)
    rows = []
    for cadre_id, profile in sorted(catalog.profiles.items()):
        meta = profile.meta
        if unit and meta.get("unit") != unit:
            continue
        held = [str(r.meta.get("held_at", ""))[:10] for r in catalog.held_talks(cadre_id)]
        rows.append(
            {
                "id": cadre_id,
                "name": meta.get("name"),
                "unit": meta.get("unit"),
                "post": meta.get("post"),
                "last_talk": max(held) if held else None,
                "events": len(as_list(meta.get("events"))),
            }
        )
    return rows, skipped_note(catalog)


def show_text(app: App, ref: str) -> str:
    app.ensure_trust()  # the settings read here are verified ones
    ws = app.workspace
    if ID_PATTERNS["talk"].match(ref):
        return _show_talk(app, ref)
    path = ws.resolve(ref)
    meta = app.read(path).meta
    lines = [f"{meta.get('id')}  {meta.get('name', '')}"]
    for key in (
        "gender",
        "birth_date",
        "unit",
        "post",
        "rank",
        "education",
        "major",
        "career_start",
        "personality",
    ):
        if meta.get(key):
            lines.append(f"  {key}: {meta[key]}")
    events = as_list(meta.get("events"))
    lines.append(f"events ({len(events)}):")
    for e in sorted(events, key=lambda e: str(e.get("date"))):
        note = f"  {e['note']}" if e.get("note") else ""
        lines.append(f"  {e.get('date')}  {ws.label('occasions', e.get('occasion'))}{note}")
    return "\n".join(lines)


def _show_talk(app: App, talk_id: str) -> str:
    ws = app.workspace
    folder = ws.talk_dir(talk_id)
    plan = app.read(folder / "plan.md.age").meta
    lines = [
        f"{talk_id}  cadre {plan.get('cadre')}  speaker {plan.get('speaker')}  at {plan.get('at')}",
        f"  type: {ws.label('talk_types', plan.get('talk_type'))}"
        + (
            f"  occasion: {ws.label('occasions', plan.get('occasion'))}"
            if plan.get("occasion")
            else ""
        ),
        f"  method: {plan.get('method')}  status: {plan.get('status')}",
    ]
    for focus in as_list(plan.get("focus")):
        lines.append(f"  focus: {focus}")
    for d in plan.get("decisions") or []:
        comment = f"  {d['comment']}" if d.get("comment") else ""
        lines.append(f"  {d.get('at')}  {d.get('by')}  {d.get('decision')}{comment}")
    record_path = folder / "record.md.age"
    if record_path.exists():
        if not app.vault.can_read(record_path):
            lines.append("record: held (not readable with your identity)")
        else:
            rec = app.read(record_path).meta
            lines.append(f"record: held {rec.get('held_at')} recorded by {rec.get('recorder')}")
            for f in as_list(rec.get("follow_ups")):
                mark = "x" if f.get("done") else " "
                lines.append(f"  [{mark}] {f.get('what')} ({f.get('owner')}, {f.get('due')})")
            for topic in as_list(rec.get("deferred")):
                lines.append(f"  deferred: {topic}")
    return "\n".join(lines)
