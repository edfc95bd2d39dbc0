"""Two officers, one bare remote: concurrent edits merge field by field, conflicts are resolved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Setup, git_log, ok, run
from talkbook import merge
from talkbook.models import Document


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert not check or done.returncode == 0, done.stderr
    return done


@pytest.fixture
def officers(workspace: Setup, cadre: str, tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """Clones A and B of one bare remote, each set up; the custodian's key drives git's driver."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(workspace.root), str(remote))
    root_sha = git_log(workspace.root, "--reverse", "--format=%H").split()[1]
    clones = []
    for name in ("a", "b"):
        clone = tmp_path / name
        git(tmp_path, "clone", "-q", str(remote), str(clone))
        ok(run("-w", clone, "-i", workspace.keys["P-01"], "setup", "--trust", root_sha))
        clones.append(clone)
    monkeypatch.setenv("TALKBOOK_IDENTITY", str(workspace.keys["P-01"]))
    return clones[0], clones[1]


def as_p01(clone: Path, *args: str, **kwargs):
    return run("-w", clone, *args, **kwargs)


def edited(clone: Path, ref: str, old: str, new: str) -> None:
    text = ok(as_p01(clone, "cat", ref)).stdout
    assert old in text
    ok(as_p01(clone, "edit", ref, "--from", "-", input=text.replace(old, new, 1)))


def test_lists_union_and_fields_merge(officers, cadre: str) -> None:
    a, b = officers
    ok(as_p01(a, "event", cadre, "reward", "--date", "2026-01-05", "--note", "市级表彰"))
    ok(as_p01(a, "sync"))
    ok(as_p01(b, "event", cadre, "hardship", "--date", "2026-01-06", "--note", "家中困难"))
    edited(b, cadre, "post: 副主任", "post: 主任")
    assert ok(as_p01(b, "sync")).stdout.strip() == "pushed"
    ok(as_p01(a, "sync"))
    for clone in (a, b):
        text = ok(as_p01(clone, "cat", cadre)).stdout
        assert "市级表彰" in text and "家中困难" in text and "post: 主任" in text
        assert "<<<<<<<" not in text
        ok(as_p01(clone, "validate"))
        assert git(clone, "status", "--porcelain").stdout == ""
    assert set(git_log(b, "--format=%G?").split()) == {"G"}
    story = ok(as_p01(b, "history", cadre)).stdout
    assert story.count(f"cadre {cadre}: event") == 2  # A's event reached B through the merge


def test_plain_git_pull_uses_the_driver(officers, cadre: str) -> None:
    a, b = officers
    ok(as_p01(a, "event", cadre, "reward", "--date", "2026-01-05", "--note", "市级表彰"))
    git(a, "push", "-q")
    edited(b, cadre, "post: 副主任", "post: 主任")
    git(b, "-c", "user.name=王芳", "-c", "user.email=p-01@talkbook.invalid", "pull", "-q",
        "--no-rebase", "--no-edit")  # fmt: skip
    text = ok(as_p01(b, "cat", cadre)).stdout
    assert "市级表彰" in text and "post: 主任" in text


def test_a_true_conflict_is_resolved_never_committed_with_markers(officers, cadre: str) -> None:
    a, b = officers
    edited(a, cadre, "post: 副主任", "post: 主任")
    ok(as_p01(a, "sync"))
    edited(b, cadre, "post: 副主任", "post: 调研员")
    result = as_p01(b, "sync")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"talkbook: conflicts to resolve: {cadre}; run `talkbook resolve ID` for each, "
        "then sync again"
    ]
    # The working file is still ciphertext: readable, no markers anywhere.
    assert "post: 调研员" in ok(as_p01(b, "cat", cadre)).stdout
    refused = as_p01(b, "event", cadre, "reward", "--date", "2026-01-05")
    assert refused.exit_code == 2 and "a merge is unfinished" in refused.stderr
    shown = as_p01(b, "validate")
    assert "mid-merge" in shown.stderr

    marked = ok(as_p01(b, "cat", cadre)).stdout.replace("post: 调研员", "<<<<<<< ours\npost: x")
    bad = as_p01(b, "resolve", cadre, "--from", "-", input=marked)
    assert bad.exit_code == 2 and "conflict markers" in bad.stderr
    resolved = ok(as_p01(b, "cat", cadre)).stdout.replace("post: 调研员", "post: 主任（兼）")
    assert ok(as_p01(b, "resolve", cadre, "--from", "-", input=resolved)).stdout.strip() == (
        f"{cadre}: resolved and staged"
    )
    ok(as_p01(b, "sync"))
    ok(as_p01(a, "sync"))
    assert "post: 主任（兼）" in ok(as_p01(a, "cat", cadre)).stdout
    assert git(b, "status", "--porcelain").stdout == ""


def test_merge_rules() -> None:
    base = Document({"id": "C-1", "post": "a", "events": [1, 2]}, "共同\n")
    ours = Document({"id": "C-1", "post": "b", "events": [1, 2, 3]}, "共同\n我方\n")
    theirs = Document({"id": "C-1", "post": "a", "events": [2, 4]}, "共同\n")
    merged = merge.merge_documents(base, ours, theirs)
    assert merged.meta == {"id": "C-1", "post": "b", "events": [2, 3, 4]}
    assert merged.body == "共同\n我方\n" and not merged.conflicts
    clash = merge.merge_documents(base, ours, Document({**theirs.meta, "post": "c"}, "他方\n"))
    assert clash.conflicts == ["post", "(body)"] and clash.theirs == {"post": "c"}
    shown = merge.with_conflicts_shown(clash)
    assert "# CONFLICT" in shown and "#   post: c" in shown and "<<<<<<< ours" in shown
    assert merge.unresolved(shown) is not None


@pytest.mark.parametrize("step", ["sync-fetched", "sync-merged", "sync-push"])
def test_a_killed_sync_is_finished_by_the_next(officers, cadre: str, step: str) -> None:
    a, b = officers
    ok(as_p01(a, "event", cadre, "reward", "--date", "2026-01-05", "--note", "市级表彰"))
    ok(as_p01(a, "sync"))
    edited(b, cadre, "post: 副主任", "post: 主任")
    killed = subprocess.run(
        [sys.executable, "-m", "talkbook", "-w", str(b), "sync"],
        env={**os.environ, "TALKBOOK_KILL_AT": step},
        capture_output=True,
    )
    assert killed.returncode == -9
    ok(as_p01(b, "doctor"))
    ok(as_p01(b, "sync"))
    ok(as_p01(a, "sync"))
    for clone in (a, b):
        text = ok(as_p01(clone, "cat", cadre)).stdout
        assert "市级表彰" in text and "post: 主任" in text
        assert git(clone, "status", "--porcelain").stdout == ""
        ok(as_p01(clone, "validate"))


def test_addenda_from_two_officers_merge_and_audit_stays_clean(
    officers, cadre: str, workspace: Setup, clock
) -> None:
    a, b = officers
    keys = workspace.keys
    clock.set("2026-03-01T08:00")
    talk = ok(run("-w", a, "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    talk_id = talk.stdout.splitlines()[-1]
    ok(run("-w", a, "-i", keys["P-03"], "submit", talk_id))
    ok(run("-w", a, "-i", keys["P-02"], "approve", talk_id))
    clock.set("2026-03-11T08:00")
    record = "---\nheld_at: 2026-03-10T09:30\n---\n\n谈话对象表示服从组织安排。\n"
    ok(run("-w", a, "-i", keys["P-03"], "record", talk_id, "--from", "-", input=record))
    ok(run("-w", a, "confirm", talk_id))
    ok(as_p01(a, "sync"))
    ok(as_p01(b, "sync"))
    clock.set("2026-03-12T08:00")
    ok(run("-w", a, "-i", keys["P-03"], "addendum", talk_id, "--text", "补充：本人申请调岗。"))
    ok(as_p01(a, "sync"))
    ok(as_p01(b, "addendum", talk_id, "--text", "组织意见：同意研究。"))
    ok(as_p01(b, "sync"))
    ok(as_p01(a, "sync"))
    for clone in (a, b):
        text = ok(as_p01(clone, "cat", f"{talk_id}/record")).stdout
        assert "本人申请调岗" in text and "同意研究" in text
        ok(as_p01(clone, "validate"))
        audited = as_p01(clone, "audit")
        assert audited.exit_code == 0, audited.stdout
