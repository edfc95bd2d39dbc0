"""The one loader: (path, ciphertext) pairs in, documents and findings out.

Pairs come from the working tree (`working_tree`), from a revision in git (`at_revision`) or
from the staged index (`staged`); `read` turns one pair into a `Reading` and `readings` many
of them, in worker processes when there are enough (pyrage holds the GIL); `file_readings`
also reads and hashes working-tree files in those workers. Every reader of
documents goes through here: `load` (due, followups, list, show, reports, plan), `validate`,
`audit`, `history` and `rekey`. Each decides what a state means for it; the states are:

- OK: decrypted, parsed, past its kind's JSON Schema (`checked`): logic may read any field;
- UNFIT: parsed, but the schema refuses it (or its file name carries no id): `findings` say why;
- MALFORMED: no document (not a profile, plan or record path; YAML that does not parse);
- BROKEN: decrypts to nothing usable (corrupt or truncated age file, not UTF-8);
- UNREADABLE: the identity is not a recipient. A speaker sees only their talks: not an error.

`load(app)` is what read commands use: the encrypted index (index.py) answers for every file
whose bytes did not change, and an item's body is decrypted only when asked for.

Security invariant: plaintext stays in memory (this process or a forked worker that returns
it through a pipe); findings and messages carry paths, fields and reasons, never a value.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from talkbook.errors import DecryptionError, InvalidDocument, NotRecipient, TalkbookError
from talkbook.i18n import _
from talkbook.models import Document, is_id, parse
from talkbook.validation import Finding, Subject, passes_schema, schema_findings, summary
from talkbook.workspace import id_of_rel, kind_of_rel

if TYPE_CHECKING:
    from talkbook.crypto import Keyring
    from talkbook.indexchunks import Tails
    from talkbook.workspace import Workspace

OK, UNFIT, MALFORMED, BROKEN, UNREADABLE = "ok", "unfit", "malformed", "broken", "unreadable"
STATES = (OK, UNFIT, MALFORMED, BROKEN, UNREADABLE)
T = TypeVar("T")
PARALLEL_FROM = 64  # fewer files than this are decrypted in this process: forking costs more


class Item:
    """One readable document. Built from a decrypted document, or from the index's front matter
    alone: then its text (and the body of `doc`) is decrypted when first asked for. From the
    index's head part, a talk's lists and tables (its tail: indexchunks) are decoded when its
    whole front matter (`meta`) is first asked for; `get` answers a scalar field without them."""

    __slots__ = ("kind", "rel", "_meta", "_doc", "_text", "_fetch", "_tails", "_at", "_tail_keys")

    def __init__(
        self,
        kind: str,
        rel: str,
        doc: Document | None = None,
        text: str | None = None,
        meta: dict[str, Any] | None = None,
        fetch: Callable[[str], str] | None = None,
        tails: Tails | None = None,
        at: int = 0,
        tail_keys: tuple[str, ...] = (),
    ) -> None:
        self.kind, self.rel = kind, rel
        self._doc, self._text, self._fetch = doc, text, fetch
        self._meta = doc.meta if doc is not None else (meta if meta is not None else {})
        self._tails, self._at, self._tail_keys = tails, at, tail_keys

    @property
    def meta(self) -> dict[str, Any]:
        if self._tails is not None:
            self._meta, self._tails = self._tails.meta(self._at, self._meta), None
            self._tail_keys = ()  # in _meta now
        return self._meta

    def get(self, key: str, default: Any = None) -> Any:
        """meta.get(key, default), without decoding the tail for a field not in it (the tail's
        field names are known while it is not decoded, and none after)."""
        if key in self._tail_keys:
            return self.meta.get(key, default)
        return self._meta.get(key, default)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._fetch(self.rel) if self._fetch is not None else ""
        return self._text

    @property
    def doc(self) -> Document:
        if self._doc is None:
            body = parse(self.text, self.rel).body if self._fetch is not None else ""
            self._doc = Document(self.meta, body, self.rel)
        return self._doc

    def __repr__(self) -> str:
        return f"Item({self.kind}, {self.rel})"


class Catalog:
    """Every item read, by kind and id, and the paths that gave none. A plain class, not a
    dataclass: every command defines it at import, and a dataclass costs a millisecond there."""

    __slots__ = ("profiles", "plans", "records", "unreadable", "malformed")

    def __init__(
        self,
        profiles: dict[str, Item] | None = None,
        plans: dict[str, Item] | None = None,
        records: dict[str, Item] | None = None,
        unreadable: list[str] | None = None,
        malformed: list[tuple[str, InvalidDocument]] | None = None,
    ) -> None:
        self.profiles = {} if profiles is None else profiles
        self.plans = {} if plans is None else plans
        self.records = {} if records is None else records
        self.unreadable = [] if unreadable is None else unreadable
        self.malformed = [] if malformed is None else malformed

    def buckets(self) -> dict[str, dict[str, Item]]:
        """Each kind's dict, by id: for filling a new catalog in bulk (the index does)."""
        return {"profile": self.profiles, "plan": self.plans, "record": self.records}

    def add(self, item: Item) -> None:
        kind = item.kind
        bucket = self.profiles if kind == "profile" else self.plans if kind == "plan" else None
        if bucket is None and kind != "record":
            raise KeyError(kind)
        (bucket if bucket is not None else self.records)[id_of_rel(item.rel)] = item

    def items(self) -> list[Item]:
        return [*self.profiles.values(), *self.plans.values(), *self.records.values()]

    def cadre_name(self, cadre_id: str) -> str:
        item = self.profiles.get(cadre_id)
        return str(item.get("name", "")) if item else ""


class Reading(NamedTuple):
    """What `read` made of one (path, ciphertext) pair. Plain values only: it crosses a pipe
    from a worker process (an exception would lose its fields there). A NamedTuple, not a frozen
    dataclass: every command defines it at import, and this is built in a fifth of the time."""

    rel: str
    kind: str  # "" when the path names no profile, plan or record
    state: str  # one of STATES
    doc: Document | None = None  # OK and UNFIT (without its body when read for the index)
    text: str | None = None  # the decrypted text, when asked to keep it
    findings: tuple[Finding, ...] = ()  # UNFIT, MALFORMED, BROKEN: why
    message: str = ""  # the one line an InvalidDocument would carry
    reason: str = ""  # the same without path and line

    def error(self) -> InvalidDocument:
        """Why logic may not read it, as the one-line refusal `checked` would raise."""
        line = self.findings[0].line if self.findings else 1
        return InvalidDocument(self.message, list(self.findings), line, self.reason)


def unfit(subject: Subject) -> list[Finding]:
    """Why logic may not read a document: its schema findings, or a file name without an id.

    A valid document (nearly all) is told so by jsonschema-rs; only one it refuses is walked
    by jsonschema for the findings, so the messages are the same either way."""
    valid = passes_schema(subject.kind, subject.doc.meta)
    findings = [] if valid else schema_findings(subject)
    id_kind = "profile" if subject.kind == "profile" else "talk"
    if not findings and not is_id(id_kind, id_of_rel(subject.rel)):
        findings = [Finding(subject.rel, 1, "(file)", _("the file's name is not an id"))]
    return findings


def checked(kind: str, rel: str, text: str) -> Document:
    """The document, parsed and past its kind's schema: what logic may read field by field.

    InvalidDocument otherwise, one line (`path:line: field: message`, never a value), with
    every finding attached; a file whose name carries no id is refused the same way.
    """
    doc = parse(text, rel)
    if findings := unfit(Subject(kind, rel, doc, text)):
        first = findings[0]
        raise InvalidDocument(
            summary(findings), findings, first.line, f"{first.field}: {first.message}"
        )
    return doc


# -- one pair ----------------------------------------------------------------------------------
def read(keyring: Keyring | None, rel: str, data: bytes, keep_text: bool = True) -> Reading:
    """Decrypt, parse and schema-check one file's bytes; never raises for what the file holds.

    `keyring` None reads nothing (UNREADABLE). Without `keep_text` the reading carries the
    front matter only (what the index stores)."""
    from talkbook.crypto import decrypt

    try:
        kind = kind_of_rel(rel)
    except TalkbookError:
        return _refused(
            rel, "", MALFORMED, Finding(rel, 1, "(file)", _("not a profile, plan or record"))
        )
    if keyring is None:
        return Reading(rel, kind, UNREADABLE)
    try:
        text = decrypt(data, keyring).decode("utf-8")
    except NotRecipient:
        return Reading(rel, kind, UNREADABLE)
    except (DecryptionError, TalkbookError) as exc:  # corrupt; a passphrase nobody can give
        return _refused(rel, kind, BROKEN, Finding(rel, 1, "(file)", str(exc)))
    except UnicodeDecodeError:
        not_text = Finding(rel, 1, "(file)", _("decrypted content is not UTF-8"))
        return _refused(rel, kind, BROKEN, not_text)
    try:
        doc = parse(text, rel)
    except InvalidDocument as exc:
        finding = Finding(rel, exc.line, "(front matter)", exc.reason)
        return Reading(rel, kind, MALFORMED, None, None, (finding,), str(exc), exc.reason)
    kept = text if keep_text else None
    if findings := unfit(Subject(kind, rel, doc, text)):
        first = findings[0]
        reason = f"{first.field}: {first.message}"
        shown = doc if keep_text else Document(doc.meta, "", rel)
        return Reading(rel, kind, UNFIT, shown, kept, tuple(findings), summary(findings), reason)
    return Reading(rel, kind, OK, doc if keep_text else Document(doc.meta, "", rel), kept)


def _refused(rel: str, kind: str, state: str, finding: Finding) -> Reading:
    reason = f"{finding.field}: {finding.message}"
    message = f"{rel}:1: {reason}"
    return Reading(rel, kind, state, findings=(finding,), message=message, reason=reason)


# -- many pairs, on every core -----------------------------------------------------------------
# (keyring, what to do with one item, the items), inherited by forked workers: a task names a
# span of the items and only answers come back through the pipe (sending the ciphertext too
# cost the parent)
_worker: tuple[Any, Callable[[Any], Any], list[Any]] | None = None
CHUNKS_PER_WORKER = 8  # the cores end together even when files differ in size


def _work(span: tuple[int, int]) -> list[Any]:
    assert _worker is not None
    _keyring, one, items = _worker
    return [one(item) for item in items[span[0] : span[1]]]


def _forkable(keyring: Keyring | None) -> bool:
    """Whether a forked child can decrypt with this keyring on its own: keys held in this
    process (not an agent's socket) and no passphrase to ask for."""
    if keyring is None or getattr(keyring, "agent", None) is not None:
        return False
    return bool(getattr(keyring, "identities", None) or getattr(keyring, "hybrid_identities", None))


def processes() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _each(keyring: Keyring | None, items: list[Any], one: Callable[[Any], Any]) -> list[Any]:
    """`one(item)` for every item, in order; in forked worker processes from PARALLEL_FROM
    items on, when the platform forks and the keyring can be used in a child."""
    workers = min(processes(), len(items))
    if len(items) < PARALLEL_FROM or workers < 2 or not _forkable(keyring):
        return [one(item) for item in items]  # a write's few files: multiprocessing not imported
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return [one(item) for item in items]
    global _worker
    size = max(1, -(-len(items) // (workers * CHUNKS_PER_WORKER)))
    spans = [(i, min(i + size, len(items))) for i in range(0, len(items), size)]
    _worker = (keyring, one, items)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_no_prompt) as pool:
            done = pool.map(_work, spans, chunksize=1)
    finally:
        _worker = None
    return [answer for chunk in done for answer in chunk]


def readings(
    keyring: Keyring | None, pairs: list[tuple[str, bytes]], keep_text: bool = True
) -> list[Reading]:
    """`read` for every pair, in order; on every core when there are many (`_each`)."""
    return _each(keyring, pairs, lambda pair: read(keyring, pair[0], pair[1], keep_text))


def file_readings(
    keyring: Keyring | None,
    root: Path,
    files: list[tuple[str, str]],
    keep_text: bool = True,
    shape: Callable[[Reading], Any] | None = None,
) -> list[tuple[bytes, Any]]:
    """(SHA-256 of its bytes, its reading) for each (rel, path) of the working tree, in order:
    the reading and hashing done in the workers too (`_each`), so that a parent with many files
    to read (a cold index) does not read them all before the first is decrypted. A file the
    workers could not read is read again here: UnsafePath or OSError as fsutil.read_regular
    raises it. With `shape`, each reading is given as `shape(reading)`, made where it is read:
    in a worker, so that what crosses the pipe is what the caller keeps (plain values are
    cheaper to send than Readings, and the parent has nothing left to convert)."""

    from talkbook.fsutil import Folders, read_below

    base = str(root)
    shaped = shape or (lambda reading: reading)
    folders = Folders()  # each process's own: files read in path order share their folders

    def one(file: tuple[str, str]) -> tuple[bytes, Any] | None:
        rel = file[0]
        try:
            data = read_below(base, rel, folders)  # no pathlib: a fifth of a file's cost
            return hashlib.sha256(data).digest(), shaped(read(keyring, rel, data, keep_text))
        except (TalkbookError, OSError):
            return None  # an exception's fields may not survive the pipe: raised again below

    try:
        done = _each(keyring, files, one)
    finally:
        folders.close()  # what this process opened, when it read the files itself
    return [
        answer if answer is not None else _hashed_reading(keyring, root, *file, keep_text, shaped)
        for file, answer in zip(files, done, strict=True)
    ]


def _hashed_reading(
    keyring: Keyring | None,
    root: Path,
    rel: str,
    path: str,
    keep_text: bool,
    shaped: Callable[[Reading], Any],
) -> tuple[bytes, Any]:
    from talkbook.fsutil import read_regular

    data = read_regular(root, Path(path))
    return hashlib.sha256(data).digest(), shaped(read(keyring, rel, data, keep_text))


def _no_prompt() -> None:
    """In a worker nobody can answer a passphrase prompt: such a file is BROKEN there."""
    if _worker is not None and getattr(_worker[0], "passphrase_prompt", None) is not None:
        _worker[0].passphrase_prompt = None


# -- where pairs come from ---------------------------------------------------------------------
def working_tree(ws: Workspace, paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """Each file's bytes as the working tree holds them; UnsafePath for a symlink."""
    from talkbook.fsutil import read_regular

    for path in paths:
        yield ws.relative(path), read_regular(ws.root, path)


def at_revision(root: Path, rev: str, rels: list[str]) -> Iterator[tuple[str, bytes]]:
    """Each of these paths as commit `rev` holds it (paths it does not hold are left out)."""
    from talkbook import gittrail

    for rel, blob in gittrail.blobs_at(root, rev, rels).items():
        yield rel, gittrail.read_blob(root, blob)


def staged(root: Path, rels: list[str]) -> Iterator[tuple[str, bytes]]:
    """Each of these paths as the staged index holds it (what the next commit takes)."""
    from talkbook import gittrail

    for rel in rels:
        yield rel, gittrail.staged_blob(root, rel)


# -- the catalog of read commands --------------------------------------------------------------
def add_reading(catalog: Catalog, reading: Reading, fetch: Callable[[str], str] | None) -> None:
    """File a reading where read commands look: usable, malformed (run validate) or not
    readable (a corrupt file too: it is nothing this identity can use)."""
    if reading.state == OK and reading.doc is not None:
        text = reading.text
        doc = reading.doc if text is not None else None
        meta = reading.doc.meta
        catalog.add(Item(reading.kind, reading.rel, doc, text, meta=meta, fetch=fetch))
    elif reading.state in (UNFIT, MALFORMED):
        catalog.malformed.append((reading.rel, reading.error()))
    else:
        catalog.unreadable.append(reading.rel)


def load(app, paths: list[Path] | None = None) -> Catalog:
    """Everything the acting person can read (or only `paths`), through the encrypted index:
    only files whose bytes changed since it last looked are decrypted."""
    from talkbook import index

    return index.catalog(app, paths)


def begin(app) -> None:
    """Start checking the tree for changes now (index.begin), for a command that will call
    load_into after some work of its own."""
    from talkbook import index

    index.begin(app)


def end(app) -> None:
    """After a command that began (begin): a check it never used is ended (index.end)."""
    from talkbook import index

    index.end(app)


def load_into(
    app,
    compute: Callable[[Catalog], T],
    select: Callable[[str, str, dict[str, Any]], bool] | None = None,
) -> T:
    """compute(load(app)), begun while the tree is checked for changes (index.computed):
    `compute` only reads and returns what the command shows; it may run twice. With
    `select`, the catalog holds only the readable documents select(kind, path, front matter's
    scalar fields) keeps."""
    from talkbook import index

    return index.computed(app, compute, select=select)
