"""demo_history: the bulk demo's trees, built by `git fast-import`, are the trees git builds, and
are committed (signed) without `git commit`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from talkbook import demo_history
from talkbook.errors import TalkbookError

# Names whose order git decides by its own rule: a folder sorts as if its name ended in '/'
# ('a' the folder after 'a-b', before 'a0'), bytes not characters ('Z' before 'a', CJK last).
PATHS = ["a-b", "a/x.md.age", "a0", "Z", "a.b/c", "talks/2026/T-abc/plan.md.age", "档案/甲"]


def git(root: Path, *args: str, given: bytes = b"") -> str:
    done = subprocess.run(["git", *args], cwd=root, input=given, capture_output=True, check=True)
    return done.stdout.decode().strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "README").write_text("kept\n")
    (root / "tools").mkdir()
    (root / "tools" / "run.sh").write_text("#!/bin/sh\n")
    (root / "tools" / "run.sh").chmod(0o755)
    git(root, "add", "README", "tools/run.sh")
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    git(root, *env, "commit", "-q", "-m", "first")
    return root


def blob(root: Path, text: str) -> str:
    return git(root, "hash-object", "-w", "--stdin", given=text.encode())


def test_trees_are_the_trees_git_writes(repo):
    start = demo_history.head(repo)
    groups, staged = [], []
    for n, path in enumerate(PATHS):
        oid = blob(repo, f"version {n}\n")
        groups.append([(path, oid)])
        staged.append(f"100644 {oid}\t{path}\n")
        if n == 2:
            middle = "".join(staged)
    found = demo_history.trees(repo, start, [groups[0] + groups[1] + groups[2], *groups[3:]])
    assert len(found) == len(PATHS) - 2
    git(repo, "update-index", "--add", "--index-info", given=middle.encode())
    assert found[0] == git(repo, "write-tree")  # HEAD's files kept (run.sh still 100755)
    git(repo, "update-index", "--add", "--index-info", given="".join(staged).encode())
    assert found[-1] == git(repo, "write-tree")
    assert git(repo, "for-each-ref").count("refs/") == 1  # the scratch ref is gone: main only
    assert demo_history.head(repo) == start


def test_a_tree_naming_a_missing_blob_is_refused(repo):
    start = demo_history.head(repo)
    with pytest.raises(TalkbookError, match="git fast-import failed"):
        demo_history.trees(repo, start, [[("cadres/C-abc.md.age", "1" * 40)]])
    assert git(repo, "for-each-ref").count("refs/") == 1


def test_a_path_fast_import_would_read_quoted_is_refused(repo):
    start = demo_history.head(repo)
    with pytest.raises(ValueError):
        demo_history.trees(repo, start, [[('"quoted', blob(repo, "x\n"))]])


def test_the_branch_moves_only_from_where_it_was(repo):
    first = demo_history.head(repo)
    [oid] = demo_history.trees(repo, first, [[("cadres/C-abc.md.age", blob(repo, "档案\n"))]])
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    second = git(repo, *env, "commit-tree", oid, "-p", first, "-m", "second")
    with pytest.raises(TalkbookError, match="update-ref"):
        demo_history.move_branch(repo, second, second)  # HEAD is not where we started
    demo_history.move_branch(repo, second, first)
    demo_history.refresh_index(repo)
    assert demo_history.head(repo) == second
    assert git(repo, "diff", "--cached", "--name-only") == ""  # the index is HEAD's
