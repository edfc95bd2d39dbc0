"""Where reports go: `build/reports/` under the workspace root, or a file the user names.

Contract: `reports_folder(root)` makes (or checks) `build/` and `build/reports/` as real
folders of this user, each made owner-only (0700), `build/reports/` kept so (and rid of the
plaintext temp files a killed run left in it), and returns it;
`write(folder, name, data, root)` writes one report atomically (fsutil.atomic_write), created
0600 so it is never readable by others, not even while it is written. `write_out(root, path,
data)` writes where `--out` says, refusing a path inside the workspace anywhere but under
`build/`: a report is plaintext, and the rest of the tree is committed.

Security invariant: no report is written through a symlink inside the workspace (someone with
push access could commit `build -> /tmp`), nor into a folder others can read.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from talkbook.errors import TalkbookError, UnsafePath
from talkbook.fsutil import atomic_write, inside, stale_temp_files
from talkbook.i18n import _

FOLDER = ("build", "reports")
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def reports_folder(root: Path) -> Path:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in FOLDER:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, FOLDER_MODE, dir_fd=fd)
            try:
                step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:  # ELOOP: a symlink; ENOTDIR: a file
                raise UnsafePath(
                    "/".join(FOLDER[: FOLDER.index(part) + 1]), _("not a folder")
                ) from None
            os.close(fd)
            fd = step
            info = os.fstat(fd)
            if info.st_uid != os.getuid():
                raise UnsafePath("/".join(FOLDER), _("a folder owned by someone else"))
            if part == FOLDER[-1] and stat.S_IMODE(info.st_mode) != FOLDER_MODE:
                os.fchmod(fd, FOLDER_MODE)  # build/ may hold other things: made 0700, not changed
    finally:
        os.close(fd)
    folder = root.joinpath(*FOLDER)
    for stale in stale_temp_files(folder):  # plaintext a killed run left half-written
        with contextlib.suppress(OSError):
            stale.unlink()
    return folder


def write_out(root: Path, path: Path, data: bytes) -> Path:
    """Write a report where --out says; inside the workspace only under build/, and then
    without following a symlink on the way."""
    absolute = Path(os.path.abspath(path))
    # By name first: `build/x.html` with a committed `build -> /tmp/…` is inside the workspace
    # (and refused by atomic_write's symlink check), not "outside" once the link is resolved.
    where = inside(root, absolute)
    if where is None:  # a link outside that leads in (`/tmp/l -> ws/cadres`) counts as inside
        where = inside(root, absolute.parent.resolve() / absolute.name)
    if where is None:
        atomic_write(absolute, data, mode=FILE_MODE)
        return absolute
    if where.parts[:1] != ("build",) or len(where.parts) < 2:
        raise TalkbookError(
            _("--out {path}: inside the workspace only build/ may hold a report").format(
                path=where.as_posix()
            )
        )
    _ignored(root, where.as_posix())
    atomic_write(root / where, data, mode=FILE_MODE, root=root)
    return root / where


def write(folder: Path, name: str, data: bytes, root: Path) -> Path:
    """One report into the reports folder (made by reports_folder)."""
    path = folder / name
    _ignored(root, path.relative_to(root).as_posix())
    atomic_write(path, data, mode=FILE_MODE, root=root)
    return path


def _ignored(root: Path, rel: str) -> None:
    """A plaintext report goes only where git ignores it: not over a tracked file (anyone who
    can push may `git add -f build/reports/coverage.md`), nor where a pushed .gitignore no
    longer keeps build/ out — a `git commit -a` or `add -A` would publish it."""
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "-q", "--", rel],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode == 1:  # 0: ignored; 128: git could not tell (no repository)
        raise UnsafePath(rel, _("not ignored by git: a report there could be committed"))
