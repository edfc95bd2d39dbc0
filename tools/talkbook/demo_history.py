"""The bulk demo's history: each group's tree built by `git fast-import`, one signed commit a
group.

`git commit` per group would refresh a 21,000-entry index (hashing again every file whose staged
version is not its last) and write each changed folder's tree as a loose object. Here one `git
fast-import` applies every group's new file versions to the tree before it, in C, writing only the
folders a group changed, all into one pack (`trees`). It carries them on unsigned scratch commits
of a scratch ref, which is removed at once: those commits are unreachable (never pushed; `git gc`
prunes them), and only their trees are used. Each real commit is then made by `git commit-tree
-S`: git writes the commit object and signs it with the acting person's key, exactly as `git
commit -S` signs (Signer.git_options); commit-tree runs no hook, as gittrail.commit skips it. The
branch moves once, to the last commit (its reflog says so); the index is read from it and
refreshed, so `git status` is clean.

Security invariant: trees hold opaque paths and the blob ids of ciphertext only; commit messages
carry counts, never a name or content; every commit is signed by the person who acted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from talkbook import gittrail
from talkbook.errors import TalkbookError
from talkbook.i18n import _

SCRATCH_REF = "refs/talkbook-demo/trees"
SCRATCH_COMMITTER = "committer talkbook demo <demo@talkbook.invalid> 0 +0000"


def trees(root: Path, start: str, groups: list[list[tuple[str, str]]]) -> list[str]:
    """The tree of each group's commit, in order: the tree of `start` with each group's (path,
    blob id) pairs applied in turn. fast-import refuses a blob that is not in the repository."""
    stream = [f"reset {SCRATCH_REF}\nfrom {start}\n\n"]
    for group in groups:
        stream.append(f"commit {SCRATCH_REF}\n{SCRATCH_COMMITTER}\ndata 0\n")
        stream += [f"M 100644 {blob} {_path(path)}\n" for path, blob in group]
        stream.append("\n")
    stream.append("done\n")
    command = ["-c", "pack.compression=1", "fast-import", "--quiet", "--done"]
    try:
        _git(root, command, "".join(stream).encode("utf-8"))
        listed = _git(root, ["log", "--format=%T", "--reverse", SCRATCH_REF, f"^{start}"])
    finally:
        subprocess.run(["git", "update-ref", "-d", SCRATCH_REF], cwd=root, capture_output=True)
    found = listed.decode("ascii").split()
    if len(found) != len(groups):
        raise TalkbookError(_("git {command} failed: {why}").format(command="fast-import",
                            why=f"{len(found)} trees for {len(groups)} groups"))  # fmt: skip
    return found


def _path(path: str) -> str:
    """A path as fast-import reads it unquoted: the demo's own paths (ids) never need quoting."""
    if not path or path.startswith('"') or any(c in path for c in "\n\0"):
        raise ValueError("a path fast-import would have to read quoted")
    return path


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
