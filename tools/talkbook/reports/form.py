"""The printable talk record form (谈话记录表) of one talk, as plain values.

Contract: `form(ctx, talk_id)` returns a dict with the header (organization, talk id, cadre,
speaker, recorder, time, place, method, occasion, talk type), the topics, the record's body as
blocks (`heading`, `item`, `para`; HTML comments, which hold the template's guidance, and the
record's own level-1 title left out),
follow-ups, deferred topics and addenda. With no record yet, the plan fills the header and the
body stays blank, to be written by hand. A talk the identity cannot read is one TalkbookError.

Security invariant: only the catalog the identity decrypted is read (a record the identity may
not read is refused, never guessed); errors name the talk id only.
"""

from __future__ import annotations

import re
from typing import Any

from talkbook import rules
from talkbook.errors import NotFound, TalkbookError
from talkbook.i18n import _
from talkbook.reports.data import Context, method_label, person_name

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ITEM = re.compile(r"^\s*(?:[-*+]|[0-9]+[.)])\s+(.*)$")


def body_blocks(body: str) -> list[dict[str, str]]:
    """The record body as a few kinds of block, for a form: no Markdown engine, no raw HTML."""
    blocks: list[dict[str, str]] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append({"kind": "para", "text": " ".join(para)})
            para.clear()

    for line in _COMMENT.sub("", body).splitlines():
        text = line.strip()
        if heading := _HEADING.match(text):
            flush()
            if len(heading.group(1)) == 1:
                continue  # the record's own title: the form has its own
            blocks.append({"kind": "heading", "text": heading.group(2).strip()})
        elif item := _ITEM.match(line):
            flush()
            blocks.append({"kind": "item", "text": item.group(1).strip()})
        elif text:
            para.append(text)
        else:
            flush()
    flush()
    return blocks


def body_markdown(blocks: list[dict[str, str]]) -> str:
    """The blocks again as Markdown, headings two levels down (they sit under the form's own)."""
    marks = {"heading": "#### ", "item": "- ", "para": ""}
    lines: list[str] = []
    for block in blocks:
        both_items = block["kind"] == "item" and lines and lines[-1].startswith("- ")
        if lines and not both_items:
            lines.append("")
        lines.append(marks[block["kind"]] + block["text"])
    return "\n".join(lines)


def sources(ctx: Context, talk_id: str) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    folder = ctx.ws.talk_dir(talk_id)  # NotFound for a bad or unknown id
    plan = ctx.catalog.plans.get(talk_id)
    record = ctx.catalog.records.get(talk_id)
    if record is None and (folder / "record.md.age").exists():
        raise TalkbookError(
            _("{talk}: the record is not readable with your identity").format(talk=talk_id)
        )
    if plan is None and record is None:
        raise NotFound(
            _("{talk}: no plan or record readable with your identity").format(talk=talk_id)
        )
    plan_meta = plan.meta if plan else {}
    if record is None:
        return plan_meta, None, ""
    return plan_meta, record.meta, record.doc.body


def form(ctx: Context, talk_id: str) -> dict[str, Any]:
    ws = ctx.ws
    plan, record, body = sources(ctx, talk_id)
    meta = record or plan
    cadre_id = str(meta.get("cadre") or "")
    profile = ctx.catalog.profiles.get(cadre_id)
    about = profile.meta if profile else {}
    recorder = (record or {}).get("recorder") or plan.get("recorder")
    method = meta.get("method") or plan.get("method")
    occasion = meta.get("occasion") or plan.get("occasion")
    topics = rules.as_list((record or {}).get("topics")) or rules.as_list(plan.get("focus"))
    blocks = body_blocks(body)
    return {
        "talk": talk_id,
        "held": record is not None,
        "cadre": {
            "id": cadre_id,
            "name": str(about.get("name") or ""),
            "unit": str(about.get("unit") or ""),
            "post": str(about.get("post") or ""),
        },
        "speaker": {"id": meta.get("speaker"), "name": person_name(ws, meta.get("speaker"))},
        "recorder": {"id": recorder or "", "name": person_name(ws, recorder)},
        "time": str((record or {}).get("held_at") or plan.get("at") or "").replace("T", " "),
        "place": str(meta.get("place") or plan.get("place") or ""),
        "present": [str(p) for p in rules.as_list((record or {}).get("present"))],
        "method": method or "",
        "method_label": method_label(method),
        "occasion": occasion or "",
        "occasion_label": ws.label("occasions", occasion),
        "talk_type_label": ws.label("talk_types", plan.get("talk_type")),
        "topics": [str(t) for t in topics],
        "blocks": blocks,
        "body_md": body_markdown(blocks),
        "follow_ups": [
            {
                "what": str(f.get("what", "")),
                "owner": str(f.get("owner", "")),
                "owner_name": person_name(ws, f.get("owner")),
                "due": str(f.get("due", "")),
                "done": bool(f.get("done")),
            }
            for f in rules.as_list((record or {}).get("follow_ups"))
        ],
        "deferred": [str(t) for t in rules.as_list((record or {}).get("deferred"))],
        "addenda": [
            {
                "by": a.get("by"),
                "name": person_name(ws, a.get("by")),
                "at": a.get("at"),
                "text": str(a.get("text", "")),
            }
            for a in rules.as_list((record or {}).get("addenda"))
        ],  # fmt: skip
        "confirmed_on": str((record or {}).get("confirmed_on") or ""),
        "table": {"columns": [], "rows": []},
    }
