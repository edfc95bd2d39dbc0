"""Everything the acting person can read, decrypted once, in memory.

`due`, `followups`, `list`, `validate` and reports all start here. Files the identity cannot
decrypt are named in `unreadable`, not treated as errors: a speaker sees only their talks.

A document reaches the logic only once it has passed its kind's JSON Schema (`checked`): a file
planted with `events: 5` lands in `malformed` with its findings, so every reader skips it and
says which file it could not use, and `validate` reports it; nothing crashes on a wrong type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from talkbook.errors import DecryptionError, InvalidDocument, TalkbookError
from talkbook.models import Document, is_id, parse
from talkbook.validation import Finding, Subject, schema_findings, summary
from talkbook.workspace import id_of_rel, kind_of_rel


@dataclass(frozen=True)
class Item:
    kind: str
    rel: str
    doc: Document
    text: str

    @property
    def meta(self) -> dict:
        return self.doc.meta


@dataclass
class Catalog:
    profiles: dict[str, Item] = field(default_factory=dict)
    plans: dict[str, Item] = field(default_factory=dict)
    records: dict[str, Item] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    malformed: list[tuple[str, InvalidDocument]] = field(default_factory=list)

    def add(self, item: Item) -> None:
        bucket = {"profile": self.profiles, "plan": self.plans, "record": self.records}
        bucket[item.kind][id_of_rel(item.rel)] = item

    def items(self) -> list[Item]:
        return [*self.profiles.values(), *self.plans.values(), *self.records.values()]

    def cadre_name(self, cadre_id: str) -> str:
        item = self.profiles.get(cadre_id)
        return str(item.meta.get("name", "")) if item else ""

    def held_talks(self, cadre_id: str) -> list[Item]:
        return [r for r in self.records.values() if r.meta.get("cadre") == cadre_id]


def unfit(subject: Subject) -> list[Finding]:
    """Why logic may not read a document: its schema findings, or a file name without an id."""
    findings = schema_findings(subject)
    id_kind = "profile" if subject.kind == "profile" else "talk"
    if not findings and not is_id(id_kind, id_of_rel(subject.rel)):
        findings = [Finding(subject.rel, 1, "(file)", "the file's name is not an id")]
    return findings


def checked(kind: str, rel: str, text: str) -> Document:
    """The document, parsed and past its kind's schema: what logic may read field by field.

    InvalidDocument otherwise, one line (`path:line: field: message`, never a value), with
    every finding attached; a file whose name carries no id is refused the same way.
    """
    doc = parse(text, rel)
    if findings := unfit(Subject(kind, rel, doc, text)):
        first = findings[0]
        raise InvalidDocument(
            summary(findings), findings, first.line, f"{first.field}: {first.message}"
        )
    return doc


def load(app, paths: list[Path] | None = None) -> Catalog:
    ws = app.workspace
    catalog = Catalog()
    for path in paths if paths is not None else ws.encrypted_files():
        rel = ws.relative(path)
        try:
            kind = kind_of_rel(rel)
        except TalkbookError:
            reason = "(file): not a profile, plan or record"
            catalog.malformed.append((rel, InvalidDocument(f"{rel}:1: {reason}", reason=reason)))
            continue
        try:
            text = app.vault.read_text(path)
        except DecryptionError:
            catalog.unreadable.append(rel)
            continue
        try:
            doc = checked(kind, rel, text)
        except InvalidDocument as exc:
            catalog.malformed.append((rel, exc))
            continue
        catalog.add(Item(kind, rel, doc, text))
    return catalog
