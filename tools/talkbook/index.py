"""The encrypted index: the front matter of every file the user can decrypt, kept between runs.

`catalog(app, paths)` is what `catalog.load` returns: each file of the working tree is looked
at (lstat), and decrypted again only when its bytes changed since the index last saw it. A
cheap stamp (file type and mode, size, mtime_ns, inode, ctime_ns) decides whether to hash the
file; the SHA-256 of the ciphertext decides whether to decrypt it. So the index is right after
`talkbook edit`, a hand edit with the age CLI, a pull, a checkout or a merge; files gone drop
out. A stamp taken within RACY_NS of its file's last change is not kept (git's "racily clean"
entries): the next run hashes that file again. Only a regular file's stamp is ever kept, so a
stamp that matches says the file is still a regular one.

On two cores a large index is swept in a forked child, started before the command loads the
index: it reads the stat file beside the index (the paths, their stamps, the talk folders:
a fraction of it), lists the tree and takes each file's lstat, while the command loads and
decodes the index and builds its catalog from it. That catalog is used only when the child
answers that the listing, the stamps and the talk folders are all as its stat file holds
them, and that stat file was saved with the very index (and notes) the command loaded. Any
other answer — a change, a symlink refused, the child failing — and the parent sweeps and
updates as it always does, so the child can make a command faster, never wrong.

The index file, its columns and how it is sealed are indexfile's (Columns, Store): this module
keeps it right (the sweep, the update, what a write notes). A warm run compares the listing and
the stamps list to list (no Python per file when nothing changed), decodes the readings only
when a catalog is built or a file changed, writes nothing when nothing changed, and after a
change encodes again only the chunks it touched.

Security invariant: an entry is reused only for the bytes it was made from: its stamp, or
else the SHA-256 of the file's bytes, must match; what the sweeping child answers can make a
command faster, never wrong (anything but "unchanged" means the parent sweeps); and an index
it cannot trust (indexfile) is rebuilt, never used.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import hashlib
import marshal
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from talkbook import catalog as loader
from talkbook.errors import TalkbookError
from talkbook.indexchunks import Damaged
from talkbook.indexfile import STAMPS_MARSHAL, Columns, Row, Stamp, Store
from talkbook.workspace import id_of_rel

RACY_NS = 2_000_000_000  # a file changed this recently may change again within one mtime tick
T = TypeVar("T")
Select = Callable[[str, str, dict[str, Any]], bool]  # (kind, path, head): see _built
GONE = ()  # the stamp of a file gone between the listing and its lstat
RACY_REHASH = 64  # files kept without a stamp that a refresh hashes again rather than save
SWEEP_APART_FROM = 1 << 20  # index bytes (~2,000 files): below, a child costs more than it saves
SWEEPS = 3  # a tree whose files go while it is read (a checkout meanwhile) is swept this often


# The classes here are plain ones (and _Swept a NamedTuple), not dataclasses: every command
# defines them at import, and a dataclass costs about a millisecond each to define.
class Summary:
    """What a refresh did; `columns`: the index it left."""

    __slots__ = ("files", "decrypted", "cached", "unreadable", "rebuilt", "columns")

    def __init__(
        self,
        files: int = 0,
        decrypted: int = 0,  # decrypted in this run
        cached: int = 0,  # answered from the index
        unreadable: int = 0,
        rebuilt: str = "",  # why the index was not used: missing, damaged, foreign, outdated
        columns: Columns | None = None,
    ) -> None:
        self.files = files
        self.decrypted = decrypted
        self.cached = cached
        self.unreadable = unreadable
        self.rebuilt = rebuilt
        self.columns = Columns.empty() if columns is None else columns


# -- the run ------------------------------------------------------------------------------------
def catalog(app, paths: list[Path] | None = None) -> loader.Catalog:
    """The catalog of `paths` (every encrypted file when None), refreshed through the index;
    its front matter decoded whole (a tail read later would be out of computed's reach)."""
    return computed(app, _itself, paths, lazy=False)


def _itself(value: Any) -> Any:
    return value


def computed(
    app,
    compute: Callable[[loader.Catalog], T],
    paths: list[Path] | None = None,
    lazy: bool = True,
    select: Select | None = None,
) -> T:
    """compute(the catalog of `paths`), refreshed through the index. While a child sweeps the
    tree (_Sweep), it is computed from the index as loaded, and kept when the child answers
    that nothing changed; else computed again from the refreshed index. So `compute` must
    only read and return (it may run twice), and what it raises is raised only once the
    answer says it saw the tree as it is. `lazy`: a talk's lists are decoded when compute
    first asks for its whole front matter (indexchunks); one found damaged then means the
    index is built again and compute runs again. `select`: see _built."""
    build = functools.partial(_built, app, paths=paths, lazy=lazy, select=select)
    with _no_gc():
        pending = _Pending(app, trusted=True)
        guess = _guessed(pending, compute, build) if pending.sweep else None
        summary = pending.finish()
        if guess is not None and summary.columns is pending.known:
            try:
                return guess.result()
            except Damaged:  # a tail found damaged as compute read it: start over, below
                summary = _refresh(app, trusted=False)
        try:
            return compute(build(summary.columns))
        except Damaged:  # only a writer's bug gets wrong readings past the HMAC: start over
            return compute(build(_refresh(app, trusted=False).columns))


class _Guess(Generic[T]):
    """What compute gave (or raised) from the index as loaded, before the sweep's answer."""

    __slots__ = ("value", "error")

    def __init__(self, value: T | None = None, error: Exception | None = None) -> None:
        self.value = value
        self.error = error

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _guessed(
    pending: _Pending,
    compute: Callable[[loader.Catalog], T],
    build: Callable[[Columns], loader.Catalog],
) -> _Guess[T] | None:
    """compute from the index as loaded (None: its readings are damaged, decided after the
    sweep); the child is waited for all the same if this is interrupted."""
    try:
        built = build(pending.known)
    except Damaged:
        return None
    except BaseException:
        _abandon(pending)
        raise
    try:
        return _Guess(compute(built))
    except Exception as exc:  # raised only if the tree proves unchanged
        return _Guess(error=exc)
    except BaseException:
        _abandon(pending)
        raise


def _abandon(pending: _Pending) -> None:
    _dropped(pending.sweep)


def _dropped(sweep: _Sweep | None) -> None:
    """The child's answer taken and not used: it has ended."""
    if sweep is not None:
        sweep.answer()


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


def _built(
    app,
    columns: Columns,
    paths: list[Path] | None = None,
    lazy: bool = True,
    select: Select | None = None,
) -> loader.Catalog:
    """The catalog of `paths` (all when None) from the index's columns; Damaged if its
    readings are damaged. Filled in bulk (Catalog.add's work inline: 21,000 calls less), from
    the head rows: a talk's lists are decoded when its whole front matter is asked for. With
    `select`, only the readable documents it keeps: select(kind, path, head) sees a document's
    head (every scalar field of its front matter: indexchunks), and no item is made for the
    others (a command that reads a few of 21,000 documents: plan)."""
    ws = app.workspace
    rows, tails, places = columns.heads() if lazy else (columns.readings(), None, None)
    wanted = None if paths is None else {ws.relative(p) for p in paths}
    result = loader.Catalog()
    buckets, item, ok = result.buckets(), loader.Item, loader.OK
    fetch = functools.partial(_text, app)  # one for all: an item passes its own path
    for i, (rel, state, row) in enumerate(zip(columns.rels, columns.states, rows, strict=True)):
        if wanted is not None and rel not in wanted:
            continue
        if select is not None and (state != ok or not select(row[0], rel, row[1])):
            continue
        if state != ok:
            loader.add_reading(result, columns.reading(i, row), fetch)
        elif len(row) == 3:  # split (indexchunks): (kind, head, tail keys)
            kind, at = row[0], i if places is None else places[i]
            made = item(kind, rel, None, None, row[1], fetch, tails, at, row[2])
            buckets[kind][id_of_rel(rel)] = made
        else:
            kind = row[0]
            buckets[kind][id_of_rel(rel)] = item(kind, rel, None, None, row[1], fetch)
    for rel in sorted((wanted or set()) - set(columns.rels)):  # not under cadres/ or talks/
        for pair in loader.working_tree(ws, [ws.root / rel]):
            loader.add_reading(result, loader.read(app.keyring, *pair), None)
    return result


def _text(app, rel: str) -> str:
    """A file's decrypted text, for the item whose body is asked for."""
    return app.vault.read_text(app.workspace.root / rel)


def refresh(app) -> Summary:
    """Bring the index up to date with the working tree; save it if anything changed."""
    with _no_gc():
        return _refresh(app, trusted=True)


def _refresh(app, trusted: bool) -> Summary:
    return _Pending(app, trusted, apart=False).finish()


def begin(app) -> None:
    """Start the sweep that `computed` will take (its forked child, see _Sweep) now, for a
    command with work of its own to do first (`plan` parses what it was given): that work
    then meets the child's. Nothing else is done early: the index is loaded by `computed`.
    A command that ends before `computed` leaves the child to end on its own (it only
    reads; its answer goes nowhere)."""
    if getattr(app, "index_begun", None) is None:
        app.index_begun = _swept_apart(app, True)


def end(app) -> None:
    """A sweep begun (begin) that no refresh took, the command having ended first (an error):
    its child is ended and reaped."""
    begun = getattr(app, "index_begun", None)
    if begun is not None:
        app.index_begun = None
        if begun[1] is not None:
            begun[1].cancel()


def _swept_apart(app, apart: bool) -> tuple[Store | None, _Sweep | None]:
    """The workspace's index store, and for a large index (when `apart`) its sweep started in
    a child; or no store (no key material for an index)."""
    root = app.workspace.root
    store = Store.open(root, app.keyring)
    if apart and store is not None and store.size() >= SWEEP_APART_FROM:
        # Started before the load: the child loads the stat file for itself meanwhile.
        return store, _Sweep.start(root, store)
    return store, None


class _Pending:
    """A refresh begun: the index loaded (`known`) and, for a large one on a machine with more
    than one core, the sweep of the tree (listing, lstat of every file) started in a child
    process (`sweep`), so that the caller can decode and build from `known` meanwhile;
    `finish` takes the child's answer (unchanged: `known` as it is; else what it found) or
    sweeps here."""

    def __init__(self, app, trusted: bool, apart: bool = True) -> None:
        self.app = app
        begun: tuple[Store | None, _Sweep | None] | None = getattr(app, "index_begun", None)
        if begun is not None:
            app.index_begun = None
            if not (apart and trusted):  # a refresh that sweeps here: the child is not needed
                _dropped(begun[1])
                begun = None
        store, self.sweep = begun or _swept_apart(app, apart and trusted)
        self.store = store
        if store is None:
            self.known, self.rebuilt = Columns.empty(), "no key material for an index"
        else:
            self.known, self.rebuilt = store.load() if trusted else (Columns.empty(), "damaged")

    def finish(self, tries: int = SWEEPS) -> Summary:
        """The refreshed index; swept again (up to `tries` sweeps in all) when a file goes
        between the sweep and its read: the tree is changing meanwhile (a checkout, a pull)."""
        loaded = self.store.loaded if self.store is not None and not self.rebuilt else None
        found = self.sweep.answer(loaded) if self.sweep is not None else None
        self.sweep = None
        if found is UNCHANGED:
            self.app.index_seen = Seen(self.store, self.known) if self.store else None
            return _summary(self.known, 0, self.rebuilt)
        try:
            return self._updated(found if isinstance(found, _Swept) else None)
        except FileNotFoundError:
            if tries <= 1:
                raise
            return self.finish(tries - 1)

    def _updated(self, swept: _Swept | None) -> Summary:
        known, store, root = self.known, self.store, self.app.workspace.root
        if swept is None:
            swept = _Swept.taken(root, store, known.rels)
        if swept.rels == known.rels and _unchanged(root, swept.stamps, known):
            fresh, decrypted = known, 0
        else:
            try:
                fresh, decrypted = _update(self.app, known, swept.rels, swept.stamps, swept.now)
            except Damaged:  # wrong readings: see computed
                return _refresh(self.app, trusted=False)
        if store is not None and (
            fresh is not known or self.rebuilt or swept.folders_changed(store)
        ):
            store.save(fresh, store.folders if swept.folders is None else swept.folders)
        self.app.index_seen = Seen(store, fresh, swept.folders) if store else None
        return _summary(fresh, decrypted, self.rebuilt)


class Seen:
    """The index as this process last refreshed it (kept on the app, `app.index_seen`): what
    note_written starts from. `found`: the talk folders as a sweep found them, or None when
    they are the store's (decoded only if a save needs them)."""

    __slots__ = ("store", "columns", "found")

    def __init__(self, store: Store, columns: Columns, found: dict[str, Any] | None = None) -> None:
        self.store = store
        self.columns = columns
        self.found = found

    @property
    def folders(self) -> dict[str, Any]:
        return self.store.folders if self.found is None else self.found


def note_written(app, paths: list[Path]) -> None:
    """After a write's commit: the index holds the files just written, so that the next
    command neither decrypts them nor saves the index for them. Only when this process
    refreshed the index before (else the next command's refresh finds them). Their stamps
    are kept as racy ones (None: written now, their bytes hashed next time, see _unchanged);
    every other entry as the refresh left it, reused later only where its stamp or bytes
    still match. They go over the index in memory (Columns.overlay) and to the notes file
    over it on disk (Store.note: a few entries, not the whole index written again) until more
    than RACY_REHASH are noted; then the index is saved with them. A cache: a file that is
    gone or cannot be read here is left to the next refresh."""
    seen = getattr(app, "index_seen", None)
    written = {app.workspace.relative(path) for path in paths}
    written = {rel for rel in written if _indexed(rel)}
    if seen is None or not written:
        return
    root = str(app.workspace.root)
    rels = sorted(written)
    try:
        done = loader.file_readings(
            app.keyring, app.workspace.root, [(rel, f"{root}/{rel}") for rel in rels],
            keep_text=False, shape=_row,
        )  # fmt: skip
    except (OSError, TalkbookError):  # gone (a write that removed it) or not a regular file
        return
    noted = Columns(rels, [None] * len(rels), [d for d, _ in done], [st for _, (st, _) in done])
    noted._readings = [row for _, (_, row) in done]
    _ROW_STRINGS.clear()
    seen.columns.overlay(noted)
    store = seen.store
    if len(store.noted | written) > RACY_REHASH:  # more would cost the next loads more
        store.save(seen.columns, seen.folders)
    else:
        store.note(seen.columns, store.noted | written)


def _indexed(rel: str) -> bool:
    """Whether Listing lists this path: cadres/*.md.age, talks/*/*/*.age."""
    parts = rel.split("/")
    if parts[0] == "cadres":
        return len(parts) == 2 and parts[1].endswith(".md.age")
    return parts[0] == "talks" and len(parts) == 4 and parts[3].endswith(".age")


def _summary(fresh: Columns, decrypted: int, rebuilt: str) -> Summary:
    summary = Summary(len(fresh.rels), decrypted, len(fresh.rels) - decrypted, rebuilt=rebuilt)
    summary.unreadable = fresh.states.count(loader.UNREADABLE)
    summary.columns = fresh
    return summary


class _Swept(NamedTuple):
    """The tree as one sweep found it: the listing, the talk folders, each file's stamp, and
    the time taken before the stamps (a file changed after it may look settled)."""

    rels: list[str]
    folders: dict[str, Any] | None  # None: every one as the store holds them
    stamps: list[Stamp | tuple[()]]
    now: int
    settled: bool  # every talk folder found settled (so each is in `folders`)

    @classmethod
    def taken(cls, root: Path, store: Store | None, saved: list[str] | None = None) -> _Swept:
        """`saved`: the paths the store's talk folders hold (Listing)."""
        listed = Listing(root, store, saved)
        rels = listed.files()
        now = time.time_ns()
        folders = None if listed.as_saved else listed.folders
        return cls(rels, folders, _stamps(root, rels), now, listed.settled)

    def folders_changed(self, store: Store) -> bool:
        """Whether the talk folders differ from the store's enough to be worth a save: in
        more than RACY_REHASH folders, or in any once every one is settled: else a write's
        folder (its files only noted) would keep the listing from being taken as saved
        (Listing.files) until some other change saved the index."""
        if self.folders is None:
            return False
        if _worth_saving(self.folders, store.folders):
            return True
        return self.settled and not store.keys_as_saved(self.folders)


def _unchanged(root: Path, stamps: list[Stamp | tuple[()]], known: Columns) -> bool:
    """Whether files listed as the index lists them are the bytes it read: every stamp the
    same, but for at most RACY_REHASH entries it kept no stamp for (written within RACY_NS of
    the save: the files a command has just written) whose SHA-256 is the one it holds. Those
    keep no stamp and are hashed again next time: cheaper than saving the index for them."""
    if known.same_stamps(stamps):
        return True
    differ = _unstamped(known.stamps)
    if differ is None or not _same_between(stamps, known.stamps, differ):
        return False
    for n in differ:
        stamp: tuple[int, ...] = stamps[n]
        if not stamp or not stat.S_ISREG(stamp[0]):  # GONE, or no longer a regular file
            return False
        path = f"{root}/{known.rels[n]}"
        if hashlib.sha256(_read(root, path)).digest() != known.digests[n]:
            return False
    return True


def _unstamped(kept: list[Stamp | None]) -> list[int] | None:
    """Where the index keeps no stamp (None: more than RACY_REHASH places), found with
    list.index: no Python per entry."""
    found: list[int] = []
    at = 0
    while len(found) <= RACY_REHASH:
        try:
            at = kept.index(None, at)
        except ValueError:
            return found
        found.append(at)
        at += 1
    return None


def _same_between(
    stamps: list[Stamp | tuple[()]], kept: list[Stamp | None], gaps: list[int]
) -> bool:
    """Whether the stamps equal the kept ones everywhere but at `gaps` (in order), compared a
    stretch at a time."""
    if len(stamps) != len(kept):
        return False
    start = 0
    for gap in [*gaps, len(kept)]:
        if stamps[start:gap] != kept[start:gap]:
            return False
        start = gap + 1
    return True


def _worth_saving(found: dict[str, Any], saved: dict[str, Any]) -> bool:
    """Whether the talk folders as found now differ from the index's in more than RACY_REHASH
    folders: a few (the folder a command just wrote into) are listed again next time, which
    costs less than saving the index for them. The cache only spares listings: a folder whose
    entry is stale is listed again, never misread."""
    if found == saved:
        return False
    changed = 0
    for rel in found.keys() | saved.keys():
        changed += found.get(rel) != saved.get(rel)
        if changed > RACY_REHASH:
            return True
    return False


UNCHANGED = "unchanged"  # a sweep's answer: the tree is what the index holds
_STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


class _Sweep:
    """The stat file loaded (Store.load_stat) and the tree swept in a forked child
    (_Swept.taken), started before the parent loads the index, and compared there
    (_unchanged). Back through a pipe comes b"=" and the HMACs of the index (and notes) its
    stat file was saved with when nothing changed (the parent takes that only for the very
    index it loaded), or b"~" and what it found (marshal: plain lists, tuples, ints,
    strings) so that the parent need not sweep again; anything else (an error, a refused
    symlink, a crash) means "sweep here". The child only reads file metadata, the stat file
    and the bytes of files to hash; it holds what this process holds and sends back nothing
    this process could not have found itself."""

    def __init__(self, pid: int, answer: int) -> None:
        self.pid, self.answer_fd = pid, answer

    @classmethod
    def start(cls, root: Path, store: Store) -> _Sweep | None:
        if not hasattr(os, "fork") or loader.processes() < 2:
            return None
        answer, reply = os.pipe()
        # No signal reaches the child before it drops Python's handlers: a KeyboardInterrupt
        # raised in it would climb the command's own stack there (releasing its lock, running
        # its exit handlers). In the child a signal ends it outright: its answer is then
        # none, and the parent sweeps.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(answer)
            os.close(reply)
            return None
        if pid == 0:  # the child: never returns
            try:
                for number in _STOPPING:
                    signal.signal(number, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(answer)
                _sweep_and_exit(reply, root, store)
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(reply)
        return cls(pid, answer)

    def cancel(self) -> None:
        """End the child now and reap it (it only reads: nothing of it is left half-done)."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.close(self.answer_fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def answer(self, loaded: bytes | None = None) -> str | _Swept | None:
        """UNCHANGED (the child found the tree as the index `loaded` holds it: Store.loaded of
        the parent's load), what the child found, or None: sweep here."""
        try:
            with os.fdopen(self.answer_fd, "rb") as pipe:
                said = pipe.read()
        finally:
            os.waitpid(self.pid, 0)
        if said.startswith(b"="):
            return UNCHANGED if loaded and said[1:] == loaded else None
        if not said.startswith(b"~"):
            return None
        try:
            rels, folders, stamps, now, settled = marshal.loads(said[1:])
        except (ValueError, EOFError, TypeError):
            return None
        return _Swept(rels, folders, stamps, now, settled)


def _sweep_and_exit(reply: int, root: Path, store: Store) -> None:
    said = b"?"
    try:
        known, rebuilt = store.load_stat()  # beside the parent's load of the index itself
        swept = _Swept.taken(root, store, known.rels)
        if (
            not rebuilt
            and swept.rels == known.rels
            and not swept.folders_changed(store)
            and _unchanged(root, swept.stamps, known)
        ):
            said = b"=" + store.loaded
        else:
            said = b"~" + marshal.dumps(tuple(swept))
    except BaseException:  # noqa: BLE001 - any failure means "sweep in the parent"
        said = b"?"
    finally:
        with contextlib.suppress(OSError), os.fdopen(reply, "wb") as pipe:
            pipe.write(said)
        os._exit(0)


def _stamps(root: Path, rels: list[str]) -> list[Stamp | tuple[()]]:
    """Each file's stamp as lstat gives it now (GONE for one removed since it was listed),
    looked up from the workspace's folder (a shorter walk than from /)."""
    lstat = os.lstat
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            infos = [lstat(rel, dir_fd=fd) for rel in rels]
        except FileNotFoundError:
            return [_stamp(rel, fd) for rel in rels]
    finally:
        os.close(fd)
    return [(i.st_mode, i.st_size, i.st_mtime_ns, i.st_ino, i.st_ctime_ns) for i in infos]


def _stamp(rel: str, fd: int) -> Stamp | tuple[()]:
    try:
        i = os.lstat(rel, dir_fd=fd)
    except FileNotFoundError:
        return GONE
    return (i.st_mode, i.st_size, i.st_mtime_ns, i.st_ino, i.st_ctime_ns)


def _settled(stamp: Stamp, now: int) -> bool:
    """Whether the file's last change is older than RACY_NS: a later change shows in its stat."""
    return now - stamp[2] >= RACY_NS and now - stamp[4] >= RACY_NS


def _update(
    app, known: Columns, rels: list[str], stamps: list[Stamp | tuple[()]], now: int
) -> tuple[Columns, int]:
    """The columns for the files listed now: an entry whose stamp matches is kept as it is, a
    file whose stamp differs is hashed (kept if its bytes are the same), and only a file whose
    bytes are new is decrypted. Damaged if the known readings are needed and damaged.
    Built list by list (comprehensions), with Python per file only for those that changed."""
    at = {rel: i for i, rel in enumerate(known.rels)}
    listed = [(rel, stamp) for rel, stamp in zip(rels, stamps, strict=True) if stamp]  # GONE out
    sources: list[int | None] = [at.get(rel) for rel, _ in listed]  # the known entry, or None
    ks, kd, kst = known.stamps, known.digests, known.states
    fresh = Columns(
        [rel for rel, _ in listed],
        [None if i is None else ks[i] for i in sources],
        [b"" if i is None else kd[i] for i in sources],
        ["" if i is None else kst[i] for i in sources],
    )
    differ = [
        n
        for n, ((_, stamp), i) in enumerate(zip(listed, sources, strict=True))
        if i is not None and stamp != ks[i]
    ]
    unseen = [(n, *listed[n]) for n, i in enumerate(sources) if i is None]  # before _hashed
    hashed = [_hashed(app, known, fresh, sources, listed[n], n, now) for n in differ]
    todo = [pair for pair in hashed if pair is not None]
    new = _read_new(app, fresh, unseen, now)
    _fill(app, known, fresh, sources, todo, new)
    return fresh, len(todo) + len(new)


def _read_new(
    app, fresh: Columns, files: list[tuple[int, str, Stamp]], now: int
) -> dict[int, tuple[str, Row]]:
    """The files the index never saw (all of them, cold): read, hashed, decrypted and made
    rows (_row: state and reading, strings shared) in the workers (catalog.file_readings), so
    the parent neither reads 21,000 files before the first is decrypted nor converts 21,000
    readings after. A symlink or other non-regular file is refused there, as read_regular
    does."""
    root = app.workspace.root
    pairs = [(rel, f"{root}/{rel}") for _, rel, _ in files]
    done = loader.file_readings(app.keyring, root, pairs, keep_text=False, shape=_row)
    rows: dict[int, tuple[str, Row]] = {}
    for (n, _, stamp), (digest, row) in zip(files, done, strict=True):
        settled = stat.S_ISREG(stamp[0]) and _settled(stamp, now)
        fresh.stamps[n], fresh.digests[n] = (stamp if settled else None), digest
        rows[n] = row
    return rows


_ROW_STRINGS: dict[str, str] = {}  # _row's shared strings, one table per process (worker)


def _row(reading: loader.Reading) -> tuple[str, Row]:
    """(state, row) of a reading, its repeated strings one object (see _shared)."""
    return reading.state, _shared(_reading_of(reading), _ROW_STRINGS)


def _hashed(
    app,
    known: Columns,
    fresh: Columns,
    sources: list[int | None],
    file: tuple[str, Any],
    n: int,
    now: int,
) -> tuple[str, bytes] | None:
    """Entry n, whose stamp differs: hashed, kept if its bytes are the known ones, else
    (path, bytes) to decrypt (its source None). `now` is from before the stamp was taken."""
    root = app.workspace.root
    rel, stamp = file
    path = f"{root}/{rel}"
    if not stat.S_ISREG(stamp[0]):
        _refuse(root, path)
    data = _read(root, path)
    digest = hashlib.sha256(data).digest()
    regular_and_settled = stat.S_ISREG(stamp[0]) and _settled(stamp, now)
    fresh.stamps[n], fresh.digests[n] = (stamp if regular_and_settled else None), digest
    i = sources[n]
    if i is not None and digest == known.digests[i]:
        return None
    sources[n] = None
    return rel, data


def _fill(
    app,
    known: Columns,
    fresh: Columns,
    sources: list[int | None],
    todo: list[tuple[str, bytes]],
    new: dict[int, tuple[str, Row]],
) -> None:
    """The readings of `fresh`: the known chunks as they are when every entry is kept in place
    (stamps changed, bytes did not: no decoding), else the kept ones, the changed ones (`todo`,
    decrypted here, in order) and the new ones (`new`, already read and made rows)."""
    if (
        not todo
        and sources == list(range(len(known.rels)))
        and known._chunks is not None
        and not known._patches
    ):
        fresh._chunks = known._chunks
        return
    old = known.readings() if any(i is not None for i in sources) else []
    done = iter(loader.readings(app.keyring, todo, keep_text=False))
    readings: list[Row] = []
    for n, i in enumerate(sources):
        if i is not None:
            readings.append(old[i])
            continue
        fresh.states[n], row = new[n] if n in new else _row(next(done))
        readings.append(row)
    fresh._readings, fresh._reuse = readings, (known, sources)
    _ROW_STRINGS.clear()


def _reading_of(r: loader.Reading) -> Row:
    """(kind, front matter) for a file read with nothing to say of it (most of them: two
    slots to decode, no lists), else [kind, front matter, findings, message, reason]."""
    meta = r.doc.meta if r.doc is not None else None
    if not (r.findings or r.message or r.reason):
        return (r.kind, meta)
    findings = [[f.line, f.field, f.message] for f in r.findings]
    return [r.kind, meta, findings, r.message, r.reason]


def _shared(value: Any, memo: dict[str, str]) -> Any:
    """`value` with each string that repeats (field names, ids, dates, states) one object:
    marshal writes an object it meets again as a reference, so the index is a third the size
    and decodes twice as fast. Field names are interned too (marshal keeps that): a command's
    `meta.get("cadre")` then finds its key by identity."""
    kind = type(value)
    if kind is str:
        return memo.setdefault(value, value)
    if kind is list:
        return [_shared(v, memo) for v in value]
    if kind is tuple:
        return tuple(_shared(v, memo) for v in value)
    if kind is dict:
        return {_name(k): _shared(v, memo) for k, v in value.items()}
    return value


def _name(key: Any) -> Any:
    return sys.intern(key) if type(key) is str else key


class Listing:
    """The files of Workspace.encrypted_files, by relative path, in its order, listed with
    os.scandir (pathlib costs more per file than all else a warm load does): the same rules
    as its globs `cadres/*.md.age` and `talks/*/*/*.age`, dot names included, folders that
    are symlinks listed too — and refused (UnsafePath) when a file below one is read, as
    fsutil.read_regular refuses it. With a store, each talk folder's names are its saved ones
    while the folder is as it saved it (Store.folders); when every talk folder is (Store's
    folder keys, compared as bytes a year's folder at a time), its files are `saved`, the
    paths the store holds, with nothing decoded or joined per folder; when a few are not (a
    write's folder, a pull's), the saved paths of the others and those few listed again."""

    def __init__(
        self, root: Path, store: Store | None = None, saved: list[str] | None = None
    ) -> None:
        self.root, self.base, self.store, self.saved = root, str(root), store, saved
        self.folders: dict[str, list[Any]] = {}  # talk folder → [(mtime_ns, ctime_ns, inode),
        # its .age names], as found now: saved with the index
        self.as_saved = False  # the store's folders are the ones to keep (`folders` is empty)
        self.settled = False  # every talk folder settled, none reached through a symlink
        self.now = time.time_ns()

    def files(self) -> list[str]:
        """The relative paths, sorted; UnsafePath for one below a symlinked folder."""
        found: list[str] = []
        linked: list[str] = []
        for name, link in self._names("cadres", top=True):
            if name.endswith(".md.age"):
                (linked if link else found).append(f"cadres/{name}")
        talk_folders = self._talk_folders()
        keys = None if linked else self._keys(talk_folders)
        saved = self.store.folder_keys() if keys is not None and self.store is not None else {}
        if saved and self.saved is not None and keys is not None:
            talks = self._saved_talks()
            now = {group: marshal.dumps(them, STAMPS_MARSHAL) for group, them in keys.items()}
            if now == saved:
                self.as_saved = self.settled = True
                found.sort()  # cadres/… sort before talks/…, and the saved paths are sorted
                return found + talks
            relisted = self._relisted(keys, now, saved, talks)
            if relisted is not None:
                found.sort()
                return found + relisted
        for rel, link, info in talk_folders:
            names = self._talk(rel, link, info)
            if names is None:  # reached through a symlink
                names = self._age_names(rel)
                linked += [f"{rel}/{name}" for name in names]
            found += [f"{rel}/{name}" for name in names]
        for rel in sorted(linked):
            _refuse(self.root, f"{self.base}/{rel}")
        self.settled = len(self.folders) == len(talk_folders)  # a gone one counts as unsettled
        found.sort()
        return found

    def _talk_folders(self) -> list[tuple[str, bool, os.stat_result | None]]:
        """Each talk folder: its path, whether a symlink leads to it, its lstat (None: gone)."""
        found = []
        for year, year_link in self._names("talks", top=True, folders=True):
            for talk, talk_link in self._names(f"talks/{year}", folders=True):
                rel = f"talks/{year}/{talk}"
                try:
                    info: os.stat_result | None = os.lstat(f"{self.base}/{rel}")
                except FileNotFoundError:
                    info = None
                found.append((rel, year_link or talk_link, info))
        return found

    @staticmethod
    def _keys(
        talk_folders: list[tuple[str, bool, os.stat_result | None]],
    ) -> dict[str, list[Any]] | None:
        """Each talk folder's path and key (mtime, ctime, inode) by the folder it is in, as
        Store.folder_keys holds them; None if one is reached through a symlink or went
        meanwhile."""
        keys: dict[str, list[Any]] = {}
        for rel, link, info in talk_folders:
            if link or info is None or stat.S_ISLNK(info.st_mode):
                return None
            key = (rel, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
            keys.setdefault(rel[: rel.rfind("/")], []).append(key)
        return keys

    def _saved_talks(self) -> list[str]:
        """The saved paths below talks/ (a slice: they are sorted)."""
        saved = self.saved or []
        return saved[bisect.bisect_left(saved, "talks/") : bisect.bisect_left(saved, "talks0")]

    def _relisted(
        self,
        keys: dict[str, list[Any]],
        now: dict[str, bytes],
        saved: dict[str, bytes],
        talks: list[str],
    ) -> list[str] | None:
        """The talk files when at most RACY_REHASH talk folders differ from the saved ones
        (added, changed, gone: those a command just wrote into): the saved paths of the
        others, and the differing ones listed again; None when more differ (list them all).
        A folder whose key is as saved is settled and its names are the saved paths below it
        (a name added, removed or renamed changes its folder's mtime), as in `files`. Only
        the years whose keys differ as bytes (`now`, `saved`) are compared key by key."""
        differ = [
            group for group in now.keys() | saved.keys() if now.get(group) != saved.get(group)
        ]
        current = [key for group in differ for key in keys.get(group, ())]
        try:
            before = [
                key for group in differ if group in saved for key in marshal.loads(saved[group])
            ]
            kept = set(current).intersection(before)
            redo = {key[0] for key in before if key not in kept}
        except (ValueError, EOFError, TypeError, IndexError):  # not the keys this code saves
            return None
        changed = [key for key in current if key not in kept]
        redo.update(key[0] for key in changed)
        if len(redo) > RACY_REHASH:
            return None
        found = list(talks)
        for rel in sorted(redo, reverse=True):  # cut from the end: the earlier cuts stay put
            del found[bisect.bisect_left(found, rel + "/") : bisect.bisect_left(found, rel + "0")]
        settled: dict[str, list[Any]] = {}
        for rel, *key in changed:
            names = self._age_names(rel)
            found += [f"{rel}/{name}" for name in names]
            if self.now - key[0] >= RACY_NS and self.now - key[1] >= RACY_NS:
                settled[rel] = [tuple(key), names]
        self.settled = len(settled) == len(changed)
        if self.settled:  # the store's folders, these changed: worth a save (folders_changed)
            known = self.store.folders if self.store is not None else {}
            self.folders = {
                rel: settled[rel] if rel in redo else known[rel]
                for group in keys.values()
                for rel, *_ in group
                if rel in settled or (rel not in redo and rel in known)
            }  # in the listing's order, as Store.folder_keys compares them
        else:  # the store's kept: a stale entry is listed again, until it settles
            self.as_saved = True
        found.sort()
        return found

    def _talk(self, rel: str, linked: bool, info: os.stat_result | None) -> list[str] | None:
        """The .age names in a talk's folder (None if it is reached through a symlink): as the
        index last listed them while the folder is unchanged (same mtime, ctime, inode; a name
        added, removed or renamed changes its mtime), listed again otherwise."""
        if info is None:
            return []
        if linked or stat.S_ISLNK(info.st_mode):
            return None
        key = (info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        cached = self.store.folders.get(rel) if self.store is not None else None
        if (
            type(cached) is list
            and len(cached) == 2
            and cached[0] == key
            and type(cached[1]) is list
        ):
            names = cached[1]
        else:
            names = self._age_names(rel)
        if self.now - key[0] >= RACY_NS and self.now - key[1] >= RACY_NS:  # settled
            self.folders[rel] = [key, names]
        return names

    def _age_names(self, rel: str) -> list[str]:
        return [name for name, _ in self._names(rel) if name.endswith(".age")]

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
    return Listing(root).files()


def _refuse(root: Path, path: str) -> None:
    """UnsafePath, as fsutil.read_regular words it, for what is no regular file of its own."""
    _read(root, path)


def _read(root: Path, path: str) -> bytes:
    from talkbook.fsutil import read_regular

    return read_regular(root, Path(path))
