"""Everything the acting person can read, decrypted once, in memory.

`due`, `followups`, `list`, `validate` and reports all start here. Files the identity cannot
decrypt are named in `unreadable`, not treated as errors: a speaker sees only their talks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from talkbook.errors import DecryptionError, InvalidDocument
from talkbook.models import Document, parse
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


def load(app, paths: list[Path] | None = None) -> Catalog:
    ws = app.workspace
    catalog = Catalog()
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
        catalog.add(Item(kind, rel, doc, text))
    return catalog
