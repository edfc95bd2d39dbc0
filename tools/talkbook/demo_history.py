"""The bulk demo's history: its trees built in memory and packed once, one signed commit a group.

`git commit` per group would refresh a 21,000-entry index (hashing again every file whose staged
version is not its last) and write each changed folder's tree as a loose object, hundreds per
commit. Here the trees are computed in memory, in git's tree format (entries sorted by name, a
folder's name compared with a trailing '/'), and written into one pack that `git index-pack
--strict` checks (sorting, modes, and that every blob they name is in the repository). Each
commit is then made by `git commit-tree -S`: git writes the commit object and signs it with the
acting person's key, exactly as `git commit -S` signs (Signer.git_options); commit-tree runs no
hook, as gittrail.commit skips it. The branch moves once, to the last commit (its reflog says
so); the index is read from it and refreshed, so `git status` is clean.

Security invariant: trees hold opaque paths and the blob ids of ciphertext only; commit messages
carry counts, never a name or content; every commit is signed by the person who acted.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

from talkbook import gittrail
from talkbook.errors import TalkbookError
from talkbook.i18n import _

FILE_MODE = "100644"
FOLDER_MODE = "40000"
PACK_TREE = 2  # the object type number of a tree in a pack


class Tree:
    """One folder: its entries as git writes them (by the key git sorts them on), the folders
    below it, which of those changed since it was last written, and its id (None: changed).
    Only changed folders are written again; an unchanged entry's bytes are kept, not redone."""

    def __init__(self, oid: str | None = None) -> None:
        self.entries: dict[bytes, bytes] = {}
        self.folders: dict[str, Tree] = {}
        self.changed: set[str] = set()
        self.oid = oid

    def put(self, path: str, blob: str, mode: str = FILE_MODE) -> None:
        """A file's new version: it and every folder on its way are changed."""
        *folders, name = path.split("/")
        node = self
        node.oid = None
        for part in folders:
            node.changed.add(part)
            node = node.folders.setdefault(part, Tree())
            node.oid = None
        node.entries[_bytes(name)] = _entry(mode, name, blob)

    def write(self, written: dict[str, bytes]) -> str:
        """This folder's id; the changed folders below it and itself serialized into
        `written` (id → tree object's content)."""
        if self.oid is not None:
            return self.oid
        for name in self.changed:
            oid = self.folders[name].write(written)
            self.entries[_bytes(name) + b"/"] = _entry(FOLDER_MODE, name, oid)
        self.changed.clear()
        body = b"".join(self.entries[key] for key in sorted(self.entries))
        self.oid = hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
        written.setdefault(self.oid, body)
        return self.oid


def _bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")  # a path git gave as bytes, back as given


def _entry(mode: str, name: str, oid: str) -> bytes:
    """One tree entry; git sorts them by name, a folder's as if it ended in '/'."""
    return b"%s %s\0" % (mode.encode("ascii"), _bytes(name)) + bytes.fromhex(oid)


def head_tree(root: Path) -> Tree:
    """HEAD's tree, every folder with the id it already has (written again only if changed)."""
    listed = _git(root, ["ls-tree", "-r", "-t", "-z", "--full-tree", "HEAD"])
    top = Tree(_git(root, ["rev-parse", "HEAD^{tree}"]).decode().strip())
    for record in filter(None, listed.split(b"\0")):
        info, raw = record.split(b"\t", 1)
        mode, kind, oid = info.decode("ascii").split()
        *folders, name = raw.decode("utf-8", "surrogateescape").split("/")
        node = top
        for part in folders:  # `ls-tree -t` lists a folder before what it holds
            node = node.folders[part]
        if kind == "tree":
            node.folders[name] = Tree(oid)
            node.entries[_bytes(name) + b"/"] = _entry(FOLDER_MODE, name, oid)  # not 040000
        else:
            node.entries[_bytes(name)] = _entry(mode, name, oid)
    return top


def pack_trees(root: Path, trees: dict[str, bytes]) -> None:
    """The trees into one pack: written whole, then indexed and checked by git."""
    if not trees:
        return
    parts = [b"PACK" + struct.pack(">II", 2, len(trees))]
    for body in trees.values():
        parts.append(_entry_header(PACK_TREE, len(body)) + zlib.compress(body, 1))
    pack = b"".join(parts)
    pack += hashlib.sha1(pack, usedforsecurity=False).digest()
    _git(root, ["index-pack", "--strict", "--stdin"], pack)


def _entry_header(kind: int, size: int) -> bytes:
    """A pack entry's type and size: 4 bits of size in the first byte, then 7 per byte."""
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    out.append(byte)
    return bytes(out)


def commit(root: Path, tree: str, parent: str, message: str, app: Any, who: str) -> str:
    """One commit of this tree after `parent`, signed by `who` (whose App this is) as `git
    commit -S` signs, author and dates as gittrail gives them. Returns its id."""
    author = app.author(app.workspace.person(who))
    options, env = app.signer().git_options()
    env = {**env, **gittrail._identity_env(author)}
    args = [*options, "commit-tree", tree, "-p", parent, "-S", "-m", message]
    return _git(root, args, env=env).decode().strip()


def move_branch(root: Path, last: str, before: str) -> None:
    """The branch moved to the last commit, refused if it moved meanwhile."""
    _git(root, ["update-ref", "-m", "talkbook demo (bulk)", "HEAD", last, before])


def refresh_index(root: Path) -> None:
    """The index read from HEAD and refreshed (stat data taken: `git status` clean)."""
    _git(root, ["read-tree", "HEAD"])
    _git(root, ["update-index", "-q", "--refresh"])


def head(root: Path) -> str:
    return _git(root, ["rev-parse", "HEAD"]).decode().strip()


def _git(
    root: Path, args: list[str], given: bytes = b"", env: dict[str, str] | None = None
) -> bytes:
    done = subprocess.run(
        ["git", *args], cwd=root, input=given, env={**os.environ, **(env or {})},
        capture_output=True,
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
        name = next(a for a in args if not a.startswith("-") and "=" not in a)
        raise TalkbookError(_("git {command} failed: {why}").format(command=name, why=last))
    return done.stdout
