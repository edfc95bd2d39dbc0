"""No silent turns: what changes beyond what was asked is said on the last line of stderr; a
refused field re-opens the editor with the user's text; a discarded edit says so; `record` moves
the plan to held for everyone who reads it."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest
from click.testing import Result

from conftest import Clock, Setup, git_log, last_line, ok
from talkbook.cli import _shared
from talkbook.models import parse

START = "2026-03-01T08:00"
RECORD = """---
held_at: 2026-03-10T09:30
topics: [对岗位调整的认识]
---

谈话对象表示服从组织安排。
"""


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> Clock:
    clock.set(START)
    return clock


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal's answer to "Open the editor again?": read from the runner's input."""
    real = _shared._prompts

    def prompts():
        made = real()

        def reopen(problem: str) -> bool:
            click.echo(f"talkbook: {problem}", err=True)
            return click.confirm("Open the editor again?", default=True, err=True)

        made.reopen_editor = reopen
        return made

    monkeypatch.setattr(_shared, "_prompts", prompts)


def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *runs: dict[str, str]) -> Path:
    """$EDITOR = a script whose n-th run makes the replacements runs[n]; each run's input is
    kept in the log folder (the test's own tmp_path) to see what the user was given back."""
    log = tmp_path / "runs"
    log.mkdir(parents=True)
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        f"runs, log = {list(runs)!r}, Path({str(log)!r})\n"
        "n = len(list(log.iterdir()))\npath = Path(sys.argv[1])\n"
        "text = path.read_text(encoding='utf-8')\n"
        "(log / str(n)).write_text(text, encoding='utf-8')\n"
        "for old, new in runs[n].items():\n"
        "    assert old in text, old\n"
        "    text = text.replace(old, new)\n"
        "path.write_text(text, encoding='utf-8')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    return log


def last_err(result: Result) -> str:
    return result.stderr.strip().splitlines()[-1]


def draft(ws: Setup, cadre: str) -> str:
    return last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--recorder", "P-04",
                            "--at", "2026-03-10T09:30", "--place", "三楼会议室"))  # fmt: skip


def meta(ws: Setup, pid: str, ref: str) -> dict:
    return parse(ok(ws.as_(pid, "cat", ref)).stdout).meta


def commits(ws: Setup) -> int:
    return len(git_log(ws.root, "--format=%H").split())


def approved(ws: Setup, cadre: str) -> str:
    talk = draft(ws, cadre)
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))
    return talk


def test_a_plan_sent_back_to_draft_says_so_last(
    workspace: Setup, cadre: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace
    talk = approved(ws, cadre)
    editor(tmp_path / "a", monkeypatch, {"三楼会议室": "五楼谈话室"})
    result = ok(ws.as_("P-03", "edit", talk))
    assert last_err(result) == (
        f"talkbook: {talk}: back to draft; its approval was voided, submit it again"
    )
    assert meta(ws, "P-01", talk)["status"] == "draft"
    assert "五楼" not in git_log(ws.root, "-1", "--format=%s")

    ok(ws.as_("P-03", "submit", talk))
    editor(tmp_path / "b", monkeypatch, {"五楼谈话室": "六楼谈话室"})
    result = ok(ws.as_("P-01", "edit", talk))
    assert last_err(result) == (
        f"talkbook: {talk}: back to draft; its submission was withdrawn, submit it again"
    )

    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk))
    result = ok(ws.as_("P-03", "postpone", talk, "--to", "2026-03-17T09:30"))
    assert last_err(result) == (
        f"talkbook: {talk}: postponed; its approval was voided, submit it again"
    )


def test_a_refused_field_reopens_the_editor_and_no_discards(
    workspace: Setup,
    cadre: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answers: None,
) -> None:
    ws = workspace
    talk = draft(ws, cadre)
    before = commits(ws)
    editor(tmp_path / "no", monkeypatch, {"status: draft": "status: approved"})
    result = ws.as_("P-01", "edit", talk, input="n\n")
    assert result.exit_code == 2
    assert "status: changes only through" in result.stderr
    assert last_err(result).endswith("the edit was discarded and nothing was changed")
    assert commits(ws) == before and meta(ws, "P-01", talk)["status"] == "draft"

    runs = editor(
        tmp_path / "yes",
        monkeypatch,
        {"三楼会议室": "五楼谈话室", "status: draft": "status: approved"},  # a forged status
        {"status: approved": "status: draft"},  # put right; the place change is still there
    )
    result = ok(ws.as_("P-01", "edit", talk, input="y\n"))
    assert "status: changes only through" in result.stderr
    second = (runs / "1").read_text(encoding="utf-8")
    assert "五楼谈话室" in second and "status: approved" in second  # the user's text, kept
    plan = meta(ws, "P-01", talk)
    assert plan["place"] == "五楼谈话室" and plan["status"] == "draft"
    assert last_err(result) == f"{talk}: saved"


def test_record_moves_the_plan_to_held_for_every_reader(
    workspace: Setup, cadre: str, clock: Clock
) -> None:
    ws = workspace
    talk = approved(ws, cadre)
    clock.set("2026-03-10T11:00")
    before = commits(ws)
    result = ok(ws.as_("P-04", "record", talk, "--from", "-", input=RECORD))
    assert last_err(result) == f"talkbook: {talk}: recorded; its plan is now held"
    assert commits(ws) == before + 1  # the record and the plan, one commit
    changed = git_log(ws.root, "-1", "--name-only", "--format=%s").split()
    assert changed[:3] == ["record", f"{talk}:", "written"] and len(changed) == 5
    for reader in ("P-01", "P-02", "P-03", "P-04"):  # custodian, approver, speaker, recorder
        assert meta(ws, reader, talk)["status"] == "held"
    assert meta(ws, "P-01", talk)["decisions"][-1] == {
        "by": "P-04",
        "at": "2026-03-10T11:00",
        "decision": "held",
        "comment": None,
    }
    ok(ws.as_("P-01", "validate"))
    ok(ws.as_("P-01", "audit"))
    # held is the end of the plan: no decision, no edit
    assert ws.as_("P-02", "cancel", talk).exit_code == 2
    refused = ws.as_("P-01", "edit", talk, "--from", "-", input="---\nid: x\n---\n")
    assert refused.exit_code == 2 and "held; its plan no longer changes" in refused.stderr
