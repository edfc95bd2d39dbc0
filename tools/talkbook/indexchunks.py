"""How the index keeps its readings: in chunks, each a head part decoded at every load and a
tail part decoded only when asked for.

A reading of a profile, a plan or a record (kind, front matter) is split when it is encoded:
its scalar fields (ids, names, units, dates, status, speaker, method…) go to the head, its
lists and tables (a profile's work history, rewards and evaluations; a plan's decisions, focus
and preparations; a record's topics, people present) to the tail, with the front matter's key
order. A profile's events and roles, a record's follow-ups, and a submitted plan's decisions,
stay in the head: `due` and its reports read them for every cadre, every record and every
plan waiting for approval. Most commands read only the scalars (who, when, which status); they
no longer build the lists too, which were most of a warm load's decoding. A reading with
something to say of it (findings, a message) is kept whole in the head.
`merged` and `Tails.meta` put a split reading back exactly: the same keys, values and order as
before it was split.

A chunk is `marshal.dumps((heads, marshal.dumps(tails)))`: heads is a list of rows — (kind,
front matter) whole, (kind, head, tail keys) split, or the five-slot long form — and tails a
list of the same length: (key order, lists and tables) for a split row, None otherwise.

Security invariant: as the index's (indexfile): chunks are decoded only from a body whose HMAC
proved it this identity's own, and a chunk or tail that does not decode to this shape is
Damaged (the index is rebuilt, also when it is found only as a command reads a tail), never a
reading misplaced.
"""

from __future__ import annotations

import bisect
import marshal
from typing import Any

# What goes to the head and what to the tail: a change here takes a new indexfile.FORMAT (a
# saved chunk is written back as it was loaded, so an older split would stay for good).
SPLIT = {"profile", "plan", "record"}  # the kinds whose lists go to a tail
HEAD_LISTS = {"follow_ups", "events", "roles"}  # lists kept in the head: due and its reports
# read every record's follow-ups, and every cadre's events (occasions) and roles (cadence)
WAITING = {"decisions"}  # and a plan waiting for approval keeps its decisions there: due and
# the approvals report read those of every submitted plan, a few hundred spread over all chunks


class Damaged(ValueError):
    """Readings that do not decode to what this code writes: only a writer's bug gets them
    past the HMAC; the index is then built again from the files."""


def encode(rows: list[Any]) -> bytes:
    """A chunk of these rows (as Columns keeps them: (kind, meta) or the long form)."""
    heads: list[Any] = []
    tails: list[Any] = []
    shapes: dict[tuple[str, ...], tuple[str, ...]] = {}  # one object per key tuple: references
    for row in rows:
        head, tail = _split(row, shapes)
        heads.append(head)
        tails.append(tail)
    return marshal.dumps((heads, marshal.dumps(tails)))


def _split(row: Any, shapes: dict[tuple[str, ...], tuple[str, ...]]) -> tuple[Any, Any]:
    if len(row) != 2 or row[0] not in SPLIT or type(row[1]) is not dict:
        return row, None
    meta = row[1]
    kept = (HEAD_LISTS | WAITING) if meta.get("status") == "submitted" else HEAD_LISTS
    rest = {k: v for k, v in meta.items() if (type(v) is list or type(v) is dict) and k not in kept}
    if not rest:
        return row, None
    head = {k: v for k, v in meta.items() if k not in rest}
    order = tuple(meta)
    keys = tuple(rest)
    return (row[0], head, shapes.setdefault(keys, keys)), (shapes.setdefault(order, order), rest)


def heads(chunk: bytes) -> tuple[list[Any], bytes]:
    """A chunk's head rows and its tail part, still encoded; Damaged if it is not a chunk."""
    try:
        decoded = marshal.loads(chunk)
    except (EOFError, TypeError) as exc:
        raise Damaged("readings") from exc
    if type(decoded) is not tuple or len(decoded) != 2:
        raise Damaged("readings")
    rows, tail = decoded
    if type(rows) is not list or type(tail) is not bytes:
        raise Damaged("readings")
    return rows, tail


def _tails(blob: bytes, length: int) -> list[Any]:
    try:
        decoded = marshal.loads(blob)
    except (EOFError, TypeError) as exc:
        raise Damaged("readings") from exc
    if type(decoded) is not list or len(decoded) != length:
        raise Damaged("readings")
    return decoded


def merged(rows: list[Any], tail: bytes) -> list[Any]:
    """The chunk's rows whole again: each split one as (kind, front matter) in its order."""
    tails = _tails(tail, len(rows))
    pairs = zip(rows, tails, strict=True)
    return [row if len(row) != 3 else (row[0], _whole(row[1], t)) for row, t in pairs]


def rows(chunk: bytes) -> list[Any]:
    """A chunk's rows whole (as encode took them)."""
    return merged(*heads(chunk))


def _whole(head: dict[str, Any], tail: Any) -> dict[str, Any]:
    if type(tail) is not tuple or len(tail) != 2:
        raise Damaged("readings")
    order, rest = tail
    meta = dict.fromkeys(order)
    meta.update(head)
    meta.update(rest)
    return meta


class Tails:
    """The tail parts of a loaded index's chunks, decoded a chunk at a time when an entry's
    whole front matter is first asked for (catalog.Item.meta)."""

    __slots__ = ("starts", "lengths", "blobs", "decoded")

    def __init__(self, starts: list[int], lengths: list[int], blobs: list[bytes]) -> None:
        self.starts, self.lengths, self.blobs = starts, lengths, blobs  # per chunk
        self.decoded: dict[int, list[Any]] = {}

    def meta(self, at: int, head: dict[str, Any]) -> dict[str, Any]:
        """Entry `at`'s whole front matter, from its head; Damaged if the tail is not its."""
        chunk = bisect.bisect_right(self.starts, at) - 1
        tails = self.decoded.get(chunk)
        if tails is None:
            tails = self.decoded[chunk] = _tails(self.blobs[chunk], self.lengths[chunk])
        return _whole(head, tails[at - self.starts[chunk]])
