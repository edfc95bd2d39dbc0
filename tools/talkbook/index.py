"""The encrypted index: the front matter of every file the user can decrypt, kept between runs.

`catalog(app, paths)` is what `catalog.load` returns: each file of the working tree is looked
at (lstat), and decrypted again only when its bytes changed since the index last saw it. A
cheap stat fingerprint (size, mtime_ns, inode, ctime_ns) decides whether to hash the file; the
SHA-256 of the ciphertext decides whether to decrypt it. So the index is right after
`talkbook edit`, a hand edit with the age CLI, a pull, a checkout or a merge; files gone drop
out. A fingerprint taken within RACY_NS of its file's last change is not kept (git's "racily
clean" entries): the next run hashes that file again.

Where: `.talkbook/index-<key id>-<language>.age` at the workspace root (folder 0700, file 0600,
one file per identity and language: findings are kept as text), ignored by git (`.gitignore`
from init, and `.git/info/exclude` for older workspaces). Written with fsutil.atomic_write: two
commands refreshing at once leave one of their indexes (the last writer's), a kill leaves the
old one or none.

Security invariant: the index is encrypted to the identity's own public keys and authenticated
with an HMAC whose key is derived from the identity's private key material; the pinned root
commit of the workspace and the format version are inside what it authenticates. Anyone can
encrypt a file to a public key, so decrypting is not enough: an index that fails the HMAC,
names another root, an older format or other schemas is damaged, foreign or out of date, and
is rebuilt, never trusted. The body is `marshal` data (plain dicts, lists, strings and numbers;
marshal runs no code, unlike pickle, and it is read only after the HMAC proved the body is
this identity's own; its format version is in the magic line, so another Python rebuilds); the
front matter is JSON-typed by models.to_plain (dates are ISO strings), so what comes back is
what `models.parse` and the schema check give. With no secret to key the
HMAC (a passphrase-only keyring) or no public key to encrypt to (post-quantum keys only) there
is no index: every file is decrypted, as before. A key the talkbook agent holds answers the
HMAC key itself (AgentClient.derive), without giving the key out.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import hmac
import json
import marshal
import os
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkbook import catalog as loader
from talkbook.errors import TalkbookError
from talkbook.i18n import language
from talkbook.models import Document
from talkbook.validation import Finding

if TYPE_CHECKING:
    from talkbook.crypto import Keyring

FORMAT = 2  # 2: marshal instead of JSON (a third of a warm load went on json.loads)
FOLDER = ".talkbook"
_PYTHON = "{}.{}".format(*sys.version_info[:2])
MAGIC = f"talkbook-index marshal-{marshal.version} py{_PYTHON}\n".encode()
RACY_NS = 2_000_000_000  # a file changed this recently may change again within one mtime tick
EXCLUDE_LINE = "/.talkbook/"
LABEL = b"talkbook index key"


class Entry:
    """One file as the index knows it: its fingerprint, the hash of its bytes, and what
    reading it gave (front matter only), kept in the JSON shape it is saved in:
    [state, kind, meta, findings, message, reason] — a warm load builds nothing more from it
    than the items it hands out."""

    __slots__ = ("fingerprint", "digest", "raw")

    def __init__(self, fingerprint: list[int] | None, digest: str, raw: list[Any]) -> None:
        self.fingerprint, self.digest, self.raw = fingerprint, digest, raw

    @classmethod
    def of(cls, fingerprint: list[int] | None, digest: str, r: loader.Reading) -> Entry:
        findings = [[f.line, f.field, f.message] for f in r.findings]
        meta = r.doc.meta if r.doc is not None else None
        return cls(fingerprint, digest, [r.state, r.kind, meta, findings, r.message, r.reason])

    @property
    def state(self) -> str:
        return self.raw[0]

    def reading(self, rel: str) -> loader.Reading:
        state, kind, meta, findings, message, reason = self.raw
        found = tuple(Finding(rel, line, name, text) for line, name, text in findings)
        doc = Document(meta, "", rel) if meta is not None else None
        return loader.Reading(rel, kind, state, doc, None, found, message, reason)


@dataclass
class Summary:
    files: int = 0
    decrypted: int = 0  # decrypted in this run
    cached: int = 0  # answered from the index
    unreadable: int = 0
    rebuilt: str = ""  # why the index was not used: missing, damaged, foreign, outdated
    entries: dict[str, Entry] = field(default_factory=dict)


# -- the run ------------------------------------------------------------------------------------
def catalog(app, paths: list[Path] | None = None) -> loader.Catalog:
    """The catalog of `paths` (every encrypted file when None), refreshed through the index."""
    with _no_gc():
        return _catalog(app, paths)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cyclic collector while a large index is decoded: it would walk the
    objects being built over and over (they hold no cycles), a third of a warm load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _catalog(app, paths: list[Path] | None) -> loader.Catalog:
    ws = app.workspace
    summary = refresh(app)
    wanted = None if paths is None else {ws.relative(p) for p in paths}
    result = loader.Catalog()
    for rel, entry in summary.entries.items():
        if wanted is not None and rel not in wanted:
            continue
        fetch = functools.partial(_text, app, rel)
        state, kind, meta = entry.raw[:3]
        if state == loader.OK:
            result.add(loader.Item(kind, rel, meta=meta, fetch=fetch))
        else:
            loader.add_reading(result, entry.reading(rel), fetch)
    for rel in sorted((wanted or set()) - set(summary.entries)):  # not under cadres/ or talks/
        for pair in loader.working_tree(ws, [ws.root / rel]):
            loader.add_reading(result, loader.read(app.keyring, *pair), None)
    return result


def _text(app, rel: str) -> str:
    """A file's decrypted text, for the item whose body is asked for."""
    return app.vault.read_text(app.workspace.root / rel)


def refresh(app) -> Summary:
    """Bring the index up to date with the working tree; save it if anything changed."""
    ws = app.workspace
    keyring = app.keyring
    store = Store.open(ws.root, keyring)
    known, rebuilt = store.load() if store else ({}, "no key material for an index")
    fresh: dict[str, Entry] = {}
    todo: list[tuple[str, bytes, list[int] | None, str]] = []
    changed = bool(rebuilt)
    now = time.time_ns()
    listed = Listing(ws.root, store.folders if store else None)
    for rel, path in listed.files():
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue  # gone since its folder was listed
        if not stat.S_ISREG(info.st_mode):
            _refuse(ws.root, path)
        old = known.get(rel)
        fingerprint = _fingerprint(info, now)
        if old is not None and old.fingerprint == fingerprint and fingerprint is not None:
            fresh[rel] = old
            continue
        data = _read(ws.root, path)
        digest = hashlib.sha256(data).hexdigest()
        changed = changed or old is None or (old.fingerprint, old.digest) != (fingerprint, digest)
        if old is not None and old.digest == digest:
            fresh[rel] = Entry(fingerprint, digest, old.raw)
        else:
            todo.append((rel, data, fingerprint, digest))
            fresh[rel] = old or Entry(None, "", [])  # its place in the order, filled below
    done = loader.readings(keyring, [(rel, data) for rel, data, _, _ in todo], keep_text=False)
    for (rel, _, fingerprint, digest), reading in zip(todo, done, strict=True):
        fresh[rel] = Entry.of(fingerprint, digest, reading)
    summary = Summary(len(fresh), len(todo), len(fresh) - len(todo), rebuilt=rebuilt)
    summary.unreadable = sum(e.state == loader.UNREADABLE for e in fresh.values())
    summary.entries = fresh
    if store is not None and (
        changed or len(fresh) != len(known) or listed.folders != store.folders
    ):
        store.save(fresh, listed.folders)
    return summary


def _fingerprint(info: os.stat_result, now: int) -> list[int] | None:
    if now - info.st_mtime_ns < RACY_NS or now - info.st_ctime_ns < RACY_NS:
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns]


class Listing:
    """The files of Workspace.encrypted_files, by relative path, in its order, listed with
    os.scandir (pathlib costs more per file than all else a warm load does): the same rules
    as its globs `cadres/*.md.age` and `talks/*/*/*.age`, dot names included, folders that
    are symlinks listed too — and refused (UnsafePath) when a file below one is read, as
    fsutil.read_regular refuses it."""

    def __init__(self, root: Path, known: dict[str, Any] | None = None) -> None:
        self.root, self.base = root, str(root)
        self.known = known or {}  # talk folder → [mtime_ns, ctime_ns, inode, its .age names]
        self.folders: dict[str, list[Any]] = {}  # the same, as found now: saved with the index
        self.now = time.time_ns()

    def files(self) -> list[tuple[str, str]]:
        found = [
            (f"cadres/{name}", link)
            for name, link in self._names("cadres", top=True)
            if name.endswith(".md.age")
        ]
        for year, year_link in self._names("talks", top=True, folders=True):
            for talk, talk_link in self._names(f"talks/{year}", folders=True):
                prefix = f"talks/{year}/{talk}"
                linked, names = self._talk(prefix, year_link or talk_link)
                found += [(f"{prefix}/{name}", linked) for name in names]
        found.sort()
        for rel, link in found:
            if link:
                _refuse(self.root, f"{self.base}/{rel}")
        return [(rel, f"{self.base}/{rel}") for rel, _ in found]

    def _talk(self, rel: str, linked: bool) -> tuple[bool, list[str]]:
        """(whether it is reached through a symlink, the .age names in a talk's folder): as
        the index last listed them while the folder is unchanged (same mtime, ctime, inode;
        a name added, removed or renamed changes its mtime), listed again otherwise."""
        folder = f"{self.base}/{rel}"
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            return linked, []
        linked = linked or stat.S_ISLNK(info.st_mode)
        key = [info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
        cached = self.known.get(rel)
        if not linked and type(cached) is list and cached[:3] == key and type(cached[3]) is list:
            names = cached[3]
        else:
            names = [name for name, _ in self._names(rel) if name.endswith(".age")]
        settled = min(self.now - info.st_mtime_ns, self.now - info.st_ctime_ns) >= RACY_NS
        if not linked and settled:
            self.folders[rel] = [*key, names]
        return linked, names

    def _names(self, rel: str, top: bool = False, folders: bool = False) -> list[tuple[str, bool]]:
        """(name, whether the path to it passed a symlinked folder) of each entry."""
        folder = f"{self.base}/{rel}"
        try:
            linked = top and stat.S_ISLNK(os.lstat(folder).st_mode)
            with os.scandir(folder) as entries:
                return [
                    (e.name, linked or (folders and e.is_symlink()))
                    for e in entries
                    if not folders or e.is_dir()
                ]
        except (FileNotFoundError, NotADirectoryError):
            return []


def listing(root: Path) -> list[str]:
    return [rel for rel, _ in Listing(root).files()]


def _refuse(root: Path, path: str) -> None:
    """UnsafePath, as fsutil.read_regular words it, for what is no regular file of its own."""
    _read(root, path)


def _read(root: Path, path: str) -> bytes:
    from talkbook.fsutil import read_regular

    return read_regular(root, Path(path))


# -- the file -----------------------------------------------------------------------------------
def _key_material(keyring: Keyring) -> bytes | None:
    """The private key material in this process, as bytes: what only the identity's owner has."""
    parts: list[bytes] = []
    signing = getattr(keyring, "signing_key", None)
    if signing is not None and getattr(signing, "unprotected", None):
        parts.append(bytes(signing.unprotected))
    for identity in getattr(keyring, "identities", None) or []:
        text = str(identity)
        if text.upper().startswith("AGE-SECRET-KEY-"):
            parts.append(text.encode("ascii"))
    for hybrid in getattr(keyring, "hybrid_identities", None) or []:
        private = getattr(hybrid, "_x25519", None)
        if private is not None:
            parts.append(private.private_bytes_raw())
    return b"\0".join(sorted(parts)) if parts else None


def _secret(keyring: Keyring) -> bytes | None:
    """HMAC-SHA256(LABEL, private key material): computed here, or by the agent holding the
    key (it answers the same question without giving the key out)."""
    agent = getattr(keyring, "agent", None)
    if agent is not None:
        try:
            return bytes(agent.derive(LABEL))
        except TalkbookError:
            return None
    material = _key_material(keyring)
    return hmac.new(LABEL, material, "sha256").digest() if material is not None else None


@functools.cache
def _rules() -> str:
    """What a reading depends on besides the file: the schemas and the package version."""
    from talkbook import __version__
    from talkbook.validation import SCHEMA_DIR

    digest = hashlib.sha256(__version__.encode())
    for kind in ("profile", "plan", "record"):
        digest.update((SCHEMA_DIR / f"{kind}.schema.json").read_bytes())
    return digest.hexdigest()


class Store:
    """The index file of one identity in one workspace."""

    def __init__(self, root: Path, keyring: Keyring, recipients: list[str], secret: bytes):
        self.root, self.keyring, self.recipients = root, keyring, recipients
        self.folder = root / FOLDER
        key_id = hashlib.sha256("\n".join(sorted(recipients)).encode()).hexdigest()[:16]
        # Findings are cached as text in the reader's language: one index per language.
        self.path = self.folder / f"index-{key_id}-{language()}.age"
        self.anchor = _pinned_root(root)
        self.folders: dict[str, Any] = {}  # talk folders as the index last listed them
        self.key = secret

    @classmethod
    def open(cls, root: Path, keyring: Keyring) -> Store | None:
        recipients = [k for k in getattr(keyring, "public_keys", []) if not k.startswith("age1pq1")]
        secret = _secret(keyring)
        if secret is None or not recipients:
            return None
        return cls(root, keyring, recipients, secret)

    def load(self) -> tuple[dict[str, Entry], str]:
        """The entries, and "" — or nothing, and why the index is rebuilt."""
        from talkbook.crypto import decrypt

        try:
            data = self._read_bytes()
        except FileNotFoundError:
            return {}, "missing"
        except OSError:
            return {}, "damaged"
        try:
            plaintext = decrypt(data, self.keyring)
        except TalkbookError:
            return {}, "damaged"
        start = len(MAGIC)
        head, mac, body = plaintext[:start], plaintext[start : start + 64], plaintext[start + 65 :]
        expected = hmac.new(self.key, body, "sha256").hexdigest().encode()
        if head != MAGIC or not hmac.compare_digest(mac, expected):
            return {}, "foreign"
        try:
            content = marshal.loads(body)
            if type(content) is not dict:
                return {}, "damaged"
            if content.get("format") != FORMAT or content.get("rules") != _rules():
                return {}, "outdated"
            if content.get("root") != self.anchor:
                return {}, "foreign"
            entries = {rel: _entry(raw) for rel, raw in content["entries"].items()}
            folders = content.get("folders", {})
            self.folders = folders if type(folders) is dict else {}
            return entries, ""
        except (ValueError, EOFError, TypeError, KeyError, AttributeError):
            return {}, "damaged"

    def _read_bytes(self) -> bytes:
        """The index, if the folder is ours and the file a regular one (no symlink followed)."""
        self._check_folder(create=False)
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OSError("not a regular file")
            return handle.read()

    def _check_folder(self, create: bool) -> None:
        """`.talkbook/` is a real folder of this user's, owner-only; OSError otherwise."""
        try:
            info = os.lstat(self.folder)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(self.folder, 0o700)
            info = os.lstat(self.folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise OSError(f"{FOLDER} is not a folder of this user")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(self.folder, 0o700)

    def save(self, entries: dict[str, Entry], folders: dict[str, Any] | None = None) -> None:
        """Encrypt, authenticate and replace atomically; an index that cannot be written is
        only a cache: the command goes on without it."""
        from talkbook.crypto import encrypt
        from talkbook.fsutil import atomic_write, stale_temp_files

        content = {
            "format": FORMAT,
            "root": self.anchor,
            "rules": _rules(),
            "entries": {rel: _raw(entry) for rel, entry in sorted(entries.items())},
            "folders": folders or {},
        }
        body = marshal.dumps(content)
        mac = hmac.new(self.key, body, "sha256").hexdigest().encode()
        try:
            self._check_folder(create=True)
            _exclude(self.root)
            for stale in stale_temp_files(self.folder):
                stale.unlink(missing_ok=True)
            ciphertext = encrypt(MAGIC + mac + b"\n" + body, self.recipients)
            atomic_write(self.path, ciphertext, mode=0o600)
        except (OSError, TalkbookError):
            return


def _pinned_root(root: Path) -> str:
    """The workspace's founding commit, as trust pinned it ("" before it is pinned)."""
    from talkbook.gittrail import git_dir

    try:
        state = json.loads((git_dir(root) / "talkbook" / "trust.json").read_text("utf-8"))
    except (OSError, ValueError, TalkbookError):
        return ""
    return str(state.get("root", "")) if isinstance(state, dict) else ""


def _exclude(root: Path) -> None:
    """Keep `.talkbook/` out of git in a workspace whose .gitignore predates it."""
    from talkbook.gittrail import git_dir

    exclude = git_dir(root) / "info" / "exclude"
    try:
        text = exclude.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    if EXCLUDE_LINE in text.splitlines():
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as handle:
        handle.write(("" if not text or text.endswith("\n") else "\n") + EXCLUDE_LINE + "\n")


# -- entries as JSON ---------------------------------------------------------------------------
def _raw(entry: Entry) -> list[Any]:
    return [entry.fingerprint, entry.digest, *entry.raw]


def _entry(raw: Any) -> Entry:
    """An entry back from JSON; ValueError/TypeError for anything not of the shape written
    (the HMAC says who wrote it; this says it is of a shape logic can use). Fingerprint and
    digest are only ever compared: a wrong one means "changed", so they need no check."""
    fingerprint, digest, state, kind, meta, findings, message, reason = raw
    if state not in loader.STATES or type(kind) is not str:
        raise ValueError("entry")
    if (type(meta) is dict) != (state in (loader.OK, loader.UNFIT)) or (
        meta is not None and type(meta) is not dict
    ):
        raise ValueError("meta")
    if state != loader.OK:  # what a reading of it needs (an OK entry has no findings)
        if type(message) is not str or type(reason) is not str:
            raise ValueError("message")
        for line, name, text in findings:
            if type(line) is not int or type(name) is not str or type(text) is not str:
                raise ValueError("finding")
    return Entry(fingerprint, digest, raw[2:])
