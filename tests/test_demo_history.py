"""demo_history: the bulk demo's trees built in memory are the trees git builds, packed and
committed (signed) without `git commit`."""

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
    tree = demo_history.head_tree(repo)
    staged = []
    for n, path in enumerate(PATHS):
        oid = blob(repo, f"version {n}\n")
        tree.put(path, oid)
        staged.append(f"100644 {oid}\t{path}\n")
    written: dict[str, bytes] = {}
    ours = tree.write(written)
    git(repo, "update-index", "--add", "--index-info", given="".join(staged).encode())
    assert ours == git(repo, "write-tree")  # HEAD's files kept (run.sh still 100755)
    demo_history.pack_trees(repo, written)  # index-pack --strict accepts them
    assert git(repo, "cat-file", "-t", ours) == "tree"


def test_only_changed_folders_are_written_again(repo):
    tree = demo_history.head_tree(repo)
    tree.put("talks/2026/T-abc/plan.md.age", blob(repo, "one\n"))
    tree.put("talks/2025/T-old/plan.md.age", blob(repo, "two\n"))
    tree.write({})
    tree.put("talks/2026/T-abc/record.md.age", blob(repo, "three\n"))
    written: dict[str, bytes] = {}
    tree.write(written)
    assert len(written) == 4  # T-abc, 2026, talks, the root: not 2025, T-old nor tools


def test_a_tree_naming_a_missing_blob_is_refused(repo):
    tree = demo_history.head_tree(repo)
    tree.put("cadres/C-abc.md.age", "1" * 40)
    written: dict[str, bytes] = {}
    tree.write(written)
    with pytest.raises(TalkbookError, match="git index-pack failed"):
        demo_history.pack_trees(repo, written)


def test_the_branch_moves_only_from_where_it_was(repo):
    first = demo_history.head(repo)
    tree = demo_history.head_tree(repo)
    tree.put("cadres/C-abc.md.age", blob(repo, "profile\n"))
    written: dict[str, bytes] = {}
    oid = tree.write(written)
    demo_history.pack_trees(repo, written)
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    second = git(repo, *env, "commit-tree", oid, "-p", first, "-m", "second")
    with pytest.raises(TalkbookError, match="update-ref"):
        demo_history.move_branch(repo, second, second)  # HEAD is not where we started
    demo_history.move_branch(repo, second, first)
    demo_history.refresh_index(repo)
    assert demo_history.head(repo) == second
    assert git(repo, "diff", "--cached", "--name-only") == ""  # the index is HEAD's
