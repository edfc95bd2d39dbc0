"""What each report says, as plain values: one function per report, from a loaded catalog.

Contract: every function takes a `Context` (workspace, catalog, the day the report is as of, its
date range) and returns a plain dict (strings, numbers, lists, dicts; no document objects) with
at least `table`: {"columns": [code, …], "rows": [dict, …]}, the one table its CSV holds. Codes
(occasions, methods, reasons) stay codes in the rows; labels ride beside them in `*_label`
keys, in the workspace's locale. Obligations come from `obligations`, never re-derived here.

Security invariant: this module only reads the catalog it is handed (what the identity could
decrypt) and touches no file; names appear in the values (the report's reader holds the key),
and `redact` (render.py) swaps them for ids before anything is rendered.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from talkbook import obligations, rules
from talkbook.catalog import Catalog, Item
from talkbook.i18n import _
from talkbook.models import parse_date
from talkbook.workspace import Workspace

METHODS = ("direct_questions", "open_conversation", "consultation")
ROUTINE = "routine"  # the occasion column of a talk held for no occasion
DEFAULT_CADENCE: list[dict[str, Any]] = [{"id": "yearly", "every_days": 365}]


class Context:
    """What a report is made from. A plain class, not a dataclass: defining one costs every
    report command a few milliseconds at import."""

    __slots__ = ("ws", "catalog", "as_of", "since", "until", "created", "within", "_names")

    def __init__(
        self,
        ws: Workspace,
        catalog: Catalog,
        as_of: dt.date,
        since: dt.date,
        until: dt.date,
        created: Callable[[], dict[str, dt.date]],  # when each profile was added (due's
        # cadence clock): asked for only by `due`, since it reads the git history
        within: int = obligations.DEFAULT_HORIZON_DAYS,
    ) -> None:
        self.ws, self.catalog = ws, catalog
        self.as_of, self.since, self.until = as_of, since, until
        self.created, self.within = created, within
        self._names: dict[str, str] | None = None

    @property
    def names(self) -> dict[str, str]:
        """Each person's name by id, read once: `ws.people` parses talkbook.toml's table anew
        on every call, and a report names thousands of owners and speakers."""
        if self._names is None:
            self._names = {pid: person.name for pid, person in self.ws.people.items()}
        return self._names

    def person_name(self, pid: Any) -> str:
        """As `person_name`, from the names read once."""
        return self.names.get(str(pid), "") if pid else ""


def method_label(code: str | None) -> str:
    labels = {
        "direct_questions": _("Direct questions"),
        "open_conversation": _("Open conversation"),
        "consultation": _("Consultation"),
    }
    return labels.get(code or "", code or "")


def reason_label(ws: Workspace, reason: str) -> str:
    fixed = {"cadence": _("Cadence"), "follow_up": _("Follow-up"), "approval": _("Approval")}
    return fixed.get(reason) or ws.label("occasions", reason)


def occasion_label(ws: Workspace, code: str) -> str:
    return _("Routine") if code == ROUTINE else ws.label("occasions", code)


def person_name(ws: Workspace, pid: Any) -> str:
    person = ws.people.get(str(pid)) if pid else None
    return person.name if person else ""


def _date(value: Any) -> dt.date | None:
    try:
        return parse_date(str(value))
    except ValueError:
        return None


def is_retired(meta: Any, as_of: dt.date) -> bool:
    """A profile (its front matter, or its catalog Item: anything with `get`) with `retired:`
    on or before the report's day (an unreadable date counts)."""
    retired = meta.get("retired")
    if not retired:
        return False
    day = _date(retired)
    return day is None or day <= as_of


# --------------------------------------------------------------------------- coverage
def _not_reached(ctx: Context, records: obligations.Records) -> set[str]:
    """Cadres with a cadence rule overdue when only held talks count (never talked to: overdue)."""
    ws = (
        ctx.ws
        if ctx.ws.config.get("cadence")
        else ctx.ws.with_config({**ctx.ws.config, "cadence": DEFAULT_CADENCE})
    )
    never = dict.fromkeys(ctx.catalog.profiles, dt.date.min)
    found = obligations.cadence_obligations(
        ws, ctx.catalog, ctx.as_of, never, horizon=0, records=records
    )
    return {o.cadre for o in found if o.overdue}


def cadence_rules(ws: Workspace) -> list[dict[str, Any]]:
    return [
        {
            "id": str(rule.get("id", "cadence")),
            "every_days": int(rule["every_days"]),
            "label": (rule.get("label") or {}).get(ws.locale) or str(rule.get("id", "cadence")),
        }
        for rule in ws.config.get("cadence") or DEFAULT_CADENCE
    ]


def _last_talks(records: obligations.Records, as_of: dt.date) -> dict[str, str]:
    """Each cadre's last talk held on or before the day, from the records read once."""
    last = {}
    for cadre, talks in records.of_cadre.items():
        day = obligations.last_day(talks, as_of)
        if day is not None:
            last[cadre] = day.isoformat()
    return last


def coverage(ctx: Context) -> dict[str, Any]:
    records = obligations.Records.read(ctx.catalog)
    missed = _not_reached(ctx, records)
    last = _last_talks(records, ctx.as_of)
    units: dict[str, list[str]] = defaultdict(list)
    retired = 0
    for cadre_id, profile in sorted(ctx.catalog.profiles.items()):
        if is_retired(profile, ctx.as_of):
            retired += 1
            continue
        units[str(profile.get("unit") or "")].append(cadre_id)
    rows: list[dict[str, Any]] = []
    for unit, cadres in sorted(units.items()):
        absent = [c for c in cadres if c in missed]
        reached = len(cadres) - len(absent)
        rows.append(
            {
                "unit": unit,
                "cadres": len(cadres),
                "reached": reached,
                "share": round(reached / len(cadres), 4),
                "share_pct": round(100 * reached / len(cadres)),
                "not_reached": " ".join(absent),
                "missing": [
                    {
                        "id": c,
                        "name": ctx.catalog.cadre_name(c),
                        "last_talk": last.get(c, ""),
                    }
                    for c in absent
                ],
            }
        )
    total = sum(r["cadres"] for r in rows)
    reached = sum(r["reached"] for r in rows)
    return {
        "chart": {"items": [[r["unit"] or "—", [r["share_pct"]]] for r in rows], "percent": True},
        "rules": cadence_rules(ctx.ws),
        "retired": retired,
        "total": {
            "cadres": total,
            "reached": reached,
            "share_pct": round(100 * reached / total) if total else 0,
        },
        "table": {
            "columns": ["unit", "cadres", "reached", "share", "not_reached"],
            "rows": rows,
        },
    }


# --------------------------------------------------------------------------- due
def due(ctx: Context) -> dict[str, Any]:
    found = obligations.due(ctx.ws, ctx.catalog, ctx.as_of, ctx.created(), ctx.within)
    labels = {reason: reason_label(ctx.ws, reason) for reason in {o.reason for o in found}}
    rows = obligations.as_dicts(found, ctx.as_of, ctx.catalog)
    for row in rows:
        row["reason_label"] = labels[row["reason"]]
    columns = ["cadre", "name", "reason", "talk", "since", "deadline", "days_left", "overdue"]
    return {
        "within": ctx.within,
        "overdue": sum(1 for r in rows if r["overdue"]),
        "table": {"columns": [*columns, "owner"], "rows": rows},
    }


# --------------------------------------------------------------------------- speakers
def _held_in_range(ctx: Context, days: obligations.Days) -> list[tuple[str, Item, dt.date]]:
    """The talks held between since and until, in the catalog's order (those who ask count
    them), each day parsed once (`days`; as _held)."""
    found = []
    since, until = ctx.since, ctx.until
    for talk_id, record in ctx.catalog.records.items():
        day = days[str(record.get("held_at"))[:10]]
        if day is not None and since <= day <= until:
            found.append((talk_id, record, day))
    return found


def _method_of(ctx: Context, talk_id: str, record: Item) -> str:
    method = record.get("method")
    if not method:
        plan = ctx.catalog.plans.get(talk_id)
        method = plan.get("method") if plan else None
    return str(method or "")


def speakers(ctx: Context) -> dict[str, Any]:
    methods: dict[str, Counter[str]] = defaultdict(Counter)
    occasions: dict[str, Counter[str]] = defaultdict(Counter)
    for person in ctx.ws.with_role("speaker"):
        methods.setdefault(person.id, Counter())  # a speaker with no talk is a row too
    for talk_id, record, _day in _held_in_range(ctx, obligations.Days()):
        speaker = str(record.get("speaker"))
        methods[speaker][_method_of(ctx, talk_id, record) or "unknown"] += 1
        occasions[speaker][str(record.get("occasion") or ROUTINE)] += 1
    seen = sorted({code for counts in occasions.values() for code in counts})
    occasion_codes = [ROUTINE, *(c for c in seen if c != ROUTINE)] if seen else []
    method_codes = [*METHODS, *(["unknown"] if any(c["unknown"] for c in methods.values()) else [])]
    rows = []
    for speaker in sorted(methods):
        row: dict[str, Any] = {
            "speaker": speaker,
            "name": ctx.person_name(speaker),
            "held": sum(methods[speaker].values()),
        }
        row.update({f"method:{m}": methods[speaker][m] for m in method_codes})
        row.update({f"occasion:{o}": occasions[speaker][o] for o in occasion_codes})
        rows.append(row)
    return {
        "chart": {"items": [[r["name"] or r["speaker"], [r["held"]]] for r in rows]},
        "methods": [{"code": m, "label": method_label(m)} for m in method_codes],
        "occasions": [{"code": o, "label": occasion_label(ctx.ws, o)} for o in occasion_codes],
        "total": sum(r["held"] for r in rows),
        "table": {
            "columns": [
                "speaker",
                "name",
                "held",
                *(f"method:{m}" for m in method_codes),
                *(f"occasion:{o}" for o in occasion_codes),
            ],
            "rows": rows,
        },
    }


# --------------------------------------------------------------------------- occasions
def _months(since: dt.date, until: dt.date) -> list[str]:
    months, year, month = [], since.year, since.month
    while (year, month) <= (until.year, until.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@functools.lru_cache(maxsize=4096)
def _month(day: dt.date) -> str:
    """`2026-03`, asked once per day: strftime costs ten times a dict lookup."""
    return day.strftime("%Y-%m")


def occasions(ctx: Context) -> dict[str, Any]:
    logged: Counter[tuple[str, str]] = Counter()
    met: Counter[tuple[str, str]] = Counter()
    days = obligations.Days()  # each day parsed once (as _date)
    for profile in ctx.catalog.profiles.values():
        for event in rules.as_list(profile.get("events")):
            day = days[str(event.get("date"))[:10]]
            if day is not None and ctx.since <= day <= ctx.until:
                logged[(_month(day), str(event.get("occasion")))] += 1
    for _talk, record, day in _held_in_range(ctx, days):
        if record.get("occasion"):
            met[(_month(day), str(record.get("occasion")))] += 1
    rows: list[dict[str, Any]] = [
        {
            "month": month,
            "occasion": code,
            "occasion_label": occasion_label(ctx.ws, code),
            "events": logged[(month, code)],
            "held": met[(month, code)],
        }
        for month, code in sorted({*logged, *met})
    ]
    months = [
        {
            "month": month,
            "events": sum(r["events"] for r in rows if r["month"] == month),
            "held": sum(r["held"] for r in rows if r["month"] == month),
        }
        for month in _months(ctx.since, ctx.until)
    ]
    return {
        "chart": {"items": [[m["month"], [m["events"], m["held"]]] for m in months]},
        "months": months,
        "total": {"events": sum(logged.values()), "held": sum(met.values())},
        "table": {"columns": ["month", "occasion", "events", "held"], "rows": rows},
    }


# --------------------------------------------------------------------------- approvals
def approvals(ctx: Context) -> dict[str, Any]:
    wait = int(ctx.ws.config.get("approval_wait_days", 3))
    rows = []
    for talk_id, plan in ctx.catalog.plans.items():
        if plan.get("status") != "submitted":
            continue  # most plans: their decisions (a list) are not decoded
        get = plan.get  # a waiting plan's decisions are in the index's head: no tail decoded
        asked = [d for d in get("decisions") or [] if d.get("decision") == "submitted"]
        day = _date(asked[-1].get("at")) if asked else None
        age = (ctx.as_of - day).days if day else None
        rows.append(
            {
                "talk": talk_id,
                "cadre": get("cadre"),
                "name": ctx.catalog.cadre_name(str(get("cadre"))),
                "speaker": get("speaker"),
                "speaker_name": ctx.person_name(get("speaker")),
                "at": get("at"),
                "submitted": day.isoformat() if day else "",
                "age_days": age,
                "overdue": age is not None and age > wait,
            }
        )
    rows.sort(key=lambda r: (r["submitted"], r["talk"]))
    columns = ["talk", "cadre", "name", "speaker", "at", "submitted", "age_days", "overdue"]
    return {
        "wait_days": wait,
        "overdue": sum(1 for r in rows if r["overdue"]),
        "table": {"columns": columns, "rows": rows},
    }


# --------------------------------------------------------------------------- follow-ups
def followups(ctx: Context) -> dict[str, Any]:
    found = obligations.followup_obligations(ctx.catalog, ctx.as_of, upcoming=True)
    names = obligations.Names(ctx.catalog)
    texts = obligations.Texts()
    rows = [
        {
            "talk": o.talk,
            "n": o.number,
            "cadre": o.cadre,
            "name": names[o.cadre],
            "what": o.detail,
            "owner": o.owner,
            "owner_name": ctx.person_name(o.owner),
            "due": texts[o.deadline],
            "days_left": (o.deadline - ctx.as_of).days,
            "overdue": o.overdue,
        }
        for o in sorted(found, key=lambda o: (o.deadline, o.talk or "", o.number or 0))
    ]
    columns = ["talk", "n", "cadre", "name", "what", "owner", "due", "days_left", "overdue"]
    return {
        "overdue": sum(1 for r in rows if r["overdue"]),
        "table": {"columns": columns, "rows": rows},
    }


GATHER = {
    "coverage": coverage,
    "due": due,
    "speakers": speakers,
    "occasions": occasions,
    "approvals": approvals,
    "followups": followups,
}
