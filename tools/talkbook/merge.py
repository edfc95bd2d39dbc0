"""Merging encrypted documents three ways: git's merge driver for `*.md.age`, and `resolve`.

Two officers change the same profile, plan or record on two machines; `git pull` (or `talkbook
sync`) calls the driver with the common ancestor, ours and theirs. Each is decrypted in memory;
the front matter merges field by field (a field changed on one side only takes that change), the
lists of entries (events, decisions, addenda, follow-ups, …) as unions that keep each side's
additions and honour each side's removals, the body with `git merge-file`. A field changed two
ways, or a body conflict, is a true conflict: the driver then leaves our ciphertext in place and
exits 1, so git marks the file unmerged and `talkbook resolve ID` finishes it in the editor.

Security invariant: plaintext lives in memory and, only for `git merge-file`, in a private tmpfs
folder (0700) wiped at once; the merged text is encrypted to the readers the verified
talkbook.toml of HEAD gives; conflict markers never reach a file that is committed (`resolve`
refuses them).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkbook.errors import EditAborted, InvalidDocument, TalkbookError
from talkbook.i18n import _
from talkbook.models import Document, parse

# Lists of entries: unions, each side's additions kept, each side's removals honoured.
LIST_FIELDS = ("events", "decisions", "addenda", "follow_ups", "present", "topics", "deferred")
MARKERS = ("<<<<<<< ", "=======", ">>>>>>> ")
_ABSENT = object()


@dataclass
class Merged:
    meta: dict[str, Any]
    body: str
    conflicts: list[str] = field(default_factory=list)  # field names, "(body)" for the body
    theirs: dict[str, Any] = field(default_factory=dict)  # their value of each conflicting field


def merge_lists(base: list, ours: list, theirs: list) -> list:
    """Ours, less what theirs removed, plus what theirs added (in their order)."""
    kept = [item for item in ours if item in theirs or item not in base]
    return kept + [item for item in theirs if item not in ours and item not in base]


def merge_documents(base: Document | None, ours: Document, theirs: Document) -> Merged:
    """Field by field; the body through `git merge-file`."""
    old = base.meta if base else {}
    merged = Merged({}, "")
    for key in dict.fromkeys([*ours.meta, *theirs.meta]):
        o, a, b = old.get(key, _ABSENT), ours.meta.get(key, _ABSENT), theirs.meta.get(key, _ABSENT)
        if a == b or b == o:
            value = a
        elif a == o:
            value = b
        elif key in LIST_FIELDS and all(isinstance(v, list | type(None)) for v in (a, b)):
            base_list = o if isinstance(o, list) else []
            value = merge_lists(base_list, list(a or []), list(b or []))
        else:
            value = a
            merged.conflicts.append(key)
            merged.theirs[key] = None if b is _ABSENT else b
        if value is not _ABSENT:
            merged.meta[key] = value
    body, clean = merge_text(base.body if base else "", ours.body, theirs.body)
    merged.body = body
    if not clean:
        merged.conflicts.append("(body)")
    return merged


def merge_text(base: str, ours: str, theirs: str) -> tuple[str, bool]:
    """`git merge-file -p` on three texts: (result with markers where they conflict, clean)."""
    if ours == theirs or theirs == base:
        return ours, True
    if ours == base:
        return theirs, True
    with private_folder() as folder:
        paths = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = folder / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
            paths.append(str(path))
        done = subprocess.run(
            ["git", "merge-file", "-p", "-L", "ours", "-L", "base", "-L", "theirs", *paths],
            capture_output=True,
        )
    if done.returncode < 0 or done.returncode > 127:
        raise TalkbookError(_("git merge-file failed"))
    return done.stdout.decode("utf-8", "replace"), done.returncode == 0


@contextlib.contextmanager
def private_folder() -> Iterator[Path]:
    """The editor's private tmpfs folder (never the disk here), wiped afterwards."""
    from talkbook.editor import _make_private_dir, private_dir_candidates, wipe_tree

    try:
        folder = _make_private_dir(private_dir_candidates(), lambda _: False)
    except EditAborted:
        raise TalkbookError(_("no private in-memory folder (tmpfs) to merge in")) from None
    try:
        yield folder
    finally:
        wipe_tree(folder)


def decode(plaintext: bytes | None, name: str) -> Document | None:
    if plaintext is None:
        return None
    return parse(plaintext.decode("utf-8"), name)


def with_conflicts_shown(merged: Merged) -> str:
    """The text `resolve` opens: ours where fields conflict, theirs as comments beside them."""
    text = Document(merged.meta, merged.body).text()
    if not merged.theirs:
        return text
    import yaml

    notes = ["# CONFLICT: these fields were changed two ways; ours is kept above, theirs was:"]
    for key, value in merged.theirs.items():
        dumped = yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False).rstrip()
        notes += [f"#   {line}" for line in dumped.splitlines()]
    head, _sep, rest = text.partition("\n---\n")
    return head + "\n" + "\n".join(notes) + "\n---\n" + rest


def unresolved(text: str) -> str | None:
    """Why a resolved text is not yet resolved (conflict markers left in), or None."""
    for line in text.splitlines():
        if line.startswith(MARKERS) or line == "=======":
            return _("conflict markers are still in the text (<<<<<<<, =======, >>>>>>>)")
    return None


def check_resolved(text: str, name: str) -> Document:
    if problem := unresolved(text):
        raise InvalidDocument(f"{name}: {problem}")
    return parse(text, name)
