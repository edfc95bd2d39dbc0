"""Attacks on this session's index changes: the stat file beside the index and the sweeping
child that reads only it (75c6631), the listing taken as the saved paths while every talk
folder is as saved (941dcc3), and format 7's head and tail parts with the notes' rows placed
among the heads (b7a2172, 8ce4482, 50e9a5e).

Each test says whether the attack held (the code stood up to it) or is a finding (marked
xfail strict until the finding was fixed)."""

from __future__ import annotations

import marshal
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import Clock, Setup, last_line, ok
from talkbook import catalog, index, indexchunks, indexfile
from talkbook.app import App
from talkbook.crypto import encrypt
from talkbook.models import Document


def app_of(ws: Setup, pid: str = "P-01") -> App:
    return App(ws.root, ws.keys[pid])


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every load sweeps in a forked child, as on two cores with a large index, every file
    settled at once; the child's answers as the parent took them (UNCHANGED, a _Swept, None)."""
    monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
    monkeypatch.setattr(catalog, "processes", lambda: 2)
    monkeypatch.setattr(index, "RACY_NS", 0)
    seen: list[object] = []
    real = index._Sweep.answer

    def recorded(self: index._Sweep, loaded: bytes | None = None) -> object:
        answer = real(self, loaded)
        seen.append(answer)
        return answer

    monkeypatch.setattr(index._Sweep, "answer", recorded)
    return seen


def planned(ws: Setup, cadre: str, day: str) -> Path:
    """A plan made by the command (its files noted over the index); its talk folder."""
    at = f"2026-03-{day}T09:30"
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", at))
    return next(ws.root.glob(f"talks/*/{talk}"))


def held(ws: Setup, cadre: str, clock: Clock, day: str) -> str:
    """A talk planned, submitted, approved and recorded (a record with lists: follow-ups,
    deferred topics); its id."""
    clock.set(f"2026-03-{day}T08:00")
    talk = last_line(
        ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", f"2026-03-{day}T09:00")
    )
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))
    clock.set(f"2026-03-{day}T11:00")
    meta = {
        "follow_ups": [{"what": f"协调{day}", "owner": "干部一科", "due": "2026-04-10"}],
        "deferred": [f"今后的工作打算{day}"],
    }
    source = ws.root.parent / f"record-{talk}.md"
    source.write_text(Document(meta, "谈话对象表示服从组织安排。").text(), encoding="utf-8")
    ok(ws.as_("P-03", "record", talk, "--from", source))
    return talk


def saved_now(ws: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index saved with everything in it (the notes folded in), as after a pull."""
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    index.refresh(app_of(ws))
    monkeypatch.setattr(index, "RACY_REHASH", 64)


def decrypted_whole(ws: Setup) -> dict[str, dict[str, list[tuple[str, Any]]]]:
    """Every readable item's front matter (key order too) as a full decrypt of the tree gives
    it, by kind and path: what the index must answer."""
    return decrypted(ws)[0]


def decrypted(
    ws: Setup,
) -> tuple[dict[str, dict[str, list[tuple[str, Any]]]], list[str], list[str]]:
    """The same, and the paths that are unreadable and malformed (unfit too), sorted."""
    app = app_of(ws)
    rels = index.listing(ws.root)
    pairs = [(rel, (ws.root / rel).read_bytes()) for rel in rels]
    found: dict[str, dict[str, list[tuple[str, Any]]]] = {}
    unreadable, malformed = [], []
    for reading in catalog.readings(app.keyring, pairs, keep_text=False):
        if reading.state == catalog.OK and reading.doc is not None:
            found.setdefault(reading.kind, {})[reading.rel] = list(reading.doc.meta.items())
        elif reading.state in (catalog.UNFIT, catalog.MALFORMED):
            malformed.append(reading.rel)
        else:
            unreadable.append(reading.rel)
    return found, sorted(unreadable), sorted(malformed)


def from_the_index(found: catalog.Catalog) -> dict[str, dict[str, list[tuple[str, Any]]]]:
    """The same from a catalog built from the index's head rows; each scalar asked with
    Item.get first (before any tail is decoded) and checked against the whole front matter."""
    result: dict[str, dict[str, list[tuple[str, Any]]]] = {}
    for item in found.items():
        keys = ["id", "status", "speaker", "held_at", "at", "cadre", "decisions", "follow_ups"]
        asked = {key: item.get(key, "-") for key in keys}
        whole = item.meta
        assert asked == {key: whole.get(key, "-") for key in keys}, item.rel
        assert all(item.get(key) == value for key, value in whole.items()), item.rel
        result.setdefault(item.kind, {})[item.rel] = list(whole.items())
    return result


# -- findings -----------------------------------------------------------------------------------
def test_one_write_does_not_turn_the_listing_as_saved_off_for_good(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding (performance, medium): 941dcc3 takes the saved paths as the listing only when
    every talk folder is as the stat file saved it. A write (plan, submit, approve, record,
    edit...) changes its talk folder (a new name, a rename over a file) and only notes its
    files (Store.note: the stat file is not written). The next sweeps find that folder
    changed, but one folder is "not worth a save" (_worth_saving: more than RACY_REHASH
    folders) and the noted files hash the same (_unchanged), so nothing is saved: the stat
    file's folder keys stay stale and every later command — in the child, on the bench's
    21,000 files — lists every talk folder again (the CPU 941dcc3 saved: 0.21 -> 0.18 s),
    and hashes the noted files, until something else makes a save. On a real workspace
    writes happen between reads, so the fast listing is mostly off. Fix (index.py,
    _Swept.folders_changed, and the child's "=" condition in _sweep_and_exit): also a change
    when every talk folder was found settled and their keys differ from Store.folder_keys(),
    so the next command saves once (the notes folded in, the keys new). Not the stat file
    alone over the notes: its keys would then vouch for files only the notes hold, and notes
    overwritten by another command would hide them."""
    monkeypatch.setattr(index, "RACY_NS", 0)  # every folder settled at once
    planned(workspace, cadre, "10")
    planned(workspace, cadre, "11")
    saved_now(workspace, monkeypatch)
    as_saved: list[bool] = []
    real = index.Listing.files

    def files(self: index.Listing) -> list[str]:
        rels = real(self)
        as_saved.append(self.as_saved)
        return rels

    monkeypatch.setattr(index.Listing, "files", files)
    index.refresh(app_of(workspace))
    assert as_saved == [True]  # as saved: the fast listing
    planned(workspace, cadre, "12")  # one write, noted
    as_saved.clear()
    for _ in range(3):
        index.refresh(app_of(workspace))
    assert as_saved[-1] is True  # fails: [False, False, False] (and so on, for good)


def test_an_index_of_the_chunk_layout_before_is_not_kept_for_good(
    workspace: Setup, cadre: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding (performance, low; it also skews the bench): what goes to a chunk's tail is
    part of the index's format (indexchunks.SPLIT, HEAD_LISTS), but FORMAT and _rules() do
    not name it. An index written with follow-ups in the tails (by b7a2172..b16b02e, e.g.
    the bench workspace's if it was not rebuilt) is still "format 7": loaded as it is, its
    chunks written again byte for byte on every save that does not touch them, so `due`
    and the follow-up reports decode every record's tail on it for good — the 196 -> 131
    ms 5fcd8dc measured never comes on such an index. Correct answers either way (each
    head row names its own tail keys)."""
    layout, format_ = indexchunks.HEAD_LISTS, indexfile.FORMAT
    monkeypatch.setattr(indexchunks, "HEAD_LISTS", set())  # as b7a2172..b16b02e wrote it:
    monkeypatch.setattr(indexfile, "FORMAT", 7)  # follow-ups in the tails, format 7
    talk = held(workspace, cadre, clock, "10")
    saved_now(workspace, monkeypatch)
    monkeypatch.setattr(indexchunks, "HEAD_LISTS", layout)  # this code
    monkeypatch.setattr(indexfile, "FORMAT", format_)
    index.refresh(app_of(workspace))  # nothing changed: nothing saved
    tails_read: list[int] = []
    real = indexchunks.Tails.meta

    def meta(self: indexchunks.Tails, at: int, head: dict[str, Any]) -> dict[str, Any]:
        tails_read.append(at)
        return real(self, at, head)

    monkeypatch.setattr(indexchunks.Tails, "meta", meta)
    follow_ups = catalog.load_into(app_of(workspace), lambda c: c.records[talk].get("follow_ups"))
    assert follow_ups and follow_ups[0]["owner"] == "干部一科"
    assert tails_read == []  # fails: the record's tail is decoded for its follow-ups


# -- held ---------------------------------------------------------------------------------------
def test_every_item_after_noted_writes_is_what_a_full_decrypt_gives(
    workspace: Setup, cadre: str, clock: Clock, monkeypatch: pytest.MonkeyPatch, answers: list
) -> None:
    """Held: talks planned and recorded, the index saved, then more writes noted over it
    (a talk planned, submitted, approved and recorded whose path may sort among the saved
    ones, a saved record replaced by its addendum, a new plan): a catalog computed while the
    child sweeps, from the head rows with the notes' rows placed among them, gives every
    item its own front matter (same keys, values, order), Item.get agrees with
    Item.meta.get for every field, and it is what decrypting every file gives."""
    first = held(workspace, cadre, clock, "10")
    planned(workspace, cadre, "11")
    saved_now(workspace, monkeypatch)
    held(workspace, cadre, clock, "09")  # a talk whose path sorts among the saved ones
    ok(workspace.as_("P-01", "addendum", first, "--text", "补充说明"))
    planned(workspace, cadre, "12")
    store = indexfile.Store.open(workspace.root, app_of(workspace).keyring)
    assert store is not None and store.notes_path.is_file()  # the writes are noted, not saved
    # the writes' folders just changed, so not settled: no save for their keys yet (a later
    # command saves them once: _Swept.folders_changed), the catalog from the index stands
    monkeypatch.setattr(index, "RACY_NS", 60 * 10**9)
    answers.clear()
    got = catalog.load_into(app_of(workspace), from_the_index)
    assert answers == [index.UNCHANGED]  # the catalog from the index as loaded stood
    assert got == decrypted_whole(workspace)
    assert catalog.load_into(app_of(workspace), from_the_index) == got


def test_notes_over_notes_never_give_an_entry_another_talks_lists() -> None:
    """Held: the index as loaded (chunks, a stamps blob), the notes put over it in several
    rounds (replacing saved entries, inserting new paths, replacing noted ones), with the
    head rows decoded between rounds or not: each entry's head row and place find its own
    tail (Item.meta and Item.get), readings_of and stamps_of give its own, and the whole
    readings agree. Random paths across several chunks, 40 seeds."""
    for seed in range(40):
        _overlaid_as_expected(random.Random(seed))


def _row(rng: random.Random, rel: str, tag: str) -> Any:
    draw = rng.random()
    if draw < 0.5:
        meta = {"id": rel, "status": tag, "decisions": [tag, rel], "at": "x", "focus": {"a": tag}}
        return ("plan", meta)
    if draw < 0.7:
        meta = {"id": rel, "follow_ups": [{"what": tag}], "topics": [tag], "held_at": "x"}
        return ("record", meta)
    if draw < 0.85:
        return ("profile", {"id": rel, "name": tag, "posts": [tag]})
    return ["record", {"id": rel, "topics": [tag]}, [[1, "topics", "bad"]], "m", "r"]


def _overlaid_as_expected(rng: random.Random) -> None:
    def path() -> str:
        return f"talks/2026/T-{rng.randrange(10**6):06d}/plan.md.age"

    rels = sorted({path() for _ in range(1500)})
    rows = {rel: _row(rng, rel, "saved") for rel in rels}
    stamps: dict[str, Any] = {rel: (0o100600, 1, rng.randrange(10**9), 7, 5) for rel in rels}
    n = len(rels)
    whole = indexfile.Columns(list(rels), [None] * n, [b""] * n, ["ok"] * n, list(rows.values()))
    blob = marshal.dumps([stamps[rel] for rel in rels], indexfile.STAMPS_MARSHAL)
    loaded = indexfile.Columns(list(rels), blob, [b""] * n, ["ok"] * n, None, whole.chunks())
    for round_ in range(rng.randrange(1, 4)):
        if rng.random() < 0.3:
            loaded.heads()
        picked = {rng.choice(sorted(rows)) if rng.random() < 0.5 else path() for _ in range(6)}
        noted_rels = sorted(picked)
        noted_rows = [_row(rng, rel, f"noted {round_}") for rel in noted_rels]
        m = len(noted_rels)
        noted = indexfile.Columns(noted_rels, [None] * m, [b"n"] * m, ["ok"] * m)
        noted._readings = noted_rows
        loaded.overlay(noted)
        for rel, row in zip(noted_rels, noted_rows, strict=True):
            rows[rel], stamps[rel] = row, None
    order = sorted(rows)
    assert loaded.rels == order
    heads, tails, places = loaded.heads()
    for i, rel in enumerate(order):
        head, want = heads[i], rows[rel]
        if len(head) != 3:
            assert list(head) == list(want)
            continue
        at = i if places is None else places[i]
        item = catalog.Item(head[0], rel, None, None, head[1], None, tails, at, head[2])
        assert [item.get(key, "-") for key in [*want[1], "nope"]] == [*want[1].values(), "-"]
        assert list(item.meta.items()) == list(want[1].items())
    ns = rng.sample(range(len(order)), 25)
    assert [list(row[1].items()) for row in loaded.readings_of(ns)] == [
        list(rows[order[k]][1].items()) for k in ns
    ]
    assert loaded.stamps_of(ns) == [stamps[order[k]] for k in ns]
    assert [list(row[1].items()) for row in loaded.readings()] == [
        list(rows[rel][1].items()) for rel in order
    ]


def test_a_talk_folder_replaced_with_its_mtime_put_back_is_not_taken_as_saved(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, answers: list
) -> None:
    """Held: while every talk folder's (path, mtime, ctime, inode) is as saved, the saved
    paths are the listing. A folder emptied, or replaced by another folder holding other
    files, with its mtime put back (anyone can set an mtime; git never keeps one): its
    ctime and inode moved, so the child does not answer "unchanged" and the change is
    read."""
    folders = [planned(workspace, cadre, day) for day in ("10", "11")]
    saved_now(workspace, monkeypatch)
    assert len(catalog.load(app_of(workspace)).plans) == 2
    assert answers[-1] is index.UNCHANGED
    first, second = folders
    mtime = first.stat().st_mtime_ns
    (first / "plan.md.age").unlink()
    os.utime(first, ns=(0, mtime))
    assert sorted(catalog.load(app_of(workspace)).plans) == [second.name]
    assert answers[-1] is not index.UNCHANGED
    mtime = second.stat().st_mtime_ns
    shutil.rmtree(second)
    second.mkdir()
    (second / "record.md.age").write_bytes(b"not age")  # a record where the plan was
    os.utime(second, ns=(0, mtime))
    found = catalog.load(app_of(workspace))
    assert found.plans == {} and f"talks/{second.parent.name}/{second.name}/record.md.age" in {
        rel for rel in [*found.unreadable, *(rel for rel, _ in found.malformed)]
    }
    assert answers[-1] is not index.UNCHANGED


def test_a_kill_between_the_index_write_and_the_stat_write_is_never_misread(
    workspace: Setup, cadre: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers: list
) -> None:
    """Held: a save killed after the index was replaced and before its stat file was (the
    old stat file stays, bound to the index before): the child reads only that stat file,
    finds the tree as it says (the change was a rename of a cadre, in place of the one it
    saw) or not, and its answer is never taken for the new index; the change is read, and
    the next save (here forced: a few files are hashed rather than saved) binds a stat file
    to the index again, after which the child's answer stands."""
    planned(workspace, cadre, "10")
    saved_now(workspace, monkeypatch)
    app = app_of(workspace)
    text = app.vault.read_text(workspace.path(f"cadres/{cadre}.md.age"))
    source = tmp_path / "edited.md"
    source.write_text(text.replace("张伟", "张卫国"), encoding="utf-8")
    real = indexfile.Store._sealed

    def killed_before_the_stat_file(self: indexfile.Store, path: Path, content: dict) -> Any:
        if path == self.stat_path:
            return None  # as if killed: the old stat file stays
        return real(self, path, content)

    monkeypatch.setattr(indexfile.Store, "_sealed", killed_before_the_stat_file)
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    ok(workspace.as_("P-01", "edit", cadre, "--from", source))
    monkeypatch.setattr(indexfile.Store, "_sealed", real)
    answers.clear()
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert answers[-1] is not index.UNCHANGED
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert answers[-1] is index.UNCHANGED


@pytest.mark.parametrize("planted", ["stat file", "notes", "both"])
def test_crafted_stat_and_notes_files_are_read_as_none_by_child_and_parent(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, answers: list, planted: str
) -> None:
    """Held: anyone can encrypt to the user's public key and a pull can plant files under
    `.talkbook/` (git add -f). A stat file or notes file that is age to the right key but
    not sealed with the identity's HMAC, or one sealed right but taken from an older state
    of this very workspace (a copy put back): no traceback, no "unchanged" taken, the tree
    read as it is; the child's "unchanged" is taken again once a save has written a stat file
    bound to the index."""
    folder = planned(workspace, cadre, "10")
    saved_now(workspace, monkeypatch)
    store = indexfile.Store.open(workspace.root, app_of(workspace).keyring)
    assert store is not None
    old_stat = store.stat_path.read_bytes()
    (folder / "plan.md.age").unlink()
    saved_now(workspace, monkeypatch)
    forged = encrypt(indexfile.MAGIC + b"0" * 64 + b"\n" + marshal.dumps({}), store.recipients)
    if planted in ("stat file", "both"):
        store.stat_path.write_bytes(old_stat)  # sealed right, bound to an older index
    if planted in ("notes", "both"):
        store.notes_path.write_bytes(forged)
    answers.clear()
    for _ in range(2):
        result = ok(workspace.as_("P-01", "list", "talks"))
        assert folder.name not in result.stdout and "Traceback" not in result.stderr
        assert catalog.load(app_of(workspace)).plans == {}
    # a stale stat file is not taken; its talk folders' keys differ, so the first command
    # saves the index again and the child's "unchanged" counts from then on
    assert planted == "notes" or answers[0] is not index.UNCHANGED
    saved_now(workspace, monkeypatch)
    assert catalog.load(app_of(workspace)).plans == {} and answers[-1] is index.UNCHANGED


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_run_of_writes_pulls_and_hand_edits_is_always_read_right(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch, answers: list, seed: int
) -> None:
    """Held: writes by the command (noted), files copied in and talk folders removed as a
    pull would, a file's bytes replaced with its folder's mtime put back, damaged files,
    saves in between, in a seeded random order: after each step, the catalog computed while
    the child sweeps is what decrypting every file gives (items, unreadable, malformed)."""
    rng = random.Random(seed)
    days = iter(range(10, 29))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    for _ in range(3):
        planned(workspace, cadre, str(next(days)))
    saved_now(workspace, monkeypatch)

    def plans() -> list[Path]:
        return sorted(workspace.root.glob("talks/*/*/plan.md.age"))

    def copy_in() -> None:
        source = rng.choice(plans())
        folder = source.parent.parent / ("T-" + "".join(rng.choices(alphabet, k=6)))
        folder.mkdir(exist_ok=True)
        (folder / "plan.md.age").write_bytes(source.read_bytes())

    def remove() -> None:
        if len(plans()) > 1:
            shutil.rmtree(rng.choice(plans()).parent)

    def replace_in_place() -> None:
        target, source = rng.choice(plans()), rng.choice(plans())
        mtime = target.parent.stat().st_mtime_ns
        target.write_bytes(source.read_bytes()[:-1] + bytes([source.read_bytes()[-1] ^ 1]))
        os.utime(target.parent, ns=(0, mtime))

    def add_to_a_folder() -> None:
        target, source = rng.choice(plans()), rng.choice(plans())
        mtime = target.parent.stat().st_mtime_ns
        (target.parent / "record.md.age").write_bytes(source.read_bytes())
        os.utime(target.parent, ns=(0, mtime))

    def rename_a_folder() -> None:
        folder = rng.choice(plans()).parent
        folder.rename(folder.parent / ("T-" + "".join(rng.choices(alphabet, k=6))))

    steps = [
        add_to_a_folder,
        rename_a_folder,
        lambda: planned(workspace, cadre, str(next(days))),
        copy_in,
        remove,
        replace_in_place,
        lambda: saved_now(workspace, monkeypatch),
    ]
    kinds: list[str] = []
    for _ in range(16):
        step = rng.choice(steps)
        step()
        got = catalog.load_into(
            app_of(workspace),
            lambda c: (from_the_index(c), sorted(c.unreadable), sorted(r for r, _ in c.malformed)),
        )
        assert got == decrypted(workspace)
        kinds.append(type(answers[-1]).__name__)
    assert "str" in kinds and "_Swept" in kinds  # both answers were met
