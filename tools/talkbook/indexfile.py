"""The index file: its columns (Columns), and how it is sealed, read and written (Store).

Its content is kept in columns, one list per field in path order (paths, digests, states),
and the readings (kind, front matter, findings) as marshal chunks of their own (their strings
shared within a chunk; chunk bounds set by the paths, see _ends), so that a save after a
change encodes again only the chunks it touched. The stamps and the talk folders as last
listed are in a stat file beside it (with the paths and digests again): what the sweeping
child compares the tree with, a third of the index's bytes, read there and not by a warm
read's parent, which reads it only when it must update. index.py keeps it right; this module
only holds, seals and opens it.

Where: `.talkbook/index-<key id>-<language>.age` at the workspace root (folder 0700, file 0600,
one file per identity and language: findings are kept as text), ignored by git (`.gitignore`
from init, and `.git/info/exclude` for older workspaces). Written with fsutil.atomic_write: two
commands refreshing at once leave one of their indexes (the last writer's), a kill leaves the
old one or none. Beside it, `index-….stat.age`, sealed the same way and bound to the HMAC of
the index it was saved with (written after it: one missing or bound to another index means
every file is hashed again and the next save writes it), and `index-….notes.age`: the entries
of files a command has just written (note_written), sealed the same way and bound to the HMAC
of the index they go over, so a write costs a small file rather than the whole index again;
notes over any other index (one saved since) are ignored, and the next save folds them in and
removes them.

Security invariant: the index is encrypted to the identity's own public keys and authenticated
with an HMAC whose key is derived from the identity's private key material; the pinned root
commit of the workspace and the format version are inside what it authenticates. Anyone can
encrypt a file to a public key, so decrypting is not enough: an index that fails the HMAC,
names another root, an older format or other schemas is damaged, foreign or out of date, and
is rebuilt, never trusted. The body is `marshal` data (plain dicts, lists, tuples, strings,
bytes and numbers; marshal runs no code, unlike pickle, and it is read only after the HMAC
proved the body is this identity's own — the readings' chunks are inside that body, so
decoding them later is no less proved; its format version is in the magic line, so another Python
rebuilds). Since only this code writes what the HMAC accepts, a load checks the columns'
types, lengths and states (cheap, whole lists at once) and not each entry again; a chunk is
reused on save only where each decoded chunk held the entries its bounds say (else every
chunk is encoded again), so a reading never moves to another path. The front
matter is JSON-typed by models.to_plain (dates are ISO strings), so what comes back is what
`models.parse` and the schema check give. With no secret to key
the HMAC (a passphrase-only keyring) or no public key to encrypt to (post-quantum keys only)
there is no index: every file is decrypted, as before. A key the talkbook agent holds answers
the HMAC key itself (AgentClient.derive), without giving the key out.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import hmac
import json
import marshal
import os
import stat
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkbook import catalog as loader
from talkbook import indexchunks
from talkbook.errors import TalkbookError
from talkbook.i18n import language
from talkbook.models import Document
from talkbook.validation import Finding

if TYPE_CHECKING:
    from talkbook.crypto import Keyring

# 3: columns, raw digests, stamps with the file mode, the readings as a blob decoded on demand
# and their strings shared (a third the size: less to decrypt, authenticate and decode)
# 4: the readings in chunks, so that a save after a change encodes only the chunks it touched
# 5: the stamps and the talk folders as marshal blobs, decoded where used: a warm read's parent
# never needs them (the sweeping child compares them), and they were most of a load's decoding
# 6: the stamps and the talk folders in a stat file of their own beside the index, so that the
# sweeping child reads a fraction of it
# 7: each chunk of readings a head part and a tail part (indexchunks): a talk's lists decoded
# only when its whole front matter is asked for
# 8: a record's follow-ups in the head. Chunks are reused as loaded: any change to what goes
# to the head or the tail (indexchunks.SPLIT, HEAD_LISTS, WAITING) takes a new format
# 9: a submitted plan's decisions in the head
# 10: a profile's lists (but its events and roles) in the tail
FORMAT = 10
CHUNK_BITS = 9
FOLDER = ".talkbook"
_PYTHON = "{}.{}".format(*sys.version_info[:2])
MAGIC = f"talkbook-index marshal-{marshal.version} py{_PYTHON}\n".encode()
EXCLUDE_LINE = "/.talkbook/"
LABEL = b"talkbook index key"
STAMPS_MARSHAL = 2  # marshal version of the stamps: no back-references, so bytes follow values
NOTES_MOST = 4 << 20  # bytes: the few dozen entries a write notes take tens of kilobytes
Stamp = tuple[int, int, int, int, int]  # st_mode, st_size, st_mtime_ns, st_ino, st_ctime_ns
# what reading a file gave, kept: (kind, meta) when there is nothing more to say of it, else
# [kind, meta, findings, message, reason]
Row = tuple[Any, ...] | list[Any]
NOTHING_SAID: tuple[list[Any], str, str] = ([], "", "")  # a short row's findings, message, reason


class Columns:
    """The index's content, in path order: `rels`, `stamps` (None for a racy one), `digests`
    (SHA-256 of the ciphertext), `states` (catalog.STATES), and the readings, kept as marshal
    chunks (see _ends) and decoded only when asked for (a warm run with nothing changed never
    is). A chunk whose entries a save finds unchanged and in place is written as it was read."""

    __slots__ = (
        "rels",
        "_stamps",
        "digests",
        "states",
        "_readings",
        "_heads",
        "_chunks",
        "_lengths",
        "_reuse",
        "_patches",
        "_noted_stamps",
    )

    def __init__(
        self,
        rels: list[str],
        stamps: list[Stamp | None] | bytes | Callable[[], bytes],
        digests: list[bytes],
        states: list[str],
        readings: list[Row] | None = None,
        chunks: list[bytes] | None = None,
    ) -> None:
        self.rels, self._stamps, self.digests, self.states = rels, stamps, digests, states
        self._readings, self._chunks = readings, chunks
        self._heads: list[tuple[list[Row], bytes]] | None = None  # each chunk's, decoded
        self._lengths: list[int] = []  # of each chunk, as decoded
        self._reuse: tuple[Columns, list[int | None]] | None = None  # (known, sources): _fill
        self._patches: list[tuple[int, bool, Row]] = []  # noted entries for readings: overlay
        self._noted_stamps: list[tuple[int, bool, Stamp | None]] = []  # the same for stamps

    @property
    def stamps(self) -> list[Stamp | None]:
        """Decoded on first use from the index's blob (a warm read's parent never uses them);
        a blob that is not one stamp or None per path gives none: every file is then hashed
        again, never misread."""
        if callable(self._stamps):  # in the stat file beside the index: read now
            self._stamps = self._stamps()
        if type(self._stamps) is bytes:
            noted = self._noted_stamps
            added = sum(1 for _, inserted, _ in noted if inserted)
            self._stamps = _decoded_list(self._stamps, len(self.rels) - added)
            _placed(self._stamps, noted)
            self._noted_stamps = []
        return self._stamps  # type: ignore[return-value]

    def stamps_blob(self) -> bytes:
        """The stamps as the index keeps them: the blob as loaded, if never decoded. Written
        in marshal's version 2, which has no back-references: equal stamps give equal bytes
        (see same_stamps)."""
        if callable(self._stamps):
            self._stamps = self._stamps()
        if type(self._stamps) is bytes and not self._noted_stamps:
            return self._stamps
        return marshal.dumps(self.stamps, STAMPS_MARSHAL)

    def same_stamps(self, stamps: list[Stamp | tuple[()]]) -> bool:
        """Whether `stamps` are the ones kept: their bytes against the blob as loaded, with
        nothing decoded (the sweeping child's usual case), else value by value."""
        blob = self.stamps_blob()
        return marshal.dumps(stamps, STAMPS_MARSHAL) == blob or stamps == self.stamps

    @classmethod
    def empty(cls) -> Columns:
        return cls([], [], [], [], [], None)

    def readings(self) -> list[Row]:
        """Each entry's reading whole; Damaged if the chunks do not hold one reading per
        path (a writer's bug)."""
        if self._readings is None:
            decoded: list[Row] = []
            for rows, tail in self._head_parts():
                decoded += indexchunks.merged(rows, tail)
            self._patched(decoded)
            if len(decoded) != len(self.rels):
                raise indexchunks.Damaged("readings")
            self._readings = decoded
        return self._readings

    def heads(self) -> tuple[list[Row], indexchunks.Tails | None, list[int] | None]:
        """The readings as a catalog is built from them: each chunk's head rows, with the
        noted entries (overlay) put in whole; their tails, decoded when asked for
        (indexchunks); and where each row was in the chunks (-1: noted; no list: each row is
        where it was). Or the readings whole, once decoded. Damaged as readings."""
        if self._readings is not None:
            return self._readings, None, None
        rows: list[Row] = []
        starts, blobs = [], []
        for part, tail in self._head_parts():
            starts.append(len(rows))
            blobs.append(tail)
            rows += part
        tails = indexchunks.Tails(starts, self._lengths, blobs)
        places: list[int] | None = None
        if self._patches:  # the chunks stay as loaded: the rows and their places move
            rows, places = list(rows), list(range(len(rows)))
            _placed(rows, self._patches)
            _placed(places, [(i, inserted, -1) for i, inserted, _ in self._patches])
        if len(rows) != len(self.rels):
            raise indexchunks.Damaged("readings")
        return rows, tails, places

    def readings_of(self, ns: list[int]) -> list[Row]:
        """Entries ns' readings whole, decoding only the tails they need (a write notes a
        few: the rest of the readings stays as loaded)."""
        if self._readings is not None:
            return [self._readings[n] for n in ns]
        rows, tails, places = self.heads()
        found = []
        for n in ns:
            row = rows[n]
            if len(row) == 3 and tails is not None:
                row = (row[0], tails.meta(n if places is None else places[n], row[1]))
            found.append(row)
        return found

    def stamps_of(self, ns: list[int]) -> list[Stamp | None]:
        """Entries ns' stamps; the noted ones' without reading the stat file (a write notes
        its files as racy: the stamps it keeps are the notes' own)."""
        if type(self._stamps) is not list and self._noted_stamps:
            added = sum(1 for _, inserted, _ in self._noted_stamps if inserted)
            marks: list[Any] = list(range(len(self.rels) - added))
            _placed(marks, [(i, inserted, (s,)) for i, inserted, s in self._noted_stamps])
            if all(type(marks[n]) is tuple for n in ns):
                return [marks[n][0] for n in ns]
        return [self.stamps[n] for n in ns]

    def _head_parts(self) -> list[tuple[list[Row], bytes]]:
        if self._heads is None:
            self._heads = [indexchunks.heads(chunk) for chunk in self._chunks or ()]
            self._lengths = [len(rows) for rows, _ in self._heads]
        return self._heads

    def overlay(self, noted: Columns) -> None:
        """Take the entries noted since this index was saved (Store.note): each replaces the
        entry of its path or goes in at its place in path order. Their readings join now if
        the chunks are decoded, else when they are; the chunks then no longer match the paths,
        so none is reused."""
        for rel, stamp, digest, state, row in zip(
            noted.rels, noted.stamps, noted.digests, noted.states, noted.readings(), strict=True
        ):
            i = bisect.bisect_left(self.rels, rel)
            inserted = not (i < len(self.rels) and self.rels[i] == rel)
            if inserted:
                self.rels.insert(i, rel)
                self.digests.insert(i, digest)
                self.states.insert(i, state)
            else:
                self.digests[i], self.states[i] = digest, state
            self._patches.append((i, inserted, row))
            self._noted_stamps.append((i, inserted, stamp))
        if isinstance(self._stamps, list):  # decoded already: they take them now
            _placed(self._stamps, self._noted_stamps)
            self._noted_stamps = []
        if self._readings is not None:  # the same for the readings
            self._patched(self._readings)

    def _patched(self, decoded: list[Row]) -> None:
        """The noted readings put in, in the order overlay placed them (so each index holds)."""
        if not self._patches:
            return
        _placed(decoded, self._patches)
        # no chunk is reused after this: their bounds, and the sources a refresh kept for
        # them (_reuse), no longer line up with the entries
        self._patches, self._chunks, self._lengths, self._reuse = [], None, [], None
        self._heads = None

    def chunks(self) -> list[bytes]:
        """The readings as marshal chunks: a known chunk again where its entries are the same
        and in the same place, the others encoded now."""
        if self._patches:
            self.readings()  # the noted entries in, the stale chunks dropped
        if self._chunks is None:
            known, sources = self._reuse or (Columns.empty(), [])
            old = known._chunk_starts()
            self._chunks, start = [], 0
            for end in _ends(self.rels):
                self._chunks.append(self._encoded(start, end, old, sources))
                start = end
        return self._chunks

    def _encoded(
        self, start: int, end: int, old: dict[int, tuple[int, bytes]], sources: list[int | None]
    ) -> bytes:
        first = sources[start] if start < len(sources) else None
        if first is not None and first in old:
            end_at, chunk = old[first]
            if sources[start:end] == list(range(first, end_at)):
                return chunk
        return indexchunks.encode(self.readings()[start:end])

    def _chunk_starts(self) -> dict[int, tuple[int, bytes]]:
        """A decoded chunk's first entry → (the entry after its last, its bytes); none unless
        each chunk held the entries _ends gives it (else a reused one would be misplaced)."""
        ends, lengths = _ends(self.rels), self._lengths
        starts = [0, *ends[:-1]] if ends else []
        if (
            self._chunks is None
            or self._patches
            or [e - s for s, e in zip(starts, ends, strict=True)] != lengths
        ):
            return {}
        return dict(zip(starts, zip(ends, self._chunks, strict=True), strict=True))

    def reading(self, i: int, row: Row | None = None) -> loader.Reading:
        """The catalog's Reading of entry i (its front matter only), from its row if given
        (a head row that is not split: heads)."""
        rel, state = self.rels[i], self.states[i]
        row = self.readings()[i] if row is None else row
        kind, meta = row[0], row[1]
        findings, message, reason = row[2:] if len(row) == 5 else NOTHING_SAID
        found = tuple(Finding(rel, line, name, text) for line, name, text in findings)
        doc = Document(meta, "", rel) if meta is not None else None
        return loader.Reading(rel, kind, state, doc, None, found, message, reason)


def _ends(rels: list[str]) -> list[int]:
    """Where the readings' chunks end: after each path whose CRC-32 ends in CHUNK_BITS zero
    bits (about 2**CHUNK_BITS entries a chunk), and at the end. Set by the paths themselves,
    so adding or removing a file changes its own chunk only, and a save after one change
    encodes a few hundred readings, not all of them. The CRC is of the name's bytes as
    os.fsencode gives them (any name, UTF-8 or not), encoded here without its call per path."""
    crc, mask, (encoding, errors) = zlib.crc32, (1 << CHUNK_BITS) - 1, _FS_ENCODING
    ends = [n + 1 for n, rel in enumerate(rels) if not crc(rel.encode(encoding, errors)) & mask]
    if rels and (not ends or ends[-1] != len(rels)):
        ends.append(len(rels))
    return ends


_FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())  # os.fsencode's


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


def identity_secret(keyring: Keyring) -> bytes | None:
    """HMAC-SHA256(LABEL, private key material): computed here, or by the agent holding the
    key (it answers the same question without giving the key out). The key of the index's
    HMAC, and the root of template_cache's: what only the identity's owner can compute."""
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
        self.notes_path = self.folder / f"index-{key_id}-{language()}.notes.age"
        self.stat_path = self.folder / f"index-{key_id}-{language()}.stat.age"
        self.anchor = _pinned_root(root)
        # talk folders as the index last listed them (None: in the stat file, not read yet)
        self._folders: dict[str, Any] | bytes | None = {}
        self._stat: dict[str, Any] | None = None  # the stat file's content, once read
        self.key = secret
        self.mac: bytes | None = None  # the HMAC of the index file as loaded or saved
        self.noted: set[str] = set()  # paths the notes file holds over it
        self.loaded = b""  # the HMACs of the index and the notes as loaded: which state it is

    @classmethod
    def open(cls, root: Path, keyring: Keyring) -> Store | None:
        recipients = [k for k in getattr(keyring, "public_keys", []) if not k.startswith("age1pq1")]
        secret = identity_secret(keyring)
        if secret is None or not recipients:
            return None
        return cls(root, keyring, recipients, secret)

    def load(self) -> tuple[Columns, str]:
        """The columns (with the notes over them, if any), and "" — or nothing, and why the
        index is rebuilt. The stamps and talk folders stay in the stat file until asked for."""
        try:
            content, mac = self._loaded(self.path)
        except _Refused as refused:
            return Columns.empty(), str(refused)
        columns = _columns(content, functools.partial(self._stat_blob, "stamps"))
        if columns is None:
            return Columns.empty(), "damaged"
        self._folders, self.mac = None, mac
        return self._with_notes(columns, mac), ""

    def load_stat(self) -> tuple[Columns, str]:
        """What a sweep compares the tree with, from the stat file alone (a fraction of the
        index): the paths, their stamps and digests (no states or readings), with the notes
        over them; `loaded` names the index it was saved with. Or nothing, and why not."""
        try:
            content, _ = self._loaded(self.stat_path)
        except _Refused as refused:
            return Columns.empty(), str(refused)
        base, folders = content.get("base"), content.get("folders")
        states = [loader.OK] * len(content.get("rels") or ())  # a sweep never reads them
        columns = _columns({**content, "states": states, "readings": []}, content.get("stamps"))
        if columns is None or type(base) is not bytes or type(folders) is not bytes:
            return Columns.empty(), "damaged"
        self._folders, self.mac, self._stat = folders, base, content
        return self._with_notes(columns, base), ""

    def _loaded(self, path: Path) -> tuple[dict[str, Any], bytes]:
        """The content of the index or the stat file, and its HMAC; _Refused (why) unless it
        is this identity's own, of this workspace."""
        try:
            content, mac = self._opened(self._read_bytes(path))
        except FileNotFoundError:
            raise _Refused("missing") from None
        except OSError:
            raise _Refused("damaged") from None
        if content.get("root") != self.anchor:
            raise _Refused("foreign")
        return content, mac

    def _with_notes(self, columns: Columns, mac: bytes) -> Columns:
        self.loaded = mac
        notes = self._notes(mac)
        if notes is not None:
            noted, notes_mac = notes
            columns.overlay(noted)
            self.noted, self.loaded = set(noted.rels), mac + notes_mac
        return columns

    def keys_as_saved(self, folders: dict[str, Any]) -> bool:
        """Whether these talk folders' keys are the ones saved (in the same order within each
        year's folder)."""
        return _folder_keys(folders) == self.folder_keys()

    def folder_keys(self) -> dict[str, bytes]:
        """The saved talk folders' paths and keys, by the folder they are in, as bytes (see
        _folder_keys); none unless they are of that shape."""
        keys = self._stat_content().get("keys")
        if type(keys) is not dict or not all(
            type(group) is str and type(blob) is bytes for group, blob in keys.items()
        ):
            return {}
        return keys

    def _stat_blob(self, name: str) -> bytes:
        """The stamps or talk folders from the stat file saved with the index as loaded; b""
        when there is none for it (a kill between the two writes, a planted file): every
        file is then hashed and every folder listed again, and the next save writes it."""
        blob = self._stat_content().get(name)
        return blob if type(blob) is bytes else b""

    def _stat_content(self) -> dict[str, Any]:
        if self._stat is None:
            try:
                content, _ = self._loaded(self.stat_path)
            except _Refused:
                content = {}
            self._stat = content if content.get("base") == self.mac else {}
        return self._stat

    def size(self) -> int:
        """The index file's size in bytes (0 if there is none): what a command can know of
        it before loading it."""
        try:
            return os.lstat(self.path).st_size
        except OSError:
            return 0

    @property
    def folders(self) -> dict[str, Any]:
        """The talk folders as the index last listed them, decoded on first use (the sweeping
        child's work); anything but a dict is none (every folder is listed again)."""
        if self._folders is None:
            self._folders = self._stat_blob("folders")
        if type(self._folders) is bytes:
            try:
                decoded = marshal.loads(self._folders)
            except (ValueError, EOFError, TypeError):
                decoded = {}
            self._folders = decoded if type(decoded) is dict else {}
        return self._folders  # type: ignore[return-value]

    def _opened(self, data: bytes) -> tuple[dict[str, Any], bytes]:
        """The content of an index or notes file and its HMAC; _Refused (why) unless this
        identity wrote it, in this format, under these rules."""
        from talkbook.crypto import decrypt

        try:
            plaintext = decrypt(data, self.keyring)
        except TalkbookError:
            raise _Refused("damaged") from None
        start = len(MAGIC)
        head, mac, body = plaintext[:start], plaintext[start : start + 64], plaintext[start + 65 :]
        expected = hmac.new(self.key, body, "sha256").hexdigest().encode()
        if head != MAGIC or not hmac.compare_digest(mac, expected):
            raise _Refused("foreign")
        try:
            content = marshal.loads(body)
        except (ValueError, EOFError, TypeError):
            raise _Refused("damaged") from None
        if type(content) is not dict:
            raise _Refused("damaged")
        if content.get("format") != FORMAT or content.get("rules") != _rules():
            raise _Refused("outdated")
        return content, mac

    def _notes(self, mac: bytes) -> tuple[Columns, bytes] | None:
        """The entries noted over the index with this HMAC (Store.note) and the notes' own
        HMAC, or None: none there, or made over another index (one saved since), or not this
        identity's own."""
        try:
            content, notes_mac = self._opened(self._read_bytes(self.notes_path, NOTES_MOST))
        except (OSError, _Refused):
            return None
        if content.get("base") != mac or content.get("root") != self.anchor:
            return None
        rows = content.get("readings")
        if type(rows) is not list or not all(
            type(row) in (list, tuple) and len(row) in (2, 5) for row in rows
        ):
            return None
        columns = _columns({**content, "readings": []}, content.get("stamps"))
        if (
            columns is None
            or len(rows) != len(columns.rels)
            or columns.rels != sorted(columns.rels)
        ):
            return None
        columns._readings, columns._chunks = rows, None
        return columns, notes_mac

    def _read_bytes(self, path: Path, most: int | None = None) -> bytes:
        """The file, if the folder is ours and the file a regular one (no symlink followed)
        of at most `most` bytes (OSError otherwise)."""
        self._check_folder(create=False)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise OSError("not a regular file")
            if most is not None and info.st_size > most:
                raise OSError("larger than it can be")
            return handle.read() if most is None else handle.read(most + 1)[:most]

    def _check_folder(self, create: bool) -> None:
        """`.talkbook/` is a real folder of this user's, owner-only; OSError otherwise. To
        write (`create`), a file or symlink in its place goes first: anyone who can push can
        commit one there (`git add -f`), and a pull would otherwise turn the index off."""
        try:
            info = os.lstat(self.folder)
            if create and not stat.S_ISDIR(info.st_mode):
                os.unlink(self.folder)  # a link goes, never what it points to
                raise FileNotFoundError(self.folder)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(self.folder, 0o700)
            info = os.lstat(self.folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise OSError(f"{FOLDER} is not a folder of this user")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(self.folder, 0o700)

    def save(self, columns: Columns, folders: dict[str, Any] | None = None) -> None:
        """Encrypt, authenticate and replace atomically, the notes folded in (their file goes),
        then the stat file bound to it; an index that cannot be written is only a cache: the
        command goes on without it."""
        content = {
            "rels": columns.rels,
            "digests": columns.digests,
            "states": columns.states,
            "readings": columns.chunks(),
        }
        stat = {
            "rels": columns.rels,
            "digests": columns.digests,
            "stamps": columns.stamps_blob(),
            "folders": marshal.dumps(folders or {}),
            "keys": _folder_keys(folders or {}),
        }
        mac = self._sealed(self.path, content)
        if mac is None:
            return
        self.mac, self.noted, self._stat = mac, set(), None
        with contextlib.suppress(OSError):
            os.unlink(self.notes_path)
        stat["base"] = mac
        if self._sealed(self.stat_path, stat) is not None:
            self._stat = stat

    def note(self, columns: Columns, rels: set[str]) -> None:
        """Keep these entries of `columns` in the notes file over the index as saved (a few
        files a command wrote): a small write instead of the whole index again. The next
        load puts them over the index (overlay); a save folds them in."""
        if self.mac is None:
            return
        at = {rel: i for i, rel in enumerate(columns.rels)}
        ns = [at[rel] for rel in sorted(rels) if rel in at]
        content: dict[str, Any] = {
            "base": self.mac,
            "rels": [columns.rels[n] for n in ns],
            "stamps": columns.stamps_of(ns),
            "digests": [columns.digests[n] for n in ns],
            "states": [columns.states[n] for n in ns],
            "readings": columns.readings_of(ns),
        }
        if self._sealed(self.notes_path, content) is not None:
            self.noted = set(content["rels"])

    def _sealed(self, path: Path, content: dict[str, Any]) -> bytes | None:
        """Write the content (with the format, root and rules) authenticated and encrypted to
        the identity's own keys; its HMAC, or None if it could not be written."""
        from talkbook.crypto import encrypt
        from talkbook.fsutil import atomic_write, stale_temp_files

        body = marshal.dumps({"format": FORMAT, "root": self.anchor, "rules": _rules(), **content})
        mac = hmac.new(self.key, body, "sha256").hexdigest().encode()
        try:
            self._check_folder(create=True)
            _exclude(self.root)
            for stale in stale_temp_files(self.folder):
                stale.unlink(missing_ok=True)
            ciphertext = encrypt(MAGIC + mac + b"\n" + body, self.recipients)
            _clear_planted(path)
            atomic_write(path, ciphertext, mode=0o600)
        except (OSError, TalkbookError):
            return None
        return mac


def _clear_planted(path: Path) -> None:
    """Whatever is at `path` that is not a regular file (a folder or a symlink committed there
    and pulled) goes, so that the file can be written: else every later save would fail and
    every command decrypt everything. Inside `.talkbook/` only, which is the tool's own."""
    import shutil

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)  # removes the links it holds, never follows them
    elif not stat.S_ISREG(info.st_mode):
        os.unlink(path)


class _Refused(Exception):
    """An index or notes file not to be trusted: damaged, foreign or outdated (its text)."""


def _columns(content: dict[str, Any], stamps: Any) -> Columns | None:
    """The columns of a loaded index, or None unless they are of the types and lengths this
    code writes (the HMAC says who wrote them; this guards against a writer's bug, with
    checks over whole lists rather than a loop per entry). Stamps and digests are only ever
    compared: a wrong one means "changed", so they need no check."""
    rels, digests = content.get("rels"), content.get("digests")
    states, chunks = content.get("states"), content.get("readings")
    if not (type(rels) is type(digests) is type(states) is list):
        return None
    if not len(rels) == len(digests) == len(states):
        return None
    if (
        not callable(stamps)
        and type(stamps) is not bytes
        and (type(stamps) is not list or len(stamps) != len(rels))
    ):
        return None  # a blob (the stat file) is checked when decoded; a list (notes) now
    if type(chunks) is not list or not all(type(chunk) is bytes for chunk in chunks):
        return None
    if not set(states) <= set(loader.STATES) or not all(type(r) is str for r in rels):
        return None
    return Columns(rels, stamps, digests, states, None, chunks)


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


def _folder_keys(folders: dict[str, Any]) -> dict[str, bytes]:
    """Each talk folder's path and key (mtime, ctime, inode), in the listing's order, by the
    folder they are in (a year's), as Listing compares them: each year's in marshal version 2,
    so equal keys give equal bytes, and a change in one year leaves the others' as they are."""
    groups: dict[str, list[Any]] = {}
    for rel, entry in folders.items():
        groups.setdefault(rel[: rel.rfind("/")], []).append((rel, *entry[0]))
    return {group: marshal.dumps(keys, STAMPS_MARSHAL) for group, keys in groups.items()}


def _decoded_list(blob: bytes, length: int) -> list[Any]:
    """A marshal blob holding a list of `length` entries; else `length` Nones."""
    try:
        decoded = marshal.loads(blob)
    except (ValueError, EOFError, TypeError):
        decoded = None
    return decoded if type(decoded) is list and len(decoded) == length else [None] * length


def _placed(column: list[Any], noted: list[tuple[int, bool, Any]]) -> None:
    """Each noted value inserted at, or put in place of, its index: in overlay's order, so
    every index counts the insertions before it."""
    for i, inserted, value in noted:
        if inserted:
            column.insert(i, value)
        else:
            column[i] = value
