"""Attacks on the index's notes file, the compiled-template
cache, the tool's own commits recorded as verified, and the plan drafted while the tree is
checked. Each test proved a hole, failing before its fix (see the commits that fixed them)."""

from __future__ import annotations

import marshal
import zlib
from pathlib import Path

import pytest

from conftest import Setup, ok
from talkbook import catalog, index, indexchunks, indexfile
from talkbook.app import App

CRAFTED = "C-000h63"  # cadres/C-000h63.md.age: its CRC-32 ends in nine zero bits (a chunk bound)


def app_of(ws: Setup, pid: str = "P-01") -> App:
    return App(ws.root, ws.keys[pid])


def _columns(rels: list[str], readings: list | None, chunks: list[bytes] | None = None):
    n = len(rels)
    return indexfile.Columns(list(rels), [None] * n, [b""] * n, ["ok"] * n, readings, chunks)


def _row(value: str) -> list:
    return ["plan", {"n": value}, [], "", ""]


def _refreshed_with_a_change(rels: list[str]) -> indexfile.Columns:
    """What _update and _fill give when the first file's bytes changed and the others kept
    their place: readings decoded, chunks reusable from the known index (`_reuse`); then
    saved once, as _Pending.finish saves it."""
    readings = [_row(rel) for rel in rels]
    known = _columns(rels, None, _columns(rels, readings).chunks())
    known.readings()
    fresh = _columns(rels, [_row("changed"), *readings[1:]])
    fresh._reuse = (known, [None, *range(1, len(rels))])
    fresh.chunks()
    return fresh


def test_a_noted_entry_over_refreshed_columns_is_saved_with_its_new_reading() -> None:
    """note_written puts a rewritten file over the columns this process refreshed; when that
    refresh found a change, a save (more than RACY_REHASH noted) took the old chunk back:
    the index then holds the old reading for the new bytes, and trusts it (their digest)."""
    rels = [f"talks/2026/T-{n:06d}/plan.md.age" for n in range(3000)]
    fresh = _refreshed_with_a_change(rels)
    assert len(fresh.chunks()) > 2
    noted = _columns([rels[-1]], [_row("rewritten")])
    fresh.overlay(noted)
    saved = [row for chunk in fresh.chunks() for row in indexchunks.rows(chunk)]
    assert saved == fresh.readings()
    assert saved[-1] == _row("rewritten")


def test_a_noted_new_file_never_moves_a_reading_to_another_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks of one entry (paths whose CRC-32 ends in CHUNK_BITS zero bits: a pusher picks
    such names in a few hundred tries): an inserted entry shifts the paths, and the reused
    chunks after it put each reading on the path before its own."""
    monkeypatch.setattr(indexfile, "CHUNK_BITS", 0)
    rels = ["talks/2026/T-a/plan.md.age", *(f"talks/2026/T-{c}/plan.md.age" for c in "cde")]
    fresh = _refreshed_with_a_change(rels)
    fresh.overlay(_columns(["talks/2026/T-b/plan.md.age"], [_row("new")]))
    saved = [row[1]["n"] for chunk in fresh.chunks() for row in indexchunks.rows(chunk)]
    assert saved == [row[1]["n"] for row in fresh.readings()]
    assert saved[2] == "talks/2026/T-c/plan.md.age"


def test_a_retirement_is_in_the_index_a_retire_after_a_pull_leaves(
    workspace: Setup, cadre: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cadre retire 张三` right after a pull brought another file: its refresh found that file
    and saved; then the retirement was noted over those columns and, past RACY_REHASH (0 here,
    as for a command writing more than 64 files), saved with 张三's old chunk. The next
    commands trust that reading (its digest is the new file's): 张三 is not retired for them,
    and gets a new plan."""
    from conftest import PROFILE_ZH

    monkeypatch.setattr(index, "RACY_NS", 0)
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    source = tmp_path / "crafted.md"
    source.write_text(PROFILE_ZH.replace("name: 张伟", f"id: {CRAFTED}\nname: 张三"), "utf-8")
    ok(workspace.as_("P-01", "cadre", "new", "--from", source))
    assert not zlib.crc32(f"cadres/{CRAFTED}.md.age".encode()) & (1 << indexfile.CHUNK_BITS) - 1
    assert f"cadres/{CRAFTED}.md.age" < f"cadres/{cadre}.md.age"  # its own chunk, first
    ok(workspace.as_("P-01", "index"))
    pulled = workspace.path("cadres/C-zzzzzz.md.age")  # what a pull brought meanwhile
    pulled.write_bytes(workspace.path(f"cadres/{cadre}.md.age").read_bytes())
    ok(workspace.as_("P-01", "cadre", "retire", "张三", "--date", "2026-01-01"))
    profile = catalog.load(app_of(workspace)).profiles[CRAFTED]
    assert profile.meta.get("retired") == "2026-01-01"
    refused = workspace.as_(
        "P-01", "plan", CRAFTED, "--speaker", "P-03", "--at", "2026-03-10T09:30"
    )
    assert refused.exit_code != 0


PLANTED = 32 << 20  # bytes: notes hold at most RACY_REHASH entries, a few kilobytes


def test_planted_notes_of_any_size_are_not_read_whole(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notes file's name is computed from public keys: a pusher commits a huge one under
    `.talkbook/` (`git add -f`) and a pull writes it there. It is never removed while the
    index stays valid (only a save removes notes), so every command read and tried to decrypt
    all of it. Refused by its size, as template_cache refuses a large entry."""
    import talkbook.crypto

    ok(workspace.as_("P-01", "index"))
    app = app_of(workspace)
    store = indexfile.Store.open(app.workspace.root, app.keyring)
    assert store is not None
    with open(store.notes_path, "wb") as planted:
        planted.truncate(PLANTED)
    sizes: list[int] = []
    real = talkbook.crypto.decrypt

    def decrypt(data: bytes, keyring):
        sizes.append(len(data))
        return real(data, keyring)

    monkeypatch.setattr(talkbook.crypto, "decrypt", decrypt)
    assert cadre in catalog.load(app_of(workspace)).profiles
    assert sizes and max(sizes) < PLANTED


def test_plan_refuses_missing_flags_before_reading_the_tree(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    """Before the flags were resolved inside load_into, a plan without --at was refused first,
    whatever the tree held; a symlink a pusher committed under talks/ is refused only by the
    catalog's load. The order of refusals is the command's contract (dfb846d: 'refusals are the
    same and in the same order'); it broke there, and holds again since 3889957."""
    outside = tmp_path / "outside.age"
    outside.write_bytes(workspace.path(f"cadres/{cadre}.md.age").read_bytes())
    planted = workspace.path("talks/2026/T-evil00/plan.md.age")
    planted.parent.mkdir(parents=True)
    planted.symlink_to(outside)
    result = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03")
    assert result.exit_code != 0
    assert "--at" in result.stderr, result.stderr


def _git(root: Path, *args: str) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_law_change_staged_beforehand_is_never_recorded_as_the_tools_own(
    workspace: Setup, cadre: str
) -> None:
    """Held: a template change someone staged (a hook, a script) before the tool's write stays
    out of its commit, and the commit the tool made is verified: nothing of the law moved."""
    from talkbook import trust

    template = workspace.path("templates/zh-CN/plan.md.j2")
    template.write_text(template.read_text("utf-8") + "{{ 1 }}\n", "utf-8")
    _git(workspace.root, "add", "templates/zh-CN/plan.md.j2")
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    head = _git(workspace.root, "rev-parse", "HEAD").strip()
    changed = _git(workspace.root, "show", "--name-only", "--format=", "HEAD").split()
    assert changed and not any(trust.is_law(rel) for rel in changed)
    assert _git(workspace.root, "diff", "--cached", "--name-only").split() == [
        "templates/zh-CN/plan.md.j2"
    ]
    moved = _git(workspace.root, "diff", "--name-only", "HEAD~1", "HEAD").split()
    assert moved == changed  # the tree moved in the tool's paths only
    assert trust.pinned(workspace.root)["verified"] in (
        head,
        _git(workspace.root, "rev-parse", "HEAD~1").strip(),
    )


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_notes_that_are_no_regular_file_are_ignored(
    workspace: Setup, cadre: str, tmp_path: Path, kind: str
) -> None:
    """Held: the notes file swapped for a symlink to a valid notes file, or for a FIFO (which
    would hang a blocking read), is not taken; the plan is read from its own file."""
    import os

    ok(workspace.as_("P-01", "index"))
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    [notes] = sorted((workspace.root / indexfile.FOLDER).glob("index-*.notes.age"))
    aside = tmp_path / "notes.age"
    notes.rename(aside)
    if kind == "symlink":
        notes.symlink_to(aside)
    else:
        os.mkfifo(notes)
    app = app_of(workspace)
    store = indexfile.Store.open(app.workspace.root, app.keyring)
    assert store is not None
    columns, why = store.load()
    assert why == "" and store.noted == set()
    assert len(catalog.load(app_of(workspace)).plans) == 1


# A temporary file's name as atomic_write makes it, with a process id no process can have: a
# pusher commits it (`git add -f` under .talkbook/, or anywhere in the tree) and a pull writes it.
HUGE_PID_TEMP = ".x.tmp-99999999999999999999-abcdef01"


def test_a_planted_temp_name_does_not_break_every_write(workspace: Setup, cadre: str) -> None:
    """Store._sealed (every index save, and now every write's notes) removes stale temp files
    first: a pid past what os.kill takes raised OverflowError, so each write failed with
    'unexpected OverflowError' after its commit was made (a retry drafts a second plan)."""
    ok(workspace.as_("P-01", "index"))
    (workspace.root / indexfile.FOLDER / HUGE_PID_TEMP).write_bytes(b"")
    result = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30")
    assert result.exit_code == 0, result.stderr
    ok(workspace.as_("P-01", "index"))


def test_a_planted_temp_name_does_not_break_doctor(workspace: Setup, cadre: str) -> None:
    """doctor looks for stale temp files in every folder of the tree."""
    (workspace.root / "cadres" / HUGE_PID_TEMP).write_bytes(b"")
    result = workspace.as_("P-01", "doctor")
    assert "unexpected" not in result.stderr, result.stderr


def test_a_noted_path_holding_other_bytes_is_read_again(workspace: Setup, cadre: str) -> None:
    """Held: notes say what a path held when it was written, never by its stamp alone: the
    same path now holding other bytes (a pull, a checkout, a hand edit, with its mtime put
    back) is hashed and read again."""
    import os

    ok(workspace.as_("P-01", "index"))
    talks = []
    for day in ("10", "11"):
        plan = workspace.as_(
            "P-01", "plan", cadre, "--speaker", "P-03", "--at", f"2026-03-{day}T09:30"
        )
        talks.append(ok(plan).stdout.strip().splitlines()[-1])
    first, second = (workspace.path(f"talks/2026/{talk}/plan.md.age") for talk in talks)
    assert sorted((workspace.root / indexfile.FOLDER).glob("index-*.notes.age"))
    before = first.stat()
    first.write_bytes(second.read_bytes())
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
    columns = index.refresh(app_of(workspace)).columns
    row = columns.readings()[columns.rels.index(f"talks/2026/{talks[0]}/plan.md.age")]
    assert row[1]["id"] == talks[1]


def test_a_save_over_notes_keeps_one_stamp_per_path() -> None:
    """The notes go over a stamps blob lazily (f42637e); a save before the stamps are decoded
    (note_written's save after a sweep that said 'unchanged': the parent never decodes them)
    wrote the blob as loaded. One noted file more than the blob holds, and the saved stamps
    no longer decode to one per path: every stamp is lost, every file hashed again; a noted
    file rewritten keeps the stamp of its old bytes."""
    stamps = [(1, 1, 1, 1, 1), (2, 2, 2, 2, 2), (3, 3, 3, 3, 3)]
    columns = indexfile.Columns(
        ["a", "c", "e"], marshal.dumps(stamps), [b"a", b"c", b"e"], ["ok"] * 3, None
    )
    columns._chunks = [indexchunks.encode([_row(x) for x in "ace"])]
    columns.overlay(_columns(["b", "c"], [_row("b"), _row("c")]))
    saved = indexfile._decoded_list(columns.stamps_blob(), len(columns.rels))
    assert saved == columns.stamps == [stamps[0], None, None, stamps[2]]
