"""App.save reads what HEAD holds at the path once: the journal takes its blob id from that."""

from __future__ import annotations

import subprocess

import pytest

from conftest import Setup, ok
from talkbook import gittrail, lock


def blob_in_head(ws: Setup, rel: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ws.root), "rev-parse", f"HEAD:{rel}"], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else lock.ABSENT


@pytest.fixture
def journals(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Each journal a write begins, as recorded; git is never asked for the blobs again."""
    seen: list[dict] = []
    begin = lock.begin

    def recording(git_dir, journal):
        seen.append(dict(journal.paths))
        begin(git_dir, journal)

    def never(root, rev, rels):
        raise AssertionError(f"asked git for {rels} at {rev} again")

    monkeypatch.setattr(lock, "begin", recording)
    monkeypatch.setattr(gittrail, "blobs_at", never)
    return seen


def test_the_journal_of_a_save_has_heads_blobs_without_asking_git_again(
    workspace: Setup, cadre: str, journals: list[dict]
) -> None:
    plan = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30"))
    talk = plan.stdout.splitlines()[-1]
    (rel,) = journals[-1]
    assert journals[-1] == {rel: lock.ABSENT} and rel.endswith(f"{talk}/plan.md.age")
    held = blob_in_head(workspace, rel)
    ok(workspace.as_("P-03", "submit", talk))
    assert journals[-1] == {rel: held} and held != lock.ABSENT
