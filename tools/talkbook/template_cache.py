"""Compiled report templates kept between commands, so a warm report does not compile again.

Contract: `Compiled(folder, key)` is a Jinja bytecode cache over `<workspace>/.talkbook/templates/`
(templating.environment takes it). An entry is named by the SHA-256 of everything the compiled
code depends on: the template's name, file and source, the Jinja, Python and talkbook versions
and the environment's options (`fingerprint`). Whatever goes wrong with an entry (missing,
damaged, foreign, a folder that is not ours), the template is compiled as if there were none:
a cache never fails a command.

Security invariant: an entry is code that runs without being compiled again, so one is loaded
only if (1) `.talkbook/` and its `templates/` are real folders of this user's, owner-only, reached
without following a symlink, the entry a regular file opened without following one, and (2) it
carries the HMAC-SHA256, under a key derived from the identity's private key (`for_app`), of its
name and code. Anyone who can push can put files under `.talkbook/` through a checkout (git
writes tracked paths there as this user), but cannot make the HMAC: such a file is ignored. The
code is what this environment compiled from that very source, so the sandbox's checks (which
Jinja's compiled code asks of the environment at run time) hold exactly as for a fresh compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import marshal
import os
import stat
import sys
import types
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket

from talkbook.fsutil import atomic_write, stale_temp_files
from talkbook.indexfile import FOLDER  # the owner-only folder of local, rebuildable state

SUBFOLDER = "templates"
MAGIC = b"talkbook-template 1\n"
LABEL = b"talkbook template cache"  # the key is the identity's secret, derived for this use
_MAC_SIZE = hashlib.sha256().digest_size
MOST = 4 << 20  # bytes: a report's compiled template is tens of kilobytes; a larger file is none
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class Compiled(jinja2.BytecodeCache):
    """The compiled templates of one workspace for one identity (hashable, equal by workspace
    and key: templating keeps one environment per templates folder and cache). A plain class,
    not a frozen dataclass: defining one costs every report command a millisecond."""

    __slots__ = ("root", "key")

    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root  # the workspace
        self.key = key

    def __repr__(self) -> str:
        return f"Compiled(root={self.root!r})"  # never the key: not in a traceback

    def __eq__(self, other: object) -> bool:
        if type(other) is not Compiled:
            return NotImplemented
        return (self.root, self.key) == (other.root, other.key)

    def __hash__(self) -> int:
        return hash((self.root, self.key))

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        entry = hashlib.sha256(
            "\0".join((fingerprint(environment, name), filename or "", source)).encode()
        ).hexdigest()
        bucket = Bucket(environment, entry, entry)
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        data = _read(self.root, bucket.key)
        if data is None or not data.startswith(MAGIC):
            return
        mac, body = data[len(MAGIC) : len(MAGIC) + _MAC_SIZE], data[len(MAGIC) + _MAC_SIZE :]
        if not hmac.compare_digest(mac, self._mac(bucket.key, body)):
            return  # damaged, or not written with this key: compiled afresh
        try:
            code = marshal.loads(body)
        except Exception:  # noqa: BLE001 — authentic but unreadable (another Python): compile
            return
        if type(code) is types.CodeType:
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is None:
            return
        body = marshal.dumps(bucket.code)
        with contextlib.suppress(OSError, ValueError):
            _write(self.root, bucket.key, MAGIC + self._mac(bucket.key, body) + body)

    def _mac(self, entry: str, body: bytes) -> bytes:
        return hmac.new(self.key, entry.encode() + b"\0" + body, "sha256").digest()


def fingerprint(environment: jinja2.Environment, name: str) -> str:
    """What Jinja's compiled code depends on besides the source: versions, the environment's
    class, code generator and options, whether this template autoescapes, the filters and
    tests it may name."""
    from talkbook import __version__

    escape = environment.autoescape
    return repr(
        (
            jinja2.__version__,
            sys.version,
            __version__,
            [f"{c.__module__}.{c.__qualname__}" for c in type(environment).__mro__],
            [f"{c.__module__}.{c.__qualname__}" for c in environment.code_generator_class.__mro__],
            getattr(environment.code_generator_class, "generation", None),
            [getattr(environment, option) for option in _OPTIONS],
            escape(name) if callable(escape) else escape,
            environment.finalize is not None,
            sorted(environment.extensions),
            sorted(environment.filters),
            sorted(environment.tests),
        )
    )


_OPTIONS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
    "sandboxed",
)


def for_app(app: Any) -> Compiled | None:
    """The cache for this workspace and identity; None when the identity yields no secret
    (then templates are compiled each time, as before)."""
    from talkbook.indexfile import identity_secret

    try:
        secret = identity_secret(app.keyring)
    except Exception:  # noqa: BLE001 — no key, no cache: never a reason to fail a report
        return None
    if secret is None:
        return None
    return Compiled(app.workspace.root, hmac.new(secret, LABEL, "sha256").digest())


# --------------------------------------------------------------------------- the folder
def _owned(fd: int) -> bool:
    """A folder of this user's that only this user may enter (as index.Store checks it)."""
    info = os.fstat(fd)
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) == 0o700
    )


@contextlib.contextmanager
def _folder(root: Path, create: bool) -> Any:
    """A descriptor of `.talkbook/templates/`, each step opened without following a symlink
    and checked to be ours and owner-only; OSError otherwise (`create`: the last step made)."""
    fds = [os.open(root / FOLDER, _DIR)]
    try:
        if not _owned(fds[-1]):
            raise OSError(f"{FOLDER} is not a folder of this user")
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(SUBFOLDER, 0o700, dir_fd=fds[-1])
        fds.append(os.open(SUBFOLDER, _DIR, dir_fd=fds[-1]))
        if not _owned(fds[-1]):
            raise OSError(f"{FOLDER}/{SUBFOLDER} is not a folder of this user")
        yield fds[-1]
    finally:
        for fd in fds:
            os.close(fd)


def _read(root: Path, entry: str) -> bytes | None:
    """An entry's bytes, or None (no entry, not a regular file, too large, a folder not ours)."""
    try:
        with _folder(root, create=False) as folder:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
            with os.fdopen(fd, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MOST:
                    return None
                return handle.read(MOST + 1)
    except OSError:
        return None


def _write(root: Path, entry: str, data: bytes) -> None:
    """Write an entry whole or not at all (fsutil.atomic_write), in the folder just checked to
    be ours and reached without a symlink; what a killed write left there goes first. Not as a
    workspace file (no `root`): a cache's write is no step of a command's (fsutil.checkpoint)."""
    with _folder(root, create=True):  # made if need be, and checked to be ours
        pass
    folder = root / FOLDER / SUBFOLDER
    for stale in stale_temp_files(folder):
        stale.unlink(missing_ok=True)
    atomic_write(folder / entry, data, mode=0o600)
