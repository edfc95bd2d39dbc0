"""`talkbook audit`: the history checked commit by commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from conftest import Clock, Setup, last_line, ok
from talkbook.crypto import Keyring, decrypt, encrypt
from talkbook.models import Document, parse

PLAN_READERS = ("P-01", "P-02", "P-03")


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> None:
    clock.set("2026-03-01T08:00")


def git(ws: Setup, *args: str, person: str | None = None) -> None:
    """A hand-made commit, as someone with a text editor and git would make it."""
    env = None
    if person:
        address = f"{person.lower()}@talkbook.invalid"
        env = {
            "GIT_AUTHOR_NAME": person, "GIT_AUTHOR_EMAIL": address,
            "GIT_COMMITTER_NAME": person, "GIT_COMMITTER_EMAIL": address,
        }  # fmt: skip
    subprocess.run(["git", "-C", str(ws.root), *args], check=True, capture_output=True,
                   env={**os.environ, **(env or {})})  # fmt: skip


def rewrite_plan(ws: Setup, talk: str, change) -> str:
    rel = f"talks/2026/{talk}/plan.md.age"
    path = ws.path(rel)
    doc = parse(decrypt(path.read_bytes(), Keyring.from_file(ws.keys["P-01"])).decode())
    changed = Document(change(dict(doc.meta)), doc.body)
    path.write_bytes(encrypt(changed.text().encode(), [ws.public[p] for p in PLAN_READERS]))
    return rel


def audited(ws: Setup, pid: str = "P-01") -> tuple[Result, list[str]]:
    result = ws.as_(pid, "audit")
    assert result.exit_code in (0, 1), result.stderr
    return result, result.stdout.splitlines()


def submitted_plan(ws: Setup, cadre: str) -> str:
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    ok(ws.as_("P-03", "submit", talk))
    return talk


def test_a_history_made_by_talkbook_is_clean(workspace: Setup, cadre: str) -> None:
    talk = submitted_plan(workspace, cadre)
    ok(workspace.as_("P-02", "approve", talk, "--comment", "同意"))
    result, lines = audited(workspace)
    assert result.exit_code == 0 and lines == []
    assert result.stderr == "9 commit(s) audited, 0 finding(s)\n"


def test_a_forged_approval_is_found(workspace: Setup, cadre: str) -> None:
    """The speaker types the leader's approval into the plan and commits it by hand."""
    talk = submitted_plan(workspace, cadre)
    approval = {"by": "P-02", "at": "2026-03-02T09:00", "decision": "approved", "comment": "同意"}
    rel = rewrite_plan(
        workspace,
        talk,
        lambda m: {**m, "status": "approved", "decisions": [*m["decisions"], approval]},
    )
    git(workspace, "add", rel)
    git(workspace, "commit", "--no-verify", "-m", f"plan {talk}: approved", person="P-03")
    assert ok(workspace.as_("P-01", "validate")).exit_code == 0  # the file itself looks fine
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines == [
        f"{lines[0][:7]} {rel}: decisions: approved by P-02 was committed by p-03@talkbook.invalid"
    ]


def test_rewritten_decisions_are_found(workspace: Setup, cadre: str) -> None:
    talk = submitted_plan(workspace, cadre)
    rel = rewrite_plan(workspace, talk, lambda m: {**m, "status": "draft", "decisions": []})
    git(workspace, "add", rel)
    git(workspace, "commit", "--no-verify", "-m", f"plan {talk}: edited", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert [line.split(" ", 1)[1] for line in lines] == [
        f"{rel}: decisions: earlier entries were rewritten"
    ]


def test_plaintext_that_was_ever_committed_is_found(workspace: Setup, cadre: str) -> None:
    """Removed again, it is gone from the tree (validate is clean) but not from history."""
    leak = workspace.path("cadres/张伟-谈话要点.md")
    leak.write_text("张伟：思想波动较大。\n", encoding="utf-8")
    git(workspace, "add", "cadres")
    git(workspace, "commit", "--no-verify", "-m", "notes", person="P-01")
    git(workspace, "rm", "-q", "cadres/张伟-谈话要点.md")
    git(workspace, "commit", "--no-verify", "-m", "oops", person="P-01")
    assert ok(workspace.as_("P-01", "validate")).exit_code == 0
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert [line.split(" ", 1)[1] for line in lines] == [
        "cadres/张伟-谈话要点.md: plaintext file: only .age ciphertext belongs here"
    ]


def test_changes_by_someone_who_is_not_a_person_are_found(workspace: Setup, cadre: str) -> None:
    readme = workspace.path("talks/README.md")
    readme.write_text(readme.read_text(encoding="utf-8") + "\n说明。\n", encoding="utf-8")
    git(workspace, "commit", "--no-verify", "-am", "docs")  # the tests' git identity: tester
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert [line.split(" ", 1)[1] for line in lines] == [
        "talks/README.md: changed by tester@example.invalid, not a person"
    ]


def test_the_speaker_audits_what_they_can_read(workspace: Setup, cadre: str) -> None:
    submitted_plan(workspace, cadre)
    result, lines = audited(workspace, "P-03")
    assert result.exit_code == 0 and lines == []
    assert "0 finding(s)" in result.stderr


def test_outsider_key_reads_no_trail(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    submitted_plan(workspace, cadre)
    result, lines = audited(workspace, "outsider")
    assert lines == [] and "2 revision(s) not readable with your identity" in result.stderr
