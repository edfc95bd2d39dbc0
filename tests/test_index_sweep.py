"""The sweep of the tree in a forked child (index._Sweep): while a command builds its catalog
from the index, a child lists the tree and lstats every file; only its answer "unchanged"
lets the index's answer stand. On a change it sends what it found, so that the parent does
not sweep again; anything else — a refused symlink, a crash — makes the parent sweep itself.
Files the index keeps no stamp for (just written) are hashed, not a reason to save."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Setup, ok
from talkbook import catalog, index, indexfile
from talkbook.app import App
from talkbook.errors import TalkbookError, UnsafePath


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every load sweeps in a child (no size threshold, as on two cores, every file settled at
    once); the verdicts seen."""
    monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
    monkeypatch.setattr(catalog, "processes", lambda: 2)
    monkeypatch.setattr(index, "RACY_NS", 0)  # every stamp kept at once: no waiting
    seen: list[bool] = []
    real = index._Sweep.answer

    def recorded(self: index._Sweep, loaded: bytes | None = None) -> object:
        answer = real(self, loaded)
        seen.append(answer is index.UNCHANGED)
        children.append(self.pid)
        return answer

    monkeypatch.setattr(index._Sweep, "answer", recorded)
    return seen


def app_of(ws: Setup) -> App:
    return App(ws.root, ws.keys["P-01"])


def renamed(ws: Setup, cadre: str, name: str, tmp_path: Path) -> None:
    text = app_of(ws).vault.read_text(ws.path(f"cadres/{cadre}.md.age"))
    source = tmp_path / "edited.md"
    source.write_text(text.replace("张伟", name), encoding="utf-8")
    ok(ws.as_("P-01", "edit", cadre, "--from", source))


children: list[int] = []  # the sweeping children's pids, as the verdicts were taken


def no_child_left() -> bool:
    """Every sweeping child has been waited for (no zombie, none still running)."""
    for pid in children:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return bool(children)


def test_unchanged_tree_the_child_says_so_and_nothing_is_written(
    workspace: Setup, cadre: str, verdicts: list[bool]
) -> None:
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"  # builds the index
    saved = sorted(p.stat().st_mtime_ns for p in (workspace.root / indexfile.FOLDER).iterdir())
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert verdicts[-1] is True
    assert (
        sorted(p.stat().st_mtime_ns for p in (workspace.root / indexfile.FOLDER).iterdir()) == saved
    )
    assert no_child_left()


def test_an_edit_is_seen_although_a_catalog_was_built_from_the_index_meanwhile(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool]
) -> None:
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    renamed(workspace, cadre, "张卫国", tmp_path)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert verdicts[-1] is False
    assert no_child_left()


def test_a_file_added_to_a_settled_talk_folder_is_seen(
    workspace: Setup, cadre: str, verdicts: list[bool]
) -> None:
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    before = catalog.load(app_of(workspace))
    talk = next(iter(before.plans))
    plan = next(workspace.root.glob("talks/*/*/plan.md.age"))
    folder_mtime = plan.parent.stat().st_mtime_ns
    copy = plan.parent / "addendum-1.md.age"
    copy.write_bytes(plan.read_bytes())
    os.utime(plan.parent, ns=(0, folder_mtime))  # the folder's mtime as it was
    after = index.refresh(app_of(workspace))
    assert f"{plan.parent.relative_to(workspace.root)}/addendum-1.md.age" in after.columns.rels
    assert talk in catalog.load(app_of(workspace)).plans


def test_a_symlinked_talk_folder_is_refused_by_the_parent(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool]
) -> None:
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    catalog.load(app_of(workspace))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plan.md.age").write_bytes(b"x")
    year = next(workspace.root.glob("talks/*/*/plan.md.age")).parent.parent
    (year / "T-2026-999").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath):
        catalog.load(app_of(workspace))
    assert verdicts[-1] is False
    assert no_child_left()


def test_the_childs_unchanged_counts_only_for_the_index_its_stat_file_was_saved_with(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool]
) -> None:
    """The child reads the stat file alone. An older index put back under a newer stat file
    (a copy, a kill between writes): the tree is as the stat file says, not as the index
    holds it; the child's "unchanged" is not taken for it, and the edit is read."""
    app = app_of(workspace)
    catalog.load(app)
    store = indexfile.Store.open(workspace.root, app.keyring)
    assert store is not None
    store.save(store.load()[0])  # the notes folded in
    older = store.path.read_bytes()
    renamed(workspace, cadre, "张卫国", tmp_path)
    catalog.load(app_of(workspace))
    store.save(store.load()[0])  # the index and stat file of the tree as it is now
    store.path.write_bytes(older)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert verdicts[-1] is False
    assert no_child_left()


def test_a_child_that_fails_leaves_the_sweep_to_the_parent(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool], monkeypatch
) -> None:
    catalog.load(app_of(workspace))
    parent = os.getpid()
    real = index.Listing.files

    def failing_in_the_child(self: index.Listing) -> list[str]:
        if os.getpid() != parent:
            raise MemoryError
        return real(self)

    monkeypatch.setattr(index.Listing, "files", failing_in_the_child)
    renamed(workspace, cadre, "张卫国", tmp_path)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert verdicts[-1] is False
    assert no_child_left()


def test_a_small_index_sweeps_here(workspace: Setup, cadre: str, monkeypatch) -> None:
    forks: list[int] = []
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or 0)
    catalog.load(app_of(workspace))
    catalog.load(app_of(workspace))  # one profile: under SWEEP_APART_FROM
    assert forks == []


def test_one_core_sweeps_here(workspace: Setup, cadre: str, monkeypatch) -> None:
    monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
    monkeypatch.setattr(catalog, "processes", lambda: 1)
    forks: list[int] = []
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or 0)
    catalog.load(app_of(workspace))
    catalog.load(app_of(workspace))
    assert forks == []


def test_an_interrupted_build_still_waits_for_the_child(
    workspace: Setup, cadre: str, verdicts: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.load(app_of(workspace))

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(index, "_built", interrupted)
    with pytest.raises(KeyboardInterrupt):
        catalog.load(app_of(workspace))
    assert verdicts and no_child_left()


def sweeps_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sweeps taken in this process (not in the child)."""
    parent, taken = os.getpid(), []
    real = index._Swept.taken.__func__  # type: ignore[attr-defined]

    def counted(cls, root, store, saved=None):  # type: ignore[no-untyped-def]
        if os.getpid() == parent:
            taken.append(1)
        return real(cls, root, store, saved)

    monkeypatch.setattr(index._Swept, "taken", classmethod(counted))
    return taken


def test_a_change_is_sent_back_and_not_swept_again(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool], monkeypatch
) -> None:
    catalog.load(app_of(workspace))
    renamed(workspace, cadre, "张卫国", tmp_path)
    taken = sweeps_here(monkeypatch)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert verdicts[-1] is False and taken == []


def just_written(ws: Setup, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The index saved while every file was racy (no stamp kept), then time moving on."""
    monkeypatch.setattr(index, "RACY_NS", 10**18)
    summary = index.refresh(app_of(ws))
    assert all(stamp is None for stamp in summary.columns.stamps)
    monkeypatch.setattr(index, "RACY_NS", 0)
    return summary.columns.rels


def test_files_just_written_are_hashed_and_nothing_is_saved(
    workspace: Setup, cadre: str, verdicts: list[bool], monkeypatch
) -> None:
    just_written(workspace, monkeypatch)
    saves: list[int] = []
    monkeypatch.setattr(indexfile.Store, "save", lambda *a: saves.append(1))
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    assert verdicts[-1] is True and saves == []
    monkeypatch.setattr(index, "SWEEP_APART_FROM", 10**9)  # the same in this process
    assert index.refresh(app_of(workspace)).decrypted == 0 and saves == []


def test_a_file_just_written_then_changed_is_read_again(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool], monkeypatch
) -> None:
    just_written(workspace, monkeypatch)
    renamed(workspace, cadre, "张卫国", tmp_path)
    assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张卫国"
    assert verdicts[-1] is False


def test_many_files_without_a_stamp_are_saved_with_their_stamps(
    workspace: Setup, cadre: str, verdicts: list[bool], monkeypatch
) -> None:
    rels = just_written(workspace, monkeypatch)
    monkeypatch.setattr(index, "RACY_REHASH", len(rels) - 1)
    catalog.load(app_of(workspace))
    assert verdicts[-1] is False
    assert None not in index.refresh(app_of(workspace)).columns.stamps


def test_what_is_computed_meanwhile_stands_when_nothing_changed(
    workspace: Setup, cadre: str, verdicts: list[bool]
) -> None:
    catalog.load(app_of(workspace))
    calls: list[str] = []

    def name(found: catalog.Catalog) -> str:
        calls.append(found.cadre_name(cadre))
        return calls[-1]

    assert index.computed(app_of(workspace), name) == "张伟"
    assert verdicts[-1] is True and calls == ["张伟"]


def test_what_is_computed_meanwhile_is_computed_again_after_a_change(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool]
) -> None:
    catalog.load(app_of(workspace))
    renamed(workspace, cadre, "张卫国", tmp_path)
    calls: list[str] = []

    def refusing_the_old_name(found: catalog.Catalog) -> str:
        calls.append(found.cadre_name(cadre))
        if calls[-1] == "张伟":
            raise TalkbookError("computed from the index as it was")
        return calls[-1]

    assert index.computed(app_of(workspace), refusing_the_old_name) == "张卫国"
    assert verdicts[-1] is False and calls == ["张伟", "张卫国"]


def test_a_sweep_begun_early_is_the_one_computed_takes(
    workspace: Setup, cadre: str, verdicts: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.load(app_of(workspace))
    started: list[int] = []
    real = index._Sweep.start

    def counted(root: Path, store: indexfile.Store) -> index._Sweep | None:
        started.append(1)
        return real(root, store)

    monkeypatch.setattr(index._Sweep, "start", counted)
    app = app_of(workspace)
    catalog.begin(app)
    catalog.begin(app)  # once begun, begun
    assert index.computed(app, lambda found: found.cadre_name(cadre)) == "张伟"
    assert started == [1] and verdicts[-1] is True and app.index_begun is None
    assert no_child_left()


def test_an_early_sweep_is_the_commands_moment_and_the_next_command_sees_what_came_after(
    workspace: Setup, cadre: str, tmp_path: Path, verdicts: list[bool]
) -> None:
    """A command that begins its sweep early (plan, while it parses what it was given) reads
    the tree as it was when the child swept it, as any read is of one moment; a change made
    meanwhile by another process is the next command's to see."""
    catalog.load(app_of(workspace))
    app = app_of(workspace)
    catalog.begin(app)
    renamed(workspace, cadre, "张卫国", tmp_path)  # another process, touching no index
    assert index.computed(app, lambda found: found.cadre_name(cadre)) in ("张伟", "张卫国")
    assert index.computed(app_of(workspace), lambda found: found.cadre_name(cadre)) == "张卫国"
    assert verdicts[-1] is False and no_child_left()


def test_an_early_sweep_is_dropped_by_a_refresh_that_sweeps_here(
    workspace: Setup, cadre: str, verdicts: list[bool]
) -> None:
    catalog.load(app_of(workspace))
    app = app_of(workspace)
    catalog.begin(app)
    assert index.refresh(app).files > 0
    assert app.index_begun is None and no_child_left()


def test_an_error_computed_meanwhile_is_raised_once_the_tree_proves_unchanged(
    workspace: Setup, cadre: str, verdicts: list[bool]
) -> None:
    catalog.load(app_of(workspace))

    def refusing(found: catalog.Catalog) -> None:
        raise TalkbookError("refused")

    with pytest.raises(TalkbookError, match="refused"):
        index.computed(app_of(workspace), refusing)
    assert verdicts[-1] is True and no_child_left()


def test_an_interrupt_in_the_child_ends_it_there(
    workspace: Setup, cadre: str, verdicts: list[bool], monkeypatch, tmp_path: Path
) -> None:
    """A KeyboardInterrupt in the child never climbs the command's stack there (its lock,
    its exit handlers): the child ends, and the parent sweeps."""
    catalog.load(app_of(workspace))
    parent, escaped = os.getpid(), tmp_path / "escaped"

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(index, "_sweep_and_exit", interrupted)
    try:
        assert catalog.load(app_of(workspace)).cadre_name(cadre) == "张伟"
    finally:
        if os.getpid() != parent:  # the child climbed out into this test: say so, and end
            escaped.write_text("child", encoding="utf-8")
            os._exit(0)
    assert not escaped.exists()
    assert verdicts[-1] is False and no_child_left()


def test_a_few_talk_folders_changed_are_not_worth_a_save() -> None:
    saved = {f"talks/2026/T-{n}": [[n, n, n], ["plan.md.age"]] for n in range(100)}
    found = dict(saved, **{"talks/2026/T-new": [[1, 1, 1], ["plan.md.age"]]})
    assert not index._worth_saving(saved, saved)
    assert not index._worth_saving(found, saved)  # the folder a command just wrote into
    many = {rel: [[0, 0, 0], names] for rel, (_, names) in saved.items()}
    assert index._worth_saving(many, saved)  # a checkout touched them all


def test_a_selected_catalog_holds_only_what_select_keeps(workspace: Setup, cadre: str) -> None:
    full = catalog.load(app_of(workspace))

    def the_cadre(kind: str, rel: str, head: dict[str, object]) -> bool:
        return kind == "profile" and head.get("id") == cadre

    picked = index.computed(app_of(workspace), lambda found: found, select=the_cadre)
    assert list(picked.profiles) == [cadre] and not picked.plans and not picked.records
    assert not picked.malformed and not picked.unreadable
    assert picked.profiles[cadre].meta == full.profiles[cadre].meta


def test_stamps_compared_a_stretch_at_a_time_as_one_by_one() -> None:
    """_unchanged's comparison: the kept stamps' gaps (None) found with list.index, and the
    stretches between compared whole, say what comparing entry by entry says."""
    import random

    rng = random.Random(8)
    for _ in range(500):
        size = rng.randrange(0, 30)
        kept = [None if rng.random() < 0.1 else (rng.randrange(3),) for _ in range(size)]
        stamps = [(rng.randrange(3),) if s is None or rng.random() < 0.05 else s for s in kept]
        differ = [n for n, (a, b) in enumerate(zip(stamps, kept, strict=True)) if a != b]
        one_by_one = len(differ) <= index.RACY_REHASH and all(kept[n] is None for n in differ)
        gaps = index._unstamped(kept)  # type: ignore[arg-type]
        stretches = gaps is not None and index._same_between(stamps, kept, gaps)  # type: ignore[arg-type]
        assert stretches == one_by_one
        assert not one_by_one or (gaps is not None and set(differ) <= set(gaps))


def test_a_plan_refused_before_it_reads_leaves_no_sweeping_child(
    workspace: Setup, cadre: str, verdicts: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan` begins the tree's check as it starts (index.begin); refused before it reads the
    catalog (a time that is none), the child is ended and reaped, not left running."""
    catalog.load(app_of(workspace))
    started: list[int] = []
    real = index._Sweep.start

    def recorded(root: Path, store: indexfile.Store) -> index._Sweep | None:
        sweep = real(root, store)
        started.append(sweep.pid if sweep else 0)
        return sweep

    monkeypatch.setattr(index._Sweep, "start", recorded)
    refused = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "someday")
    assert refused.exit_code != 0 and "someday" in refused.stderr
    assert len(started) == 1 and started[0] > 0
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], os.WNOHANG)
