"""Names where people think in names: a cadre by id or name, a person by id or name, an
occasion, talk type or method by its code or its label in either language.

Contract: every `resolve_*` returns the code or id the files use, or raises a TalkbookError
(exit 2) in one line. A cadre's name is matched only against the profiles the acting person can
decrypt, exactly (surrounding blanks aside); two or more profiles of that name make an error
that lists them by id, unit and post, so the user picks the id.

Security invariant: the name a user typed is never echoed (not in an error, a notice, a commit
message or a log line): errors say what kind of thing was not found and list ids, labels from
talkbook.toml, and for an ambiguous name only the unit and post of each candidate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from talkbook.errors import AmbiguousName, NotFound, TalkbookError
from talkbook.i18n import _
from talkbook.models import is_id

if TYPE_CHECKING:
    from talkbook.app import App
    from talkbook.catalog import Catalog, Item
    from talkbook.workspace import Workspace

# The talk methods: fixed by the schema, so their labels live here, not in talkbook.toml. The
# first label of a language is the one shown; the others are accepted too (the zh-CN template
# has called open_conversation 漫谈交流).
METHOD_LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "direct_questions": {"zh-CN": ("直接提问",), "en": ("Direct questions",)},
    "open_conversation": {"zh-CN": ("开放式交谈", "漫谈交流"), "en": ("Open conversation",)},
    "consultation": {"zh-CN": ("征询意见",), "en": ("Consultation",)},
}


def _key(text: object) -> str:
    return " ".join(str(text).split()).casefold()


def _one_line(value: object) -> str:
    """A profile's unit or post as an error may show it: one line, control characters out."""
    text = " ".join(str(value or "").split())
    return "".join(c for c in text if c.isprintable())[:60] or "-"


# -- cadres ------------------------------------------------------------------------------------
def readable_profiles(app: App) -> dict[str, Item]:
    """The profiles the acting person can decrypt (custodians, by the default access rule)."""
    from talkbook.catalog import load

    cadres = [p for p in app.workspace.encrypted_files() if p.parent.name == "cadres"]
    return load(app, cadres).profiles


def resolve_cadre(source: App | Catalog, ref: str) -> str:
    """A cadre id from an id or an unambiguous name (`source`: an App, or a Catalog already
    loaded). An id is returned as given: the command reading it says if it is unknown."""
    from talkbook.catalog import Catalog

    ref = ref.strip()
    if is_id("profile", ref):
        return ref
    if not ref:
        raise NotFound(_("unknown cadre: give an id (C-…) or a name"))
    profiles = source.profiles if isinstance(source, Catalog) else readable_profiles(source)
    wanted = _key(ref)
    matches = sorted(cid for cid, item in profiles.items() if _key(item.get("name")) == wanted)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(_("unknown cadre: no profile you can read has that name or id"))
    candidates = "; ".join(
        "{id} ({unit}, {post})".format(
            id=cid,
            unit=_one_line(profiles[cid].get("unit")),
            post=_one_line(profiles[cid].get("post")),
        )
        for cid in matches
    )
    raise AmbiguousName(
        _("{count} cadres have that name: {candidates}; give the id").format(
            count=len(matches), candidates=candidates
        )
    )


# -- people ------------------------------------------------------------------------------------
def resolve_person(ws: Workspace, ref: str | None) -> str | None:
    """A person id from an id or a name in talkbook.toml (staff names are not confidential);
    None stays None. An unknown id is returned as given for the command to judge."""
    if ref is None:
        return None
    ref = str(ref).strip()
    if ref in ws.people or is_id("person", ref):
        return ref
    matches = sorted(p.id for p in ws.people.values() if _key(p.name) == _key(ref))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(_("unknown person: no person of this workspace has that name or id"))
    raise AmbiguousName(
        _("{count} people have that name: {candidates}; give the id").format(
            count=len(matches), candidates=", ".join(matches)
        )
    )


# -- occasions, talk types, methods ------------------------------------------------------------
def _labels_of(entry: Any) -> list[str]:
    labels = entry.get("label") if isinstance(entry, dict) else None
    return [str(v) for v in labels.values()] if isinstance(labels, dict) else []


def _resolve_code(ref: str, labels: dict[str, list[str]]) -> str | None:
    ref = ref.strip()
    if ref in labels:
        return ref
    wanted = _key(ref)
    for code, names in labels.items():
        if wanted == _key(code) or any(wanted == _key(name) for name in names):
            return code
    return None


def _choices(labels: dict[str, list[str]], shown: dict[str, str]) -> str:
    return ", ".join(
        f"{shown[code]} ({code})" if shown[code] != code else code for code in sorted(labels)
    )


def resolve_option(ws: Workspace, table: str, ref: str | None) -> str | None:
    """An occasion or talk type code (`table`: occasions, talk_types) from its code or any of
    its labels in talkbook.toml; None stays None."""
    if ref is None:
        return None
    entries = ws.config.get(table) or {}
    labels = {str(code): _labels_of(entry) for code, entry in entries.items()}
    code = _resolve_code(ref, labels)
    if code is not None:
        return code
    shown = {code: ws.label(table, code) for code in labels}
    what = {"occasions": _("unknown occasion"), "talk_types": _("unknown talk type")}[table]
    raise TalkbookError(
        _("{what}: choose from {choices}").format(what=what, choices=_choices(labels, shown))
    )


def resolve_occasion(ws: Workspace, ref: str | None) -> str | None:
    return resolve_option(ws, "occasions", ref)


def resolve_talk_type(ws: Workspace, ref: str | None) -> str | None:
    return resolve_option(ws, "talk_types", ref)


def resolve_method(ref: str | None) -> str | None:
    """A method code from its code or its label in zh-CN or en; None stays None."""
    if ref is None:
        return None
    labels = {
        code: [n for names in by.values() for n in names] for code, by in METHOD_LABELS.items()
    }
    code = _resolve_code(ref, labels)
    if code is not None:
        return code
    shown = {code: method_label(code) for code in labels}
    raise TalkbookError(
        _("{what}: choose from {choices}").format(
            what=_("unknown method"), choices=_choices(labels, shown)
        )
    )


def method_label(code: str | None, language: str | None = None) -> str:
    """How a method reads in `language` (default: the one messages are in), else its code."""
    from talkbook.i18n import language as current

    names = METHOD_LABELS.get(str(code), {}).get(language or current())
    return names[0] if names else str(code)


def resolve_document(app: App, ref: str) -> str:
    """What `edit` and the like take: an id (C-…, T-…, T-…/record) or a path as given, or a
    cadre's name, resolved to the cadre's id."""
    if "/" in ref or "." in ref or (len(ref) > 2 and ref[1] == "-" and ref[0].isascii()):
        return ref
    return resolve_cadre(app, ref)
