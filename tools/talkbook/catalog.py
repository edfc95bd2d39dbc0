"""Everything the acting person can read, decrypted once, in memory.

`due`, `followups`, `list`, `validate` and reports all start here. Files the identity cannot
decrypt are named in `unreadable`, not treated as errors: a speaker sees only their talks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from talkbook.errors import DecryptionError, InvalidDocument
from talkbook.models import Document, parse
from talkbook.workspace import kind_of_rel


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

    def items(self) -> list[Item]:
        return [*self.profiles.values(), *self.plans.values(), *self.records.values()]

    def cadre_name(self, cadre_id: str) -> str:
        item = self.profiles.get(cadre_id)
        return str(item.meta.get("name", "")) if item else ""

    def held_talks(self, cadre_id: str) -> list[Item]:
        return [r for r in self.records.values() if r.meta.get("cadre") == cadre_id]


def load(app, paths: list[Path] | None = None) -> Catalog:
    ws = app.workspace
    catalog = Catalog()
    buckets = {"profile": catalog.profiles, "plan": catalog.plans, "record": catalog.records}
    for path in paths if paths is not None else ws.encrypted_files():
        rel = ws.relative(path)
        kind = kind_of_rel(rel)
        try:
            text = app.vault.read_text(path)
        except DecryptionError:
            catalog.unreadable.append(rel)
            continue
        try:
            doc = parse(text, rel)
        except InvalidDocument as exc:
            catalog.malformed.append((rel, exc))
            continue
        key = path.name.removesuffix(".md.age") if kind == "profile" else path.parent.name
        buckets[kind][key] = Item(kind, rel, doc, text)
    return catalog
