"""gittrail's write path: a commit of exactly the tool's paths, HEAD and HEAD's bytes asked of
the files git keeps them in where that is safe, and of git otherwise.

The usual commit is made with git's plumbing (HEAD's tree edited in these paths, update-index,
commit-tree, update-ref) instead of `git commit --only`, which refreshes every file's stat data
first and writes the whole index as a tree: these tests hold it to the same commit, whatever the
names around the paths, the same staged paths left out, and no commit over one made meanwhile;
what it does not make plainly (an executable, a folder where a file was) `git commit
--only` makes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from talkbook import gittrail
from talkbook.errors import TalkbookError

AUTHOR = gittrail.Author("周慧敏", "p-01@talkbook.invalid")
NOW = "2026-11-16T17:30"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with one commit holding two files, the clock fixed (same commits twice)."""
    monkeypatch.setenv("TALKBOOK_NOW", NOW)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for rel in ("cadres/C-aaaaaa.md.age", "talkbook.toml"):
        write(root, rel, b"first\n")
    git(root, "add", "--all")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "workspace: initialized")
    return root


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def porcelain_commit(root: Path, rels: list[str], message: str) -> str:
    """What gittrail.commit ran before: `git add` and `git commit --only`."""
    env = {**os.environ, **gittrail._identity_env(AUTHOR)}
    git(root, "add", "--all", "--", *rels)
    args = ["-c", "commit.gpgsign=false", "commit", "--no-verify", "--quiet", "--only"]
    done = subprocess.run(
        ["git", "-C", str(root), *args, "-m", message, "--", *rels], env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    return git(root, "rev-parse", "HEAD")


def test_a_commit_is_the_one_git_commit_only_makes(repo: Path) -> None:
    """Same tree, parent, author, committer, dates and message: the very same commit id."""
    start = git(repo, "rev-parse", "HEAD")
    new = write(repo, "talks/2026/T-bbbbbb/plan.md.age", b"plan\n")
    changed = write(repo, "cadres/C-aaaaaa.md.age", b"second\n")
    rels = ["talks/2026/T-bbbbbb/plan.md.age", "cadres/C-aaaaaa.md.age"]
    made = gittrail.commit(repo, [new, changed], "plan T-bbbbbb: drafted", AUTHOR)
    assert made == git(repo, "rev-parse", "HEAD")
    assert git(repo, "status", "--porcelain") == ""
    reflog = git(repo, "reflog", "-1", "--format=%gs")
    git(repo, "reset", "-q", "--soft", start)
    git(repo, "reset", "-q", start, "--", *rels)
    assert porcelain_commit(repo, rels, "plan T-bbbbbb: drafted") == made
    assert git(repo, "reflog", "-1", "--format=%gs") == reflog == "commit: plan T-bbbbbb: drafted"


def made_as_git_commit_only(root: Path, paths: list[Path], message: str) -> tuple[str, str]:
    """gittrail's commit of these paths, and the one `git commit --only` makes from the same
    start (HEAD and the index put back in between)."""
    start = git(root, "rev-parse", "HEAD")
    rels = [path.relative_to(root).as_posix() for path in paths]
    made = gittrail.commit(root, paths, message, AUTHOR)
    assert git(root, "status", "--porcelain", "--", *rels) == ""
    git(root, "reset", "-q", "--soft", start)
    git(root, "reset", "-q", start, "--", *rels)
    return made, porcelain_commit(root, rels, message)


def plumbed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The git commands _run_git runs, recorded (commit-tree: plumbing; commit: porcelain)."""
    ran: list[str] = []
    run_git = gittrail._run_git

    def recorded(root: Path, args: list[str], env: dict[str, str]) -> str:
        ran.append(next(arg for arg in args if arg in ("commit", "commit-tree", "update-ref")))
        return run_git(root, args, env)

    monkeypatch.setattr(gittrail, "_run_git", recorded)
    return ran


@pytest.mark.parametrize(
    "around",
    [
        ["talks/2026/T-b/record.md.age", "talks/2026/T-b.md", "talks/2026/T-b-x/plan.md.age"],
        ["talks/2026/T-a/plan.md.age", "talks/2026/T-c/plan.md.age", "talks/2026.md"],
        ["talks/2026/T-b0/plan.md.age", "talks/2026/T-b/plan.md.age.bak", "talks/2025/x"],
    ],
)
def test_names_around_the_paths_keep_git_s_order(
    repo: Path, around: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder sorts as if its name ended in a slash: `T-b` after `T-b.md` and before `T-b0`;
    the tree edited in place is the one git writes."""
    for rel in around:
        write(repo, rel, b"there\n")
    git(repo, "add", "--all")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "around")
    ran = plumbed(monkeypatch)
    new = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    changed = write(repo, "cadres/C-aaaaaa.md.age", b"second\n")
    made, porcelain = made_as_git_commit_only(repo, [new, changed], "plan T-b: drafted")
    assert made == porcelain
    assert ran[:2] == ["commit-tree", "update-ref"]
    assert git(repo, "fsck", "--strict", "--no-dangling") == ""


def test_a_folder_left_empty_goes(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(repo, "talks/2026/T-b/plan.md.age", b"plan\n")
    gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    ran = plumbed(monkeypatch)
    path.unlink()
    made, porcelain = made_as_git_commit_only(repo, [path], "plan T-b: removed")
    assert made == porcelain and ran[0] == "commit-tree"
    assert "talks" not in git(repo, "ls-tree", "--name-only", "HEAD").split()


@pytest.mark.parametrize("odd", ["executable", "folder was a file", "file was a folder"])
def test_what_is_not_plainly_a_file_is_left_to_git_commit_only(
    repo: Path, odd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = "talks/2026/T-b/plan.md.age"
    if odd == "folder was a file":  # HEAD has a file where the path needs a folder
        write(repo, "talks/2026/T-b", b"a file\n")
    elif odd == "file was a folder":  # HEAD has a folder where the path is a file
        write(repo, f"{rel}/inner", b"a file\n")
    if odd.startswith(("folder", "file")):
        git(repo, "add", "--all")
        git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "odd")
        git(repo, "rm", "-rq", "--cached", "talks")
        (repo / "talks").rename(repo / "gone")
    path = write(repo, rel, b"plan\n")
    path.chmod(0o755 if odd == "executable" else 0o644)
    ran = plumbed(monkeypatch)
    made, porcelain = made_as_git_commit_only(repo, [path], "plan T-b: drafted")
    assert made == porcelain
    assert ran[0] == "commit"


def runs_recorded(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command subprocess.run runs from now on."""
    ran: list[list[str]] = []
    real_run = subprocess.run

    def recorded(command, *args, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(list(command))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recorded)
    return ran


def test_the_folders_read_before_a_write_serve_its_commit_on_that_head_only(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`committed` reads the folders along the path in HEAD's commit; a commit made on that
    commit asks git for them no more; made on another (HEAD moved meanwhile), it reads that
    one's, and keeps what the other commit brought."""
    rel = "talks/2026/T-b/plan.md.age"
    assert gittrail.committed(repo, rel) is None
    ran = runs_recorded(monkeypatch)
    path = write(repo, rel, b"plan\n")
    gittrail.commit(repo, [path], "plan T-b: drafted", AUTHOR)
    assert not [command for command in ran if "cat-file" in command]
    assert gittrail.committed(repo, rel) == b"plan\n"
    write(repo, "talks/2026/T-c/plan.md.age", b"theirs\n")
    git(repo, "add", "talks/2026/T-c/plan.md.age")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "meanwhile")
    write(repo, rel, b"plan, edited\n")
    gittrail.commit(repo, [path], "plan T-b: edited", AUTHOR)
    listed = git(repo, "ls-tree", "-r", "--name-only", "HEAD", "talks/2026").split()
    assert listed == ["talks/2026/T-b/plan.md.age", "talks/2026/T-c/plan.md.age"]
    assert git(repo, "status", "--porcelain") == ""


def test_read_ahead_folders_answer_for_a_new_path_without_git(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After read_ahead of talks/2026, a new talk's path there is known to be nothing in HEAD
    (its folder is not in talks/2026's tree): committed() and the commit ask git no cat-file,
    and the commit is the one `git commit --only` makes. A path HEAD has there is still read."""
    write(repo, "talks/2026/T-a/plan.md.age", b"there\n")
    git(repo, "add", "--all")
    git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "a talk")
    gittrail.read_ahead(repo, "talks/2026")
    real_run = subprocess.run
    ran = runs_recorded(monkeypatch)
    rel = "talks/2026/T-b/plan.md.age"
    assert gittrail.committed(repo, rel) is None
    assert gittrail.committed(repo, "talks/2026/T-b/record.md.age") is None
    assert ran == []
    assert gittrail.committed(repo, "talks/2026/T-a/plan.md.age") == b"there\n"
    ran.clear()
    start = git(repo, "rev-parse", "HEAD")
    made = gittrail.commit(repo, [write(repo, rel, b"plan\n")], "plan T-b: drafted", AUTHOR)
    assert not [command for command in ran if "cat-file" in command]
    monkeypatch.setattr(subprocess, "run", real_run)
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", "talks").split() == [
        "talks/2026/T-a/plan.md.age",
        rel,
    ]
    git(repo, "reset", "-q", "--soft", start)
    git(repo, "reset", "-q", start, "--", rel)
    assert porcelain_commit(repo, [rel], "plan T-b: drafted") == made


def test_a_sha256_repository_gets_the_same_commit_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Object ids of 32 bytes: the trees edited, hashed and packed with SHA-256."""
    monkeypatch.setenv("TALKBOOK_NOW", NOW)
    root = tmp_path / "sha256"
    root.mkdir()
    git(root, "init", "-q", "-b", "main", "--object-format=sha256")
    write(root, "talks/2026/T-a/plan.md.age", b"first\n")
    git(root, "add", "--all")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "workspace: initialized")
    ran = plumbed(monkeypatch)
    new = write(root, "talks/2026/T-b/plan.md.age", b"plan\n")
    made, porcelain = made_as_git_commit_only(root, [new], "plan T-b: drafted")
    assert made == porcelain and len(made) == 64 and ran[0] == "commit-tree"


def test_a_removed_file_is_committed_as_removed(repo: Path) -> None:
    gone = repo / "cadres/C-aaaaaa.md.age"
    gone.unlink()
    gittrail.commit(repo, [gone], "cadre C-aaaaaa: removed", AUTHOR)
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD") == "talkbook.toml"
    assert git(repo, "status", "--porcelain") == ""


def test_what_the_user_staged_stays_out_of_the_commit_and_staged(repo: Path) -> None:
    write(repo, "notes.txt", b"mine\n")
    git(repo, "add", "notes.txt")
    path = write(repo, "cadres/C-aaaaaa.md.age", b"second\n")
    gittrail.commit(repo, [path], "cadre C-aaaaaa: edited", AUTHOR)
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "cadres/C-aaaaaa.md.age"
    assert git(repo, "status", "--porcelain") == "A  notes.txt"


def test_nothing_to_commit_fails_as_git_commit_does(repo: Path) -> None:
    start = git(repo, "rev-parse", "HEAD")
    with pytest.raises(TalkbookError, match="git commit failed"):
        gittrail.commit(repo, [repo / "talkbook.toml"], "config: edited", AUTHOR)
    assert git(repo, "rev-parse", "HEAD") == start


def test_a_commit_made_meanwhile_is_never_overwritten(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD moves only from the commit the new one was made on (update-ref's old value)."""
    run_git = gittrail._run_git

    def someone_commits_first(root: Path, args: list[str], env: dict[str, str]) -> str:
        if args and args[0] == "update-ref":
            git(root, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "x")
        return run_git(root, args, env)

    monkeypatch.setattr(gittrail, "_run_git", someone_commits_first)
    path = write(repo, "cadres/C-aaaaaa.md.age", b"second\n")
    with pytest.raises(TalkbookError, match="git commit failed"):
        gittrail.commit(repo, [path], "cadre C-aaaaaa: edited", AUTHOR)
    assert git(repo, "log", "-1", "--format=%s") == "x"


def test_git_packs_loose_objects_when_its_own_sample_says_so(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`git commit` runs `git maintenance run --auto` after each commit; the plumbing commit
    runs it when objects/17 holds more loose objects than `git gc --auto` allows there."""
    ran = runs_recorded(monkeypatch)
    path = write(repo, "cadres/C-aaaaaa.md.age", b"second\n")
    gittrail.commit(repo, [path], "cadre C-aaaaaa: edited", AUTHOR)
    assert not [c for c in ran if "maintenance" in c]
    sample = repo / ".git" / "objects" / gittrail.LOOSE_SAMPLE
    sample.mkdir(exist_ok=True)
    monkeypatch.setattr(os, "listdir", lambda folder: ["0" * 38] * (gittrail.LOOSE_LIMIT + 1))
    write(repo, "cadres/C-aaaaaa.md.age", b"third\n")
    gittrail.commit(repo, [path], "cadre C-aaaaaa: edited again", AUTHOR)
    assert [c for c in ran if c[-3:] == ["run", "--auto", "--quiet"]]


def test_head_read_from_the_files_is_what_git_says(repo: Path) -> None:
    assert gittrail._head_from_files(repo) == git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    assert gittrail._head_from_files(repo) == git(repo, "rev-parse", "HEAD")


def test_head_is_asked_of_git_for_packed_refs_and_an_empty_repository(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    assert gittrail._head_from_files(empty) is None
    assert gittrail.head(empty) is None
    packed = tmp_path / "packed"
    packed.mkdir()
    git(packed, "init", "-q", "-b", "main")
    git(packed, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "one")
    git(packed, "pack-refs", "--all")
    assert gittrail._head_from_files(packed) is None  # no loose ref file: git's to say
    assert gittrail.head(packed) == git(packed, "rev-parse", "HEAD")


def test_a_symlinked_ref_is_left_to_git(repo: Path) -> None:
    ref = repo / ".git" / "refs" / "heads" / "main"
    target = repo / ".git" / "elsewhere"
    target.write_text(ref.read_text())
    ref.unlink()
    ref.symlink_to(target)
    assert gittrail._head_from_files(repo) is None


def test_committed_is_heads_bytes_or_none(repo: Path) -> None:
    assert gittrail.committed(repo, "cadres/C-aaaaaa.md.age") == b"first\n"
    assert gittrail.committed(repo, "cadres/C-zzzzzz.md.age") is None
    assert gittrail.committed(repo, "cadres") is None  # a folder, not a file
    write(repo, "cadres/C-aaaaaa.md.age", b"changed, not committed\n")
    assert gittrail.committed(repo, "cadres/C-aaaaaa.md.age") == b"first\n"
