"""Git as the audit trail: one commit per change, authored by the acting person.

Commit messages are structured (`plan T-k3x9p2: approved`) and never carry names or content.
The diff driver shows decrypted text to key holders; it must never cache that text (no
`cachetextconv`), or plaintext would land in .git.

A write's commit (`commit`) holds exactly the tool's paths, signed by the acting person: made
with git's plumbing from HEAD's tree, whatever else the index holds (the same commit object
`git commit --only` makes, without its refresh of every file's stat data and its tree of the
whole index), by `git commit --only` where a path is not plainly a file. HEAD moves only
from the commit the new one was made on, so a commit made meanwhile is never overwritten; a
plumbing commit made on the last verified commit, bringing no law, is recorded as verified
(trust.own_commit). `head` reads .git/HEAD and the loose ref it names where that is plain
(a symlink, packed refs or any other oddity is asked of git): every write asks several times.
The trees of the folders along a write's paths are read from git once per commit
(`read_ahead`, `committed`) and kept for that commit only: its trees never change.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import functools
import os
import re
import shlex
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from talkbook.errors import TalkbookError
from talkbook.i18n import _

if TYPE_CHECKING:
    from collections.abc import Callable

    from talkbook.crypto.signing import Signer

HOOK_MARK = "# talkbook pre-commit hook"
MERGE_ATTRIBUTE = "*.md.age merge=talkbook"
UNFINISHED = {
    "MERGE_HEAD": "merge",
    "rebase-merge": "rebase",
    "rebase-apply": "rebase",
    "CHERRY_PICK_HEAD": "cherry-pick",
    "REVERT_HEAD": "revert",
}


# The value types here are NamedTuples, not frozen dataclasses: every command imports this
# module, and a NamedTuple is defined in a fifth of the time.
class Author(NamedTuple):
    name: str
    email: str


class Revision(NamedTuple):
    sha: str
    author: str
    email: str
    when: str  # ISO 8601
    message: str
    path: str


_OPENED: list = []


def _close_repos() -> None:
    """Stop each Repo's long-lived `git cat-file` while the interpreter still works: left to
    garbage collection at exit, GitPython's cleanup prints a traceback on stderr."""
    while _OPENED:
        _OPENED.pop().close()
    _open_repo.cache_clear()


def _repo(root: Path):
    return _open_repo(root.resolve())


@functools.lru_cache(maxsize=4)
def _open_repo(root: Path):
    """One Repo per workspace and process: its object reader is a long-lived `git cat-file`."""
    import git

    if not _OPENED:
        atexit.register(_close_repos)
    try:
        repo = git.Repo(root)
        _OPENED.append(repo)
        return repo
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise TalkbookError(
            _("{root}: not a git repository (run `talkbook setup`)").format(root=root)
        ) from None


def tool_command() -> str:
    """How git should call talkbook back: this interpreter, so a venv needs no PATH tweaks."""
    return f"{shlex.quote(sys.executable)} -m talkbook"


def init_repo(root: Path) -> None:
    import git

    if not (root / ".git").exists():
        git.Repo.init(root, initial_branch="main")


def setup(root: Path) -> list[str]:
    """Diff driver and pre-commit hook; safe to run again. Returns what was configured."""
    from talkbook.textconv import install_driver

    repo = _repo(root)
    command = tool_command()
    driver = install_driver(repo.git_dir)  # .git/talkbook/textconv, run per file version
    with repo.config_writer() as config:
        config.set_value('diff "talkbook"', "textconv", driver)
        config.set_value('diff "talkbook"', "binary", "true")
        config.set_value('merge "talkbook"', "name", "talkbook: merge encrypted documents")
        config.set_value('merge "talkbook"', "driver", f"{command} merge-driver %O %A %B %P")
    info = Path(repo.git_dir) / "info"
    info.mkdir(exist_ok=True)
    attributes = info / "attributes"
    lines = attributes.read_text(encoding="utf-8").splitlines() if attributes.exists() else []
    if MERGE_ATTRIBUTE not in lines:  # this clone merges with the driver, whatever is committed
        attributes.write_text("\n".join([*lines, MERGE_ATTRIBUTE]) + "\n", encoding="utf-8")
    hooks = Path(repo.git_dir) / "hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / "pre-commit"
    if hook.exists() and HOOK_MARK not in hook.read_text(errors="replace"):
        raise TalkbookError(
            _("{hook}: a pre-commit hook exists that talkbook did not write").format(hook=hook)
        )
    hook.write_text(
        f"#!/bin/sh\n{HOOK_MARK}: refuses plaintext under cadres/ and talks/ and runs validation\n"
        f"exec {command} validate --staged\n",
        encoding="utf-8",
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return ["diff.talkbook.textconv", "merge.talkbook.driver", "hooks/pre-commit"]


def configure(root: Path, values: dict[str, str]) -> None:
    """Set git config values of this clone (`.git/config`)."""
    with _repo(root).config_writer() as config:
        for dotted, value in values.items():
            section, _sep, option = dotted.rpartition(".")
            if "." in section:  # gpg.ssh.allowedSignersFile → [gpg "ssh"]
                outer, _sep, inner = section.partition(".")
                section = f'{outer} "{inner}"'
            config.set_value(section, option, value)


def commit(
    root: Path,
    paths: list[Path],
    message: str,
    author: Author,
    signer: Signer | None = None,
    allow_empty: bool = False,
) -> str:
    """Stage exactly these paths (added, changed or removed) and commit only them, signed with
    the acting person's key (`signer`; only `init`'s first commit has none).

    What is committed is HEAD's tree with these paths as the working tree has them: anything
    else the user had staged stays out of the tool's commit, and staged. The usual way (see
    _commit_alone) edits HEAD's tree in these paths, stages them and commits with git's
    plumbing; otherwise (a path that is not plainly a file, a one-off message, an empty or
    first commit) `git commit --only` does it, which refreshes the stat data of every file in
    the index first (a tenth of a second at 20,000 files) and writes the index as a tree. Hooks are
    skipped: the tool validated what it wrote; the pre-commit hook guards hand-made commits
    (talkbook installs no other; commit-tree runs none, post-commit included).
    """
    rel = [p.resolve().relative_to(root.resolve()).as_posix() for p in paths]
    env = _identity_env(author)
    options: list[str] = ["-c", "commit.gpgsign=false"]
    if signer is not None:
        options, signing_env = signer.git_options()
        env |= signing_env
    sign = ["-S"] if signer is not None else []
    try:
        start = head(root)
        sha = made_on = None
        if start is not None and not allow_empty and _plain_message(message):
            sha = _commit_alone(root, rel, message, start, [*options, "commit-tree", *sign], env)
            made_on = start if sha is not None else None
        if sha is None:  # `git commit --only` takes only paths the index knows: staged first
            _git_output(root, "add", "--all", "--force", "--", *rel)  # as the plumbing way
            args = ["--no-verify", "--quiet", "--only", "-m", message, "--", *rel]
            if allow_empty:
                args.insert(0, "--allow-empty")
            _run_git(root, [*options, "commit", *sign, *args], env)
    except Exception as exc:
        raise TalkbookError(
            _("git commit failed: {detail}").format(detail=_first_line(exc))
        ) from None
    if sha is None:
        sha = head(root)
    else:
        _collect_if_due(root)  # what `git commit` would have run after committing
    if made_on is not None and sha is not None:
        _verified_as_made(root, made_on, sha, rel)
    if sha is None:  # git said it committed, yet HEAD names nothing
        raise TalkbookError(_("git commit failed: {detail}").format(detail="no HEAD"))
    return sha


def _verified_as_made(root: Path, parent: str, sha: str, rel: list[str]) -> None:
    """A commit made on `parent` (HEAD moved only from it) that differs from it in `rel` only
    is verified for the chain of custody when it brings no law (trust.own_commit). Only a
    record kept to save the next command's walk: if it cannot be written, that walk is done."""
    from talkbook import trust

    with contextlib.suppress(OSError):
        trust.own_commit(root, parent, sha, rel)


def _plain_message(message: str) -> bool:
    """One line, no outer whitespace: `git commit -m` would keep it as it is (its clean-up only
    changes whitespace), so `git commit-tree -m` makes the very same commit."""
    return bool(message) and "\n" not in message and message == message.strip()


def _commit_alone(
    root: Path, rel: list[str], message: str, start: str, commit_tree: list[str], env: dict
) -> str | None:
    """`start`'s tree with these paths as the working tree has them (_tree_with) committed on
    `start`, the paths staged (`update-index`, as `git add --all` stages them) and HEAD moved
    to the commit, only from `start` (a commit made meanwhile is never overwritten). Moving
    HEAD is the last step, once the staging is through: a write killed before it has
    committed nothing. The tree is made from `start`'s, not from the index, so whatever else
    the index holds stays out of the commit, and staged. None, committing nothing, when the
    paths are not plainly files or change nothing (then `git commit --only` does). The same
    commit object as `git commit --only` makes, without reading and rewriting the whole index
    for a stat refresh and again for a tree; the staging runs while the tree is made."""
    names = [os.fsencode(r) for r in rel]
    present = _plain_files(root, names)
    if present is None:
        return None
    # The tree says 100644 (no file is executable), so must the index: with core.fileMode
    # false, git would keep an index entry's older mode.
    staging = _git_started(
        root, "-c", "core.fileMode=true", "update-index", "--add", "--remove", "--", *rel
    )
    try:
        tree = _tree_with(root, start, names, present)
        sha = (
            None
            if tree is None
            else _run_git(root, [*commit_tree, "-p", start, "-m", message, tree], env).strip()
        )
    finally:
        _git_finished(staging)
    if sha is None:
        return None
    _run_git(root, ["update-ref", "-m", f"commit: {message}", "HEAD", sha, start], env)
    return sha


FILE_MODE, FOLDER_MODE = b"100644", b"40000"  # as git writes them in a tree
TreeEdit = tuple[bytes, bytes, bytes | None]  # (name in its folder, mode, object id or None: gone)


def _tree_with(root: Path, start: str, names: list[bytes], present: list[bytes]) -> str | None:
    """The id of `start`'s tree with these paths (`names`) as the working tree has them: those
    `present` as regular, non-executable files (stored as `git add` stores them), the others
    gone. The folders changed are written to the object store; only their entries on these
    paths change, and a folder left empty goes (git's trees hold no empty folder). None when
    that is not plainly so: `start` holding anything but a plain file at a path or anything
    but a folder above it, or no change at all."""
    folders = sorted(
        {name[:at] for name in names for at in _folder_ends(name)},
        key=lambda folder: folder.count(b"/") + bool(folder),
        reverse=True,
    )  # the deepest first, the top folder (b"") last
    trees = _trees_at(root, start, folders)
    if trees is None:
        return None
    size = len(start) // 2  # bytes in an object id: SHA-1 or SHA-256, as `start`'s
    blobs = _stored_blobs(root, present)
    changes: dict[bytes, list[TreeEdit]] = {}
    for name in names:
        folder, _sep, base = name.rpartition(b"/")
        changes.setdefault(folder, []).append((base, FILE_MODE, blobs.get(name)))
    written: list[bytes] = []
    for folder in folders:  # a folder is settled before the one holding it
        old = trees[folder]
        content = _edited(old, changes.get(folder, []), size)
        if content is None:
            return None
        if content == old:
            continue  # its entry in the folder holding it stays
        if not folder:  # the top folder; an empty one is git's to commit (or refuse)
            return (
                _store_trees(root, [*written, content], _tree_id(content, size))
                if content
                else None
            )
        new_id = _tree_id(content, size) if content else None
        if new_id is not None:
            written.append(content)
        parent, _sep, base = folder.rpartition(b"/")
        changes.setdefault(parent, []).append((base, FOLDER_MODE, new_id))
    return None  # nothing changed


def _edited(tree: bytes, edits: list[TreeEdit], size: int) -> bytes | None:
    """A tree's bytes with these entries set (or gone); None if one is there as something else."""
    for name, mode, oid in edits:
        edited = _put(tree, name, mode, oid, size)
        if edited is None:
            return None
        tree = edited
    return tree


def _folder_ends(name: bytes) -> list[int]:
    """Where each folder holding a path ends in it: 0 for the top folder, then each slash."""
    return [0, *(at for at, char in enumerate(name) if char == ord("/"))]


def _plain_files(root: Path, names: list[bytes]) -> list[bytes] | None:
    """Those of these paths that are files, or None if one is neither a regular,
    non-executable file nor absent (or is named so that `git hash-object --stdin-paths`, which
    reads a path a line and unquotes one in quotes, would not read it as it is)."""
    present = []
    for name in names:
        if b"\n" in name or b"\r" in name or name.startswith(b'"'):
            return None  # git reads a path a line: it would drop a trailing CR
        try:
            mode = os.lstat(os.path.join(os.fsencode(root), name)).st_mode
        except FileNotFoundError:
            continue
        except OSError:  # a file where a folder should be, …
            return None
        if not stat.S_ISREG(mode) or mode & 0o111:
            return None
        present.append(name)
    return present


def _trees_at(root: Path, start: str, folders: list[bytes]) -> dict[bytes, bytes] | None:
    """The bytes of each folder's tree in `start` (b"" where it has none), read from git once
    per commit (_read_at); None if one is something else there (a file)."""
    _read_at(root, start, [], folders)
    seen = _folders_seen(root, start)
    trees: dict[bytes, bytes] = {}
    for folder in folders:
        if (tree := seen[folder]) is None:
            return None
        trees[folder] = tree
    return trees


# The folders' trees read in one commit: (root, commit) -> {folder: its tree's bytes, b"" where
# the commit has none, None where it has something else}. Only the last commit's are kept.
_SEEN: dict[tuple[str, str], dict[bytes, bytes | None]] = {}


def _folders_seen(root: Path, start: str) -> dict[bytes, bytes | None]:
    """The folders' trees this process read in `start` (see _SEEN): a commit's trees never
    change, so those read ahead (read_ahead) or by `committed` before a write serve that
    write's commit, made on it; a folder the tree of its holder lacks is known to be none."""
    key = (str(root), start)
    if key not in _SEEN:
        _SEEN.clear()
        _SEEN[key] = {}
    return _SEEN[key]


def _read_at(
    root: Path, start: str, paths: list[bytes], folders: list[bytes]
) -> list[tuple[bytes, bytes] | None]:
    """(type, bytes) of what `start` holds at each of `paths` (None: nothing), in one `git
    cat-file --batch` that also reads the trees of those `folders` not seen yet in `start`."""
    seen = _folders_seen(root, start)
    size = len(start) // 2
    for folder in sorted(folders, key=len):  # a folder's holder first
        if folder not in seen and _none_at(seen, folder, size):
            seen[folder] = b""
    unseen = [folder for folder in folders if folder not in seen]
    asked = [path for path in paths if not _none_at(seen, path, size)]
    wanted = [*asked, *unseen]
    found = dict(zip(wanted, _objects_at(root, start, wanted), strict=True)) if wanted else {}
    for folder in unseen:
        thing = found.get(folder)
        seen[folder] = b"" if thing is None else thing[1] if thing[0] == b"tree" else None
    return [found.get(path) for path in paths]


def _none_at(seen: dict[bytes, bytes | None], name: bytes, size: int) -> bool:
    """Whether a commit holds nothing at this path, as the tree it read of the folder holding
    it says (a folder it has none of holds nothing either); False where that is not known."""
    if not name:
        return False  # the top folder
    holder, _sep, base = name.rpartition(b"/")
    tree = seen.get(holder)
    return tree is not None and (not tree or not _holds(tree, base, size))


def read_ahead(root: Path, rel_folder: str) -> None:
    """Read HEAD's trees of this folder and of those holding it now, in one `git cat-file
    --batch`, and find where their entries start: `committed` of a path under it, and the
    commit of a write there, then ask git nothing more for them (none at all for a path HEAD
    has nothing at, such as a new talk's). `plan` does this while the index's child sweeps."""
    start = head(root)
    name = os.fsencode(rel_folder)
    if start is None or b"\n" in name or b"\r" in name:
        return
    folders = [*(name[:at] for at in _folder_ends(name)), name]
    with contextlib.suppress(TalkbookError):  # asked again when needed, failing there if so
        _read_at(root, start, [], folders)
        seen = _folders_seen(root, start)
        for tree in filter(None, (seen.get(folder) for folder in folders)):
            _canonical(tree, len(start) // 2)  # its entries found and checked: kept, used next


def _objects_at(root: Path, start: str, paths: list[bytes]) -> list[tuple[bytes, bytes] | None]:
    """(type, bytes) of what `start` holds at each path (b"": its top folder), or None where it
    holds nothing: one `git cat-file --batch` (a path holds no newline: see _plain_files)."""
    asked = b"".join(b"%s:%s\n" % (start.encode("ascii"), path) for path in paths)
    out = _git_output(root, "cat-file", "--batch", given=asked)
    found: list[tuple[bytes, bytes] | None] = []
    at = 0
    for _path in paths:
        end = out.find(b"\n", at)
        fields = out[at:end].split()
        if end >= 0 and fields and fields[-1] == b"missing":
            found.append(None)
            at = end + 1
            continue
        if end < 0 or len(fields) != 3 or len(out) < end + 2 + int(fields[2]):
            raise TalkbookError("git cat-file: unexpected output")
        found.append((fields[1], out[end + 1 : end + 1 + int(fields[2])]))
        at = end + 2 + int(fields[2])
    return found


def _stored_blobs(root: Path, names: list[bytes]) -> dict[bytes, bytes]:
    """Each file stored as a blob, as `git add` stores it (its filters applied): its id."""
    if not names:
        return {}
    out = _git_output(root, "hash-object", "-w", "--stdin-paths", given=b"\n".join(names) + b"\n")
    ids = out.split()
    if len(ids) != len(names):
        raise TalkbookError("git hash-object: unexpected output")
    return {name: bytes.fromhex(oid.decode("ascii")) for name, oid in zip(names, ids, strict=True)}


def _put(tree: bytes, name: bytes, mode: bytes, oid: bytes | None, size: int) -> bytes | None:
    """A tree's bytes with its entry `name` made (mode, oid), or gone when oid is None, the
    entries kept in git's order (by name, a folder's as if it ended in a slash); None when
    the tree holds `name` as something else, or is not as git writes trees (_canonical)."""
    if not _canonical(tree, size):
        return None
    starts = _entry_starts(tree, size)
    other = FILE_MODE if mode == FOLDER_MODE else FOLDER_MODE
    if _where(tree, starts, name, other)[1] is not None:
        return None  # a file where a folder is wanted, or the other way round
    at, found = _where(tree, starts, name, mode)
    if found is not None and found != mode:
        return None  # an executable, a link, a submodule
    made = b"%s %s\0%s" % (mode, name, oid) if oid is not None else b""
    return tree[: starts[at]] + made + tree[starts[at + 1] if found else starts[at] :]


def _holds(tree: bytes, name: bytes, size: int) -> bool:
    """Whether a tree's bytes have an entry `name` (a file's, a folder's, anything's); True
    for a tree not as git writes them (_canonical): git is asked then."""
    if not _canonical(tree, size):
        return True
    starts = _entry_starts(tree, size)
    return any(_where(tree, starts, name, mode)[1] is not None for mode in (FILE_MODE, FOLDER_MODE))


def _where(
    tree: bytes, starts: tuple[int, ...], name: bytes, mode: bytes
) -> tuple[int, bytes | None]:
    """Where in a tree (its entries' `starts`) an entry `name` of this kind (a folder's, or
    anything else's) sorts, and the mode of the one there, or None. Git sorts entries by name,
    a folder's as if it ended in a slash."""
    import bisect

    def entry(i: int) -> tuple[bytes, bytes]:
        mode_i, _sep, name_i = tree[starts[i] : tree.index(b"\0", starts[i])].partition(b" ")
        return mode_i, name_i

    def key(i: int) -> bytes:
        mode_i, name_i = entry(i)
        return name_i + b"/" if mode_i == FOLDER_MODE else name_i

    count = len(starts) - 1
    wanted = name + b"/" if mode == FOLDER_MODE else name
    at = bisect.bisect_left(range(count), wanted, key=key)
    return at, entry(at)[0] if at < count and key(at) == wanted else None


@functools.lru_cache(maxsize=8)
def _entry_starts(tree: bytes, size: int) -> tuple[int, ...]:
    """Where each entry of a tree's bytes starts (mode, space, name, NUL, id), and its end.
    Kept for the few trees of a write: a big folder's is looked in more than once."""
    starts, at = [], 0
    while at < len(tree):
        starts.append(at)
        at = tree.index(b"\0", at) + 1 + size
    if at != len(tree):
        raise TalkbookError("git: a malformed tree")
    return (*starts, at)


CANONICAL_MODES = {b"100644", b"100755", b"120000", b"160000", FOLDER_MODE}


@functools.lru_cache(maxsize=8)
def _canonical(tree: bytes, size: int) -> bool:
    """Whether a tree's entries are as git writes them, which _where's bisection needs: known
    modes, plain names (not "", ".", "..", none with a slash), each name once, in git's order.
    A tree anyone pushed may be otherwise (git fetch takes one out of order, or with a
    folder's mode as 040000): a write then commits through git, which writes it anew."""
    starts = _entry_starts(tree, size)
    names: set[bytes] = set()
    before = b""
    for at in starts[:-1]:
        mode, sep, name = tree[at : tree.index(b"\0", at)].partition(b" ")
        key = name + b"/" if mode == FOLDER_MODE else name
        plain = name not in (b"", b".", b"..") and name.lower() != b".git" and b"/" not in name
        if mode not in CANONICAL_MODES or not sep or not plain:
            return False
        if key <= before or name in names:
            return False
        names.add(name)
        before = key
    return True


def _tree_id(content: bytes, size: int) -> bytes:
    return _digest(size)(b"tree %d\0" % len(content) + content).digest()


def _store_trees(root: Path, trees: list[bytes], top: bytes) -> str:
    """Write these trees to the object store in one `git unpack-objects`, handed them as the
    pack `git push` would send (gitformat-pack: a header, each object's type and size, its
    bytes deflated, a checksum of it all); `top`'s id, in hexadecimal."""
    import struct
    import zlib

    parts = [b"PACK", struct.pack(">II", 2, len(trees))]
    for content in trees:
        parts += [_pack_entry_head(PACKED_TREE, len(content)), zlib.compress(content, 0)]
    pack = b"".join(parts)
    # Stored as they come: deflating the big folders costs more than the room it saves, their
    # bytes being mostly object ids (and loose objects are packed anyway, by `git gc`).
    pack += _digest(len(top))(pack).digest()
    _git_output(root, "-c", "core.looseCompression=0", "unpack-objects", "-q", given=pack)
    return top.hex()


PACKED_TREE = 2  # an object's type in a pack: 1 commit, 2 tree, 3 blob, 4 tag


def _pack_entry_head(kind: int, size: int) -> bytes:
    """Type and size of a packed object: the size 4 bits, then 7 bits a byte; the high bit of a
    byte says another follows."""
    head = bytearray([kind << 4 | size & 0x0F])
    size >>= 4
    while size:
        head[-1] |= 0x80
        head.append(size & 0x7F)
        size >>= 7
    return bytes(head)


def _digest(size: int):
    """The object hash of a repository whose ids are `size` bytes: SHA-1 or SHA-256."""
    import hashlib

    return hashlib.sha1 if size == 20 else hashlib.sha256


LOOSE_SAMPLE = "17"  # the one folder of loose objects `git gc --auto` counts
LOOSE_LIMIT = 27  # more there than ceil(gc.auto / 256) = ceil(6700 / 256): time to pack


def _collect_if_due(root: Path) -> None:
    """`git maintenance run --auto`, as `git commit` runs it after each commit, but only when
    git's own sample says there are enough loose objects to pack (git would do nothing else
    then; it decides again, by the repository's settings)."""
    import subprocess

    try:
        names = os.listdir(git_dir(root) / "objects" / LOOSE_SAMPLE)
    except OSError:
        return
    if sum(1 for name in names if len(name) in (38, 62)) <= LOOSE_LIMIT:
        return
    subprocess.run(
        ["git", "-C", str(root), "maintenance", "run", "--auto", "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _run_git(root: Path, args: list[str], env: dict[str, str]) -> str:
    """git with `-c` options GitPython cannot pass; raises with git's stderr on failure."""
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(root), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise TalkbookError(done.stderr.strip() or done.stdout.strip() or "git failed")
    return done.stdout


def _first_line(exc: Exception) -> str:
    stderr = getattr(exc, "stderr", "") or str(exc)
    lines = [line.strip() for line in str(stderr).splitlines() if line.strip()]
    return lines[0].removeprefix("stderr: ").strip("'") if lines else type(exc).__name__


def revisions(root: Path, rel_path: str) -> list[Revision]:
    """Every commit that touched a path, oldest first."""
    repo = _repo(root)
    if not repo.head.is_valid():
        return []
    fmt = "%H%x1f%an%x1f%ae%x1f%aI%x1f%s"
    # --full-history: a change that reached the file through a merge is part of its story too
    out = repo.git.log("--format=" + fmt, "--reverse", "--full-history", "--", rel_path)
    revs = []
    for line in out.splitlines():
        sha, name, email, when, message = line.split("\x1f")
        revs.append(Revision(sha, name, email, when, message, rel_path))
    return revs


def blob_at(root: Path, sha: str, rel_path: str) -> bytes | None:
    repo = _repo(root)
    try:
        return (repo.commit(sha).tree / rel_path).data_stream.read()
    except KeyError:
        return None  # removed in that commit


def last_commits(root: Path) -> dict[str, str]:
    """For every tracked path, the sha of the last commit that changed it (one git call)."""
    repo = _repo(root)
    if not repo.head.is_valid():
        return {}
    out = repo.git.log("--format=@%H", "--name-only", "--no-renames")
    latest: dict[str, str] = {}
    sha = ""
    for line in out.splitlines():
        if line.startswith("@"):
            sha = line[1:]
        elif line and line not in latest:
            latest[line] = sha
    return latest


def staged_entries(root: Path) -> list[tuple[str, str]]:
    """(git mode, path) of everything staged: added, changed, or changed in type."""
    repo = _repo(root)
    # --raw shows the new mode, so a staged symlink (120000) is seen; -z: paths as they are
    out = repo.git.diff("--cached", "--raw", "-z", "--no-renames", "--diff-filter=ACMT")
    fields = [f for f in out.split("\0") if f]
    return [(fields[i].split()[1], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]


def staged_blob(root: Path, rel_path: str) -> bytes:
    repo = _repo(root)
    return repo.git.show(f":{rel_path}", stdout_as_string=False)


def first_added(root: Path, *pathspecs: str) -> dict[str, dt.date]:
    """For every path (under `pathspecs`, when given), the date of the commit that added it, in
    one `git log`. Run without GitPython (its import costs more than the log), and limited to
    the paths asked for: a log of every file of a large workspace is ten times slower. With
    --full-history, no commit is simplified away: the same dates as a log of everything."""
    return first_added_later(root, *pathspecs)()


def first_added_later(root: Path, *pathspecs: str) -> Callable[[], dict[str, dt.date]]:
    """first_added, its `git log` started now and read when the answer is asked for: a command
    starts it before it loads the index (`due`), and git runs meanwhile. Started from this
    thread, before any fork: a process forked later holds only the pipe's reading end."""
    import subprocess

    args = ["log", "--format=@%aI", "--name-only", "--diff-filter=A", "--no-renames"]
    if pathspecs:
        args += ["--full-history", "--", *pathspecs]
    env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C"}  # git's messages as _git_output's
    running = subprocess.Popen(
        ["git", "-C", str(root), *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip

    @functools.cache
    def answer() -> dict[str, dt.date]:
        out, err = running.communicate()
        if running.returncode != 0:
            if head(root) is None:
                return {}  # no commit yet
            detail = err.decode("utf-8", "replace").strip()
            raise TalkbookError(detail or "git log failed")
        return _added(out.decode("utf-8", "replace"))

    return answer


LAST_YEAR_COUNTED = 9000  # a later commit date is none a deadline can be counted from


def _added(out: str) -> dict[str, dt.date]:
    """Each path's day from `git log --format=@%aI --name-only`. Any author can set a commit's
    date: one git shows past year 9999 (not ISO), or that leaves no room to add a cadence's
    days, leaves its paths out (unknown: the command's own day stands in for it)."""
    added: dict[str, dt.date] = {}
    day: dt.date | None = dt.date.today()
    for line in out.splitlines():
        if line.startswith("@"):
            try:
                day = dt.date.fromisoformat(line[1:11])
            except ValueError:
                day = None
            if day is not None and day.year > LAST_YEAR_COUNTED:
                day = None
        elif line:
            if day is None:
                added.pop(line, None)  # first added on a day none can count from
            else:
                added[line] = day  # log runs newest first: the last seen is the first added
    return added


# -- the whole history in one pass, for audit -------------------------------------------------
class Change(NamedTuple):
    """One path as a commit left it: mode and blob id after the commit (zeros when deleted)."""

    status: str  # A, M, D or T (type changed, e.g. a file became a symlink)
    mode: str  # 100644, 100755, 120000 (symlink), 160000 (submodule), 000000 (deleted)
    blob: str
    path: str


class LoggedCommit(NamedTuple):
    sha: str
    name: str
    email: str
    message: str  # in full, every line
    changes: tuple[Change, ...]
    parents: tuple[str, ...] = ()


_RAW = r"^:[0-7]{6} ([0-7]{6}) [0-9a-f]{40,64} ([0-9a-f]{40,64}) ([A-Z])[0-9]*$"


def history(root: Path, *pathspecs: str) -> list[LoggedCommit]:
    """Every commit reachable from HEAD, parents first, with the mode and blob id of each path
    it added, changed or deleted: one `git log --raw -z`. A merge is read against its first
    parent. Fields are NUL-separated (git allows no NUL in them); anything else is refused."""
    repo = _repo(root)
    if not repo.head.is_valid():
        return []
    out = repo.git.log(
        "--reverse", "--topo-order", "--root", "--raw", "-z", "--no-renames", "--no-abbrev",
        "--diff-merges=first-parent", "--format=%H %P%x00%an%x00%ae%x00%B", "--", *pathspecs,
        stdout_as_string=False,
    )  # fmt: skip
    tokens: list[str] = out.decode("utf-8", "replace").split("\0")
    commits: list[LoggedCommit] = []
    i = 0
    while i + 3 < len(tokens):
        (sha, *parents), (name, email, message) = tokens[i].split(), tokens[i + 1 : i + 4]
        if not re.fullmatch(r"[0-9a-f]{40,64}", sha):
            raise TalkbookError(
                _("git log: unexpected output near commit {sha!r}").format(sha=sha[:12])
            )
        i += 4
        changes = []
        while i + 1 < len(tokens) and (raw := re.match(_RAW, tokens[i].strip("\n"))):
            mode, blob, status = raw.groups()
            changes.append(Change(status, mode, blob, tokens[i + 1]))
            i += 2
        commit = LoggedCommit(
            sha, name, email, message.rstrip("\n"), tuple(changes), tuple(parents)
        )
        commits.append(commit)
    return commits


def read_blob(root: Path, blob: str) -> bytes:
    """A blob by id, through GitPython's long-lived `git cat-file --batch`."""
    return _repo(root).odb.stream(bytes.fromhex(blob)).read()


def blob_id(data: bytes, like: str) -> str:
    """The id git gives these bytes as a blob, in the hash of the id `like` (SHA-1 or SHA-256)."""
    import hashlib

    digest = hashlib.sha1 if len(like) == 40 else hashlib.sha256
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


# -- several officers: merge state, fetch, merge, push --------------------------------------------
def unfinished(root: Path) -> str | None:
    """The git operation left unfinished in this clone (merge, rebase, …), or None."""
    folder = git_dir(root)  # a file check, without GitPython: every command asks
    return next((what for name, what in UNFINISHED.items() if (folder / name).exists()), None)


def unmerged_stages(root: Path, rel_path: str) -> dict[int, str]:
    """Blob ids of the stages of an unmerged path: 1 base, 2 ours, 3 theirs."""
    out = _repo(root).git.ls_files("-u", "-z", "--", rel_path)
    stages = {}
    for entry in filter(None, out.split("\0")):
        info, _sep, _path = entry.partition("\t")
        _mode, blob, stage = info.split()
        stages[int(stage)] = blob
    return stages


def unmerged_paths(root: Path) -> list[str]:
    out = _repo(root).git.diff("--name-only", "--diff-filter=U", "-z")
    return sorted(set(filter(None, out.split("\0"))))


def stage(root: Path, rel_paths: list[str]) -> None:
    _repo(root).git.add("--", *rel_paths)


def fetch(root: Path, remote: str) -> str | None:
    """Fetch `remote`; the upstream ref of the current branch there, or None if it has none."""
    repo = _repo(root)
    try:
        repo.git.fetch("--quiet", remote)
    except Exception as exc:  # git.GitCommandError
        raise TalkbookError(
            _("git fetch {remote} failed: {detail}").format(remote=remote, detail=_first_line(exc))
        ) from None
    branch = repo.active_branch.name
    ref = f"refs/remotes/{remote}/{branch}"
    try:
        repo.git.rev_parse("--verify", "-q", ref)
    except Exception:
        return None
    return ref


def merge(root: Path, upstream: str, author: Author, signer: Signer) -> bool:
    """Merge `upstream` into HEAD with the merge driver, signed; False when conflicts remain."""
    options, env = signer.git_options()
    env |= _identity_env(author)
    try:
        _run_git(root, [*options, "merge", "--no-edit", "-S", upstream], env)
    except TalkbookError:
        if unfinished(root) == "merge":
            return False
        raise
    return True


def commit_merge(root: Path, author: Author, signer: Signer) -> None:
    """Conclude a merge whose conflicts were resolved: one signed commit."""
    options, env = signer.git_options()
    env |= _identity_env(author)
    try:
        _run_git(root, [*options, "commit", "--no-edit", "--no-verify", "-S"], env)
    except TalkbookError as exc:
        raise TalkbookError(
            _("git commit failed: {detail}").format(detail=str(exc).splitlines()[0])
        ) from None


def push(root: Path, remote: str) -> bool:
    """Push the current branch; False when the remote moved on (fetch and merge again)."""
    branch = _repo(root).active_branch.name
    try:
        _run_git(root, ["push", "--quiet", remote, f"HEAD:refs/heads/{branch}"], {})
    except TalkbookError as exc:
        if "rejected" in str(exc) or "fetch first" in str(exc) or "non-fast-forward" in str(exc):
            return False
        raise TalkbookError(
            _("git push {remote} failed: {detail}").format(
                remote=remote, detail=str(exc).splitlines()[0]
            )
        ) from None
    return True


def _identity_env(author: Author) -> dict[str, str]:
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    if fixed := os.environ.get("TALKBOOK_NOW"):  # the demo and tests set the clock; see App.now
        stamp = dt.datetime.fromisoformat(fixed).strftime("%Y-%m-%dT%H:%M:%S")
        env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return env


# -- crash safety: what a write's journal records, and how `doctor` puts paths back ---------------
def git_dir(root: Path) -> Path:
    """This clone's git folder (`.git`, or where a `.git` file points)."""
    dot_git = root / ".git"
    if dot_git.is_dir() and not dot_git.is_symlink():
        return dot_git
    return Path(_repo(root).git_dir)


def head(root: Path) -> str | None:
    """The commit HEAD names, or None in a repository without commits. Read from the files git
    keeps it in when they are the plain kind (HEAD naming a branch whose ref is a loose file,
    or a detached HEAD): every write asks, several times. Anything else (packed refs, reftable,
    a worktree, GIT_DIR set) is asked of git."""
    if (found := _head_from_files(root)) is not None:
        return found
    import subprocess  # only here: a warm read that finds HEAD in the files starts no process

    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return done.stdout.strip() or None


_OBJECT_NAME = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\n?")
_BRANCH_REF = re.compile(r"ref: (refs/heads/[\w./-]+)\n?")


def _head_from_files(root: Path) -> str | None:
    """HEAD's commit as .git/HEAD and the loose ref file it names say, or None (ask git)."""
    if any(name in os.environ for name in ("GIT_DIR", "GIT_COMMON_DIR", "GIT_WORK_TREE")):
        return None
    dot_git = root / ".git"
    try:
        if not stat.S_ISDIR(os.lstat(dot_git).st_mode):
            return None
        text = _plain_file(dot_git / "HEAD")
        if branch := _BRANCH_REF.fullmatch(text):
            ref = branch.group(1)
            if any(part in ("", ".", "..") for part in ref.split("/")):
                return None
            text = _plain_file(dot_git / ref)
    except (OSError, UnicodeDecodeError):
        return None
    return text.strip() if _OBJECT_NAME.fullmatch(text) else None


def _plain_file(path: Path) -> str:
    """A small regular file's ASCII text; OSError for anything else (a symlink, a FIFO): git
    reads those its own way."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return os.read(fd, 256).decode("ascii")
    finally:
        os.close(fd)


def _git_started(root: Path, *args: str):
    """git running on its own (stdin and stdout closed): see _git_finished."""
    import subprocess

    env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C"}
    return subprocess.Popen(
        ["git", "-C", str(root), *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def _git_finished(process) -> None:
    """Wait for a git that _git_started; TalkbookError with its stderr when it failed."""
    _out, err = process.communicate()
    if process.returncode != 0:
        detail = err.decode("utf-8", "replace").strip()
        raise TalkbookError(detail or f"{process.args[3]} failed")


def _git_output(root: Path, *args: str, given: bytes | None = None) -> bytes:
    """git's stdout as bytes (`given` on its stdin); TalkbookError with its stderr when it
    fails. The write path and the read commands run git this way: importing GitPython costs
    more than their git calls."""
    import subprocess

    env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C"}  # git's messages as GitPython had them
    command = ["git", "-C", str(root), *args]
    if given is None:
        done = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, env=env)
    else:
        done = subprocess.run(command, capture_output=True, input=given, env=env)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise TalkbookError(detail or f"git {args[0]} failed")
    return done.stdout


def object_ids(root: Path, specs: list[str]) -> dict[str, str | None]:
    """The object id of each `rev:path` spec (None where it names nothing): one
    `git cat-file --batch-check` for all of them."""
    odd = [spec for spec in specs if "\r" in spec or "\n" in spec]  # git reads a spec a line
    plain = [spec for spec in specs if spec not in odd]
    found: dict[str, str | None] = {spec: _listed_id(root, spec) for spec in odd}
    if not plain:
        return found
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch-check=%(objectname)"],
        input="\n".join(plain) + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    found |= {
        spec: None if line.endswith(" missing") else line.strip()
        for spec, line in zip(plain, lines, strict=False)
    }
    return found


def _listed_id(root: Path, spec: str) -> str | None:
    """The object id of a `rev:path` spec whose path git would not read whole from a line (a
    CR or newline in it), as `ls-tree` lists it; None if the revision holds nothing there."""
    rev, _sep, path = spec.partition(":")
    listed = _git_output(
        root, "--literal-pathspecs", "ls-tree", "-z", "--full-tree", rev, "--", path
    )
    for entry in filter(None, listed.split(b"\0")):
        info, _tab, name = entry.partition(b"\t")
        if name == os.fsencode(path):
            return info.split()[2].decode("ascii")
    return None


def blobs_at(root: Path, rev: str, rel_paths: list[str]) -> dict[str, str]:
    """Blob id of each of these paths in `rev` (paths it does not hold are left out)."""
    if not rel_paths:
        return {}
    listed = _git_output(root, "ls-tree", "-z", "--full-tree", rev, "--", *rel_paths)
    out = listed.decode("utf-8", "surrogateescape")
    found = {}
    for entry in filter(None, out.split("\0")):
        info, _sep, path = entry.partition("\t")
        _mode, kind, blob = info.split()
        if kind == "blob":
            found[path] = blob
    return found


def committed(root: Path, rel_path: str, at: str | None = None) -> bytes | None:
    """The bytes HEAD (or commit `at`) holds at this path, or None (nothing, or not a file): one
    `git cat-file --batch` for `HEAD:path`, which also reads the folders along the path for the
    commit a write makes next (_read_at). A path that spec would read otherwise (a newline, a
    leading ./) is looked up with ls-tree first."""
    start = at or head(root)
    if start is None:
        return None
    if not rel_path or "\n" in rel_path or "\r" in rel_path or rel_path.startswith(("./", "../")):
        blob = blobs_at(root, start, [rel_path]).get(rel_path)
        return _git_output(root, "cat-file", "blob", blob) if blob else None
    name = os.fsencode(rel_path)
    found = _read_at(root, start, [name], [name[:at] for at in _folder_ends(name)])[0]
    return found[1] if found is not None and found[0] == b"blob" else None


def touched_since(root: Path, since: str, rel_paths: list[str]) -> list[str]:
    """Commits after `since` up to HEAD that changed any of these paths, newest first (empty
    when HEAD does not descend from `since`)."""
    repo = _repo(root)
    try:
        repo.git.merge_base("--is-ancestor", since, "HEAD")
    except Exception:  # git.GitCommandError: not an ancestor, or an unknown commit
        return []
    return repo.git.log("--format=%H", f"{since}..HEAD", "--", *rel_paths).split()


def differing(root: Path, rel_paths: list[str]) -> list[str]:
    """Those of these paths whose index entry or working file differs from HEAD."""
    if not rel_paths:
        return []
    out = _repo(root).git.status("--porcelain", "-z", "--untracked-files=all", "--", *rel_paths)
    return sorted({entry[3:] for entry in out.split("\0") if len(entry) > 3})


def restore_index(root: Path, rel_paths: list[str]) -> None:
    """Index entries of these paths as HEAD has them (what a failed commit had staged goes)."""
    if not rel_paths or not head(root):
        return
    repo = _repo(root)
    if repo.git.diff("--cached", "--name-only", "HEAD", "--", *rel_paths).strip():
        repo.git.reset("-q", "HEAD", "--", *rel_paths)


def restore_to_head(root: Path, rel_paths: list[str]) -> list[str]:
    """Index entries and working files of these paths as HEAD has them; a path HEAD does not
    hold is unstaged and its file removed (regular files only). Returns the paths changed."""
    from talkbook.fsutil import regular_file

    changed = differing(root, rel_paths)
    if not changed:
        return []
    repo = _repo(root)
    repo.git.reset("-q", "HEAD", "--", *changed)
    kept = blobs_at(root, "HEAD", changed) if head(root) else {}
    if kept:
        repo.git.checkout("-q", "HEAD", "--", *kept)
    for rel in changed:
        if rel in kept:
            continue
        path = regular_file(root, root / rel)
        path.unlink(missing_ok=True)
        for folder in path.parents:  # a talk's folder made for the file goes with it
            if folder == root or not folder.is_relative_to(root):
                break
            try:
                folder.rmdir()
            except OSError:
                break
    return changed
