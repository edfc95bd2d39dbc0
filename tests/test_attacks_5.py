"""An attacker's pass over the plumbing commit (gittrail: HEAD's tree edited in Python) and the
index's partial re-listing: what a crafted name, a crafted tree in HEAD (pushed by someone with
push access; git fetches it without fsck by default) or a folder changed behind the index's
back makes of them.

Four were findings, fixed in gittrail (a crafted tree goes to git, a CR in a path is read the
ls-tree way, a commit date past 9999 counts for nothing): their tests failed before; the others
hold.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ok
from talkbook import catalog, gittrail, index, indexfile
from talkbook.app import App
from test_gittrail import plumbed, porcelain_commit  # what git commit --only makes; _run_git's

AUTHOR = gittrail.Author("周慧敏", "p-01@talkbook.invalid")
NOW = "2026-11-16T17:30"


def git(root: Path, *args: str, given: bytes | None = None) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, input=given)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8", "surrogateescape").strip()


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "--all")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TALKBOOK_NOW", NOW)
    gittrail._SEEN.clear()
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "talkbook.toml", b"first\n")
    commit_all(root, "workspace: initialized")
    return root


def made_and_porcelain(root: Path, paths: list[Path], message: str) -> tuple[str, str]:
    start = git(root, "rev-parse", "HEAD")
    rels = [path.relative_to(root).as_posix() for path in paths]
    made = gittrail.commit(root, paths, message, AUTHOR)
    git(root, "reset", "-q", "--soft", start)
    git(root, "reset", "-q", start, "--", *rels)
    return made, porcelain_commit(root, rels, message)


def crafted_head(root: Path, folder: str, entries: list[tuple[str, str, str]]) -> None:
    """HEAD moved to a commit whose `folder` (one level under the top) is a tree of exactly
    these (mode, name, object id) entries, in this order, as written by hand (git hash-object
    --literally: no check of modes or order), and the index read from it."""
    body = b"".join(
        b"%s %s\0%s" % (mode.encode(), name.encode(), bytes.fromhex(oid))
        for mode, name, oid in entries
    )
    tree = git(root, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", given=body)
    top = git(root, "mktree", given=f"040000 tree {tree}\t{folder}\n".encode())
    crafted = git(root, "commit-tree", "-p", "HEAD", "-m", "crafted", top)
    git(root, "update-ref", "HEAD", crafted)
    git(root, "read-tree", "HEAD")
    gittrail._SEEN.clear()


# --- gittrail: names ------------------------------------------------------------------------


def test_a_name_ending_in_a_carriage_return_commits_its_own_bytes(repo: Path) -> None:
    write(repo, "talks/2026/T-b/plan.md.age", b"decoy\n")
    path = write(repo, "talks/2026/T-b/plan.md.age\r", b"the real bytes\n")
    gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    listed = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-p", "HEAD:talks/2026/T-b/plan.md.age\r"],
        capture_output=True,
    )
    assert listed.stdout == b"the real bytes\n"
    assert git(repo, "status", "--porcelain", "--", "talks") == "?? talks/2026/T-b/plan.md.age"


def test_committed_of_a_name_ending_in_a_carriage_return_is_its_own(repo: Path) -> None:
    write(repo, "cadres/C-aaaaaa.md.age", b"decoy\n")
    commit_all(repo, "decoy")
    assert gittrail.committed(repo, "cadres/C-aaaaaa.md.age\r") is None


@pytest.mark.parametrize(
    "name",
    [
        "talks/2026/张伟-T-b/plan.md.age",
        "talks/2026/T b/plan.md.age",
        "talks/2026/T-b./plan.md.age",
        "talks/2026/T-b/plan.md.age ",
        "talks/2026/T-b\t/plan.md.age",
        "talks/2026/T-b\\/plan.md.age",
        "talks/2026/-T-b/plan.md.age",
    ],
)
def test_odd_names_are_committed_as_git_commit_only_commits_them(
    repo: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for around in ("talks/2026/T-b/x", "talks/2026/T-b.md", "talks/2026/T-b0/x", "talks/2026/张"):
        write(repo, around, b"there\n")
    commit_all(repo, "around")
    made, porcelain = made_and_porcelain(repo, [write(repo, name, b"plan\n")], "plan: drafted")
    assert made == porcelain


def test_a_quoted_name_is_left_to_git_commit_only(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = plumbed(monkeypatch)
    made, porcelain = made_and_porcelain(repo, [write(repo, '"q"', b"x\n")], "q: drafted")
    assert made == porcelain and ran[0] == "commit"


# --- gittrail: what HEAD holds along the path -----------------------------------------------


def test_a_submodule_where_the_folder_is_is_left_to_git(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD has a gitlink at talks/2026: the plumbing makes no tree through it."""
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},talks/2026")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "a submodule")
    ran = plumbed(monkeypatch)
    path = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    with pytest.raises(Exception):  # noqa: B017,PT011 - git's own refusal, whatever it says
        gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    assert "commit-tree" not in ran
    assert git(repo, "ls-tree", "HEAD", "talks/2026").startswith("160000 commit")


def test_a_symlink_where_the_folder_is_in_head_is_left_to_git(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD has a symlink at talks/2026 (the working tree a real folder): git commit --only."""
    os.makedirs(repo / "talks")
    os.symlink("elsewhere", repo / "talks/2026")
    commit_all(repo, "a link")
    (repo / "talks/2026").unlink()
    ran = plumbed(monkeypatch)
    path = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    with contextlib.suppress(Exception):  # git refusing is as good
        gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    assert "commit-tree" not in ran


def test_a_symlinked_folder_in_the_working_tree_commits_nothing_through_it(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """talks/2026 replaced by a symlink to a folder outside: update-index refuses a path
    beyond a symlink, so no commit (HEAD stays), as `git add` refuses it."""
    write(repo, "talks/2026/T-a/plan.md.age", b"there\n")
    commit_all(repo, "a talk")
    start = git(repo, "rev-parse", "HEAD")
    outside = tmp_path / "outside"
    (outside / "T-b").mkdir(parents=True)
    (outside / "T-b/plan.md.age").write_bytes(b"planted\n")
    os.rename(repo / "talks/2026", tmp_path / "moved")
    os.symlink(outside, repo / "talks/2026")
    with pytest.raises(Exception):  # noqa: B017,PT011
        gittrail.commit(repo, [repo / "talks/2026/T-b/plan.md.age"], "plan T-b: x", AUTHOR)
    assert git(repo, "rev-parse", "HEAD") == start


@pytest.mark.parametrize("crafted", ["zero-padded folder mode", "entries out of order"])
def test_a_crafted_tree_in_head_does_not_hide_the_committed_file(
    repo: Path, crafted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo, "t/T-b/p", b"1\n")
    write(repo, "t/T-b.a", b"2\n")
    write(repo, "t/T-c", b"3\n")
    commit_all(repo, "around")
    folder, blob_a, blob_c = (
        git(repo, "rev-parse", f"HEAD:t/{n}") for n in ("T-b", "T-b.a", "T-c")
    )
    if crafted == "zero-padded folder mode":  # git's order, a folder's mode as old gits wrote
        entries = [
            ("100644", "T-b.a", blob_a),
            ("040000", "T-b", folder),
            ("100644", "T-c", blob_c),
        ]
    else:
        entries = [("100644", "T-c", blob_c), ("100644", "T-b.a", blob_a), ("40000", "T-b", folder)]
    crafted_head(repo, "t", entries)
    path = write(repo, "t/T-b.0", b"new\n")
    start = git(repo, "rev-parse", "HEAD")
    made = gittrail.commit(repo, [path], "t: written", AUTHOR)
    gittrail._SEEN.clear()
    assert gittrail.committed(repo, "t/T-b.0") == b"new\n"  # now None: git stops before it
    git(repo, "reset", "-q", "--soft", start)
    git(repo, "reset", "-q", start, "--", "t/T-b.0")
    assert made == porcelain_commit(repo, ["t/T-b.0"], "t: written")


def test_a_malformed_tree_in_head_is_one_error_line(repo: Path) -> None:
    """git itself refuses a truncated tree before gittrail parses it: one TalkbookError."""
    from talkbook.errors import TalkbookError

    write(repo, "talks/2026/T-a/plan.md.age", b"there\n")
    commit_all(repo, "a talk")
    talks = git(repo, "rev-parse", "HEAD:talks")
    top = b"40000 talks\0" + bytes.fromhex(talks) + b"100644 zz"
    tree = git(repo, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", given=top)
    git(repo, "update-ref", "HEAD", git(repo, "commit-tree", "-p", "HEAD", "-m", "x", tree))
    gittrail._SEEN.clear()
    gittrail.read_ahead(repo, "talks/2026")  # quiet: asked again later
    with pytest.raises(TalkbookError):
        gittrail.committed(repo, "talks/2026/T-a/plan.md.age")
    path = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    with pytest.raises(TalkbookError):
        gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)


def test_a_commit_made_between_read_ahead_and_the_write_is_kept(repo: Path) -> None:
    """read_ahead's trees are of the HEAD then: a commit made after it (a sync, a hand commit)
    is the write's parent, and what it brought stays."""
    write(repo, "talks/2026/T-a/plan.md.age", b"there\n")
    commit_all(repo, "a talk")
    gittrail.read_ahead(repo, "talks/2026")
    write(repo, "talks/2026/T-c/plan.md.age", b"theirs\n")
    commit_all(repo, "meanwhile")
    meanwhile = git(repo, "rev-parse", "HEAD")
    path = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    made = gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    assert git(repo, "rev-parse", f"{made}^") == meanwhile
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", "talks").split() == [
        "talks/2026/T-a/plan.md.age",
        "talks/2026/T-b/plan.md.age",
        "talks/2026/T-c/plan.md.age",
    ]


# --- due: when each profile was added (gittrail.first_added_later) ----------------------------


def test_a_profile_added_with_an_author_date_past_9999_does_not_break_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import PROFILE_ZH, STAFF, run
    from talkbook.crypto import generate_key_file

    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    key = keys / "P-01.txt"
    public = generate_key_file(key)
    root = tmp_path / "ws"
    assert run("-i", key, "init", root, "--org", "市委组织部").exit_code == 0
    name, roles = STAFF["P-01"]
    added = run("-w", root, "-i", key, "person", "add", "P-01", "--name", name,
                *(a for r in roles for a in ("--role", r)), "--key", public)  # fmt: skip
    assert added.exit_code == 0, added.stderr
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH, encoding="utf-8")
    # A member with push access (signing as themselves) sets git's date, not talkbook's clock.
    monkeypatch.delenv("TALKBOOK_NOW", raising=False)
    monkeypatch.setenv("GIT_AUTHOR_DATE", "@253402300800 +0000")  # 10000-01-01
    made = run("-w", root, "-i", key, "cadre", "new", "--from", source)
    assert made.exit_code == 0, made.stderr
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    assert git(root, "log", "-1", "--format=%aI").startswith("10000-")
    due = run("-w", root, "-i", key, "due")
    assert due.exception is None or isinstance(due.exception, SystemExit), due.exception
    assert due.exit_code == 0, due.stderr


# --- index: a talk folder changed behind the index's back ----------------------------------


def planned(workspace, cadre: str, day: str) -> Path:
    at = f"2026-03-{day}T09:30"
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", at))
    return next(workspace.root.glob(f"talks/*/{talk.stdout.strip().splitlines()[-1]}"))


def refreshed(workspace) -> list[str]:
    """The index's paths after a refresh, as P-01's."""
    return index.refresh(App(workspace.root, workspace.keys["P-01"])).columns.rels


def put_back(folder: Path, mtime_ns: int) -> None:
    os.utime(folder, ns=(mtime_ns, mtime_ns))


def changed_behind(folders: list[Path], how: str) -> None:
    """A change made so that each talk folder's mtime is what it was (its ctime moves: only
    the clock of the machine could put that back)."""
    mtimes = {folder: folder.stat().st_mtime_ns for folder in folders}
    a, b, c = folders
    if how == "emptied":
        for file in a.iterdir():
            file.unlink()
    elif how == "renamed":
        a.rename(a.parent / "T-zzzzzz")
        put_back(a.parent / "T-zzzzzz", mtimes[a])
    elif how == "replaced by another":
        a.rename(a.parent.parent / "gone")
        shutil.copytree(b, a)  # copystat: b's mtime
    elif how == "a file moved across":
        (a / "plan.md.age").rename(b / "record.md.age")
    elif how == "a new year with an old folder":
        shutil.copytree(c, c.parent.parent / "2031" / c.name)  # its mtime copied
    for folder in folders:
        if folder.is_dir():
            put_back(folder, mtimes[folder])


@pytest.mark.parametrize("apart", [False, True])
@pytest.mark.parametrize(
    "how",
    [
        "emptied",
        "renamed",
        "replaced by another",
        "a file moved across",
        "a new year with an old folder",
    ],
)
def test_a_talk_folder_changed_with_its_mtime_put_back_is_listed_as_it_is(
    workspace, cadre: str, monkeypatch: pytest.MonkeyPatch, how: str, apart: bool
) -> None:
    monkeypatch.setattr(index, "RACY_NS", 0)
    if apart:  # as on two cores: the child sweeps (and re-lists) while the parent loads
        monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
        monkeypatch.setattr(catalog, "processes", lambda: 2)
    folders = [planned(workspace, cadre, day) for day in ("10", "11", "12")]
    monkeypatch.setattr(index, "RACY_REHASH", 0)  # saved, not noted: the keys as saved
    index.refresh(App(workspace.root, workspace.keys["P-01"]))
    monkeypatch.setattr(index, "RACY_REHASH", 64)
    assert refreshed(workspace) == index.listing(workspace.root)
    changed_behind(folders, how)
    for _ in range(2):  # the first refresh after the change, and the one after its save
        assert refreshed(workspace) == index.listing(workspace.root)
    listed = ok(workspace.as_("P-01", "list", "talks")).stdout
    assert ("T-zzzzzz" in listed) == (how == "renamed")


def test_a_stat_file_older_than_its_index_lists_the_tree_as_it_is(
    workspace, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between the index's write and its stat file's leaves the stat file of the save
    before: bound to another index, it is not taken (every folder listed, every file hashed),
    in the parent and in the sweeping child."""
    monkeypatch.setattr(index, "RACY_NS", 0)
    monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
    monkeypatch.setattr(catalog, "processes", lambda: 2)
    folders = [planned(workspace, cadre, day) for day in ("10", "11")]
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    index.refresh(App(workspace.root, workspace.keys["P-01"]))
    [stat_file] = (workspace.root / indexfile.FOLDER).glob("index-*.stat.age")
    before = stat_file.read_bytes()
    mtime = folders[0].stat().st_mtime_ns
    (folders[0] / "plan.md.age").rename(folders[0].parent.parent / "away")
    put_back(folders[0], mtime)
    index.refresh(App(workspace.root, workspace.keys["P-01"]))  # saved: index and stat file
    stat_file.write_bytes(before)  # as if killed before the stat file was replaced
    (folders[0].parent.parent / "away").rename(folders[0] / "plan.md.age")
    put_back(folders[0], mtime)
    monkeypatch.setattr(index, "RACY_REHASH", 64)
    for _ in range(2):
        assert refreshed(workspace) == index.listing(workspace.root)


# --- index format 10: a profile split into head and tail ------------------------------------


@pytest.mark.parametrize("status", [None, "submitted"])
def test_item_get_answers_every_field_as_the_whole_front_matter_does(status: str | None) -> None:
    """Whatever a crafted profile (or plan) holds — a name or unit that is a list, a table
    where a date goes, empty lists, a key named like a head list — Item.get of each key, before
    and after the tail is decoded, is meta.get's, and the whole front matter comes back in its
    order (readers that moved to Item.get miss nothing)."""
    from talkbook.indexchunks import Tails, encode, heads

    crafted = {
        "id": "C-aaaaaa",
        "name": ["张伟", "李明"],
        "unit": {"zh": "市委"},
        "post": None,
        "events": [{"occasion": "promotion", "date": "2026-01-01"}],
        "roles": [],
        "work_history": [{"from": "2001", "unit": "x"}],
        "retired": {"on": "2026-01-01"},
        "decisions": ["a"],
        "status": status,
        "": [1],
    }
    rows = [("profile", crafted), ("plan", dict(crafted)), ("profile", {"id": "C-b"})]
    head_rows, tail = heads(encode(rows))
    for at, (kind, meta) in enumerate(rows):
        row = head_rows[at]
        split = len(row) == 3  # as index._built makes items: a tail only for a split row
        tails = Tails([0], [len(rows)], [tail]) if split else None
        keys = row[2] if split else ()
        item = catalog.Item(kind, f"x/{at}", None, None, row[1], None, tails, at, keys)
        for key in [*meta, "missing"]:
            assert item.get(key, "default") == meta.get(key, "default"), key
        assert list(item.meta.items()) == list(meta.items())
        for key in [*meta, "missing"]:
            assert item.get(key, "default") == meta.get(key, "default"), key


def test_a_pushed_gitignore_does_not_keep_a_write_out_of_the_trail(repo: Path) -> None:
    """A .gitignore that matches the tool's paths (anyone may push one): the plumbing stages
    and commits the path all the same (update-index reads no ignore rules), where `git add`
    refused it before (`git commit --only` then failed the write). Its fallback still runs
    `git add` without --force: see the report of test_attacks_5."""
    write(repo, ".gitignore", b"talks/\n")
    commit_all(repo, "ignore the talks")
    path = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    assert (
        git(repo, "ls-tree", "-r", "--name-only", "HEAD", "talks") == "talks/2026/T-b/plan.md.age"
    )
    assert git(repo, "status", "--porcelain", "--ignored", "--", "talks") == ""


@pytest.mark.parametrize("then", ["removed", "a file added", "a file removed"])
def test_a_folder_unsettled_at_the_save_is_never_answered_from_its_saved_paths(
    workspace, cadre: str, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """A talk folder changed within RACY_NS of the save has no key in the stat file, while its
    paths are in the index: gone or changed later, the listing (its year's keys as saved, or
    not) and the stamps still give the tree as it is, in the parent and in the child."""
    import time

    monkeypatch.setattr(index, "SWEEP_APART_FROM", 0)
    monkeypatch.setattr(catalog, "processes", lambda: 2)
    settled = [planned(workspace, cadre, day) for day in ("10", "11")]
    time.sleep(0.6)
    fresh = planned(workspace, cadre, "12")
    monkeypatch.setattr(index, "RACY_NS", 300_000_000)  # the first two settled, not the third
    monkeypatch.setattr(index, "RACY_REHASH", 0)
    index.refresh(App(workspace.root, workspace.keys["P-01"]))
    monkeypatch.setattr(index, "RACY_REHASH", 64)
    time.sleep(0.4)
    if then == "removed":
        shutil.rmtree(fresh)
    elif then == "a file added":
        (fresh / "record.md.age").write_bytes((settled[0] / "plan.md.age").read_bytes())
    else:
        (fresh / "plan.md.age").unlink()
    for _ in range(3):
        assert refreshed(workspace) == index.listing(workspace.root)


def test_object_ids_read_a_path_with_a_cr_whole(repo: Path) -> None:
    """trust asks the object id of each law path a commit changed (gittrail.object_ids): a
    path ending in a CR is its own, not the id of the path without it (git's --batch-check
    reads a spec a line and drops a trailing CR)."""
    write(repo, "templates/x", b"plain\n")
    write(repo, "templates/x\r", b"with a CR\n")
    commit_all(repo, "two templates")
    head = git(repo, "rev-parse", "HEAD")
    found = gittrail.object_ids(repo, [f"{head}:templates/x\r", f"{head}:templates/x"])
    with_cr = git(repo, "hash-object", "--stdin", given=b"with a CR\n")
    assert found[f"{head}:templates/x\r"] == with_cr
    assert found[f"{head}:templates/x"] == git(repo, "hash-object", "--stdin", given=b"plain\n")
    assert gittrail.object_ids(repo, [f"{head}:templates/y\r"]) == {f"{head}:templates/y\r": None}
