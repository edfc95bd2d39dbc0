"""One rule book (issue 7, item 5): a command that writes a file runs the same document and
cross-file checks that `validate` runs for it, so after any command that succeeds `validate`
is clean; a command that fails changes nothing. A command whose document comes from the
editor alone refuses when there is no terminal and no --from.

The clock is TALKBOOK_NOW; conftest deletes $VISUAL and $EDITOR and CliRunner gives no terminal.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import PROFILE_ZH, Clock, Setup, last_line, ok
from talkbook.models import parse

START = "2026-03-01T08:00"
RECORD_ZH = """---
{held}place: 市委组织部三楼谈话室
present: [P-03]
topics:
  - 对岗位调整的认识
  - 家庭实际困难
follow_ups:
  - what: 协调市人民医院专家会诊
    owner: 干部一科
    due: 2026-04-10
deferred:
  - 本人今后的职业打算
---

## 一、谈话对象反映的情况

谈话对象表示服从组织安排，愿意尽快熟悉新岗位工作。

## 四、谈话结论

思想稳定，家庭困难需要组织帮助协调。
"""


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> Clock:
    """Before the workspace and cadre fixtures, so their commits are dated too."""
    clock.set(START)
    return clock


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def snapshot(ws: Setup) -> tuple[str, str]:
    """What must not move when a command is refused: HEAD and `git status --porcelain`."""
    return git(ws.root, "rev-parse", "HEAD"), git(ws.root, "status", "--porcelain", "--ignored")


def refused(result: Result) -> str:
    """One line on stderr, exit 2, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkbook: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def validate_clean(ws: Setup) -> None:
    result = ws.as_("P-01", "validate")
    assert result.exit_code == 0, result.stdout + result.stderr


def record_file(tmp_path: Path, held: str | None, name: str = "record.md") -> Path:
    source = tmp_path / name
    source.write_text(RECORD_ZH.format(held=f"held_at: {held}\n" if held else ""), "utf-8")
    return source


def approved_late(ws: Setup, cadre: str, clock: Clock) -> str:
    """A plan for 2026-03-10T09:30 that its approver approved only on the 11th."""
    clock.set("2026-03-02T09:00")
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    ok(ws.as_("P-03", "submit", talk))
    clock.set("2026-03-11T10:00")
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意，注意方式方法"))
    clock.set("2026-03-12T09:00")
    return talk


# -- the disagreements the issue names ----------------------------------------------------------
def test_record_held_before_its_approval_is_refused(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
) -> None:
    talk = approved_late(workspace, cadre, clock)
    validate_clean(workspace)
    before = snapshot(workspace)
    for source in (record_file(tmp_path, None), record_file(tmp_path, "2026-03-10T09:30", "b.md")):
        line = refused(workspace.as_("P-03", "record", talk, "--from", source))
        assert "held_at: held before the plan was approved" in line
        assert "张伟" not in line and "谈话对象" not in line
        assert snapshot(workspace) == before
    assert not list(workspace.root.glob(f"talks/*/{talk}/record.md.age"))
    validate_clean(workspace)
    # with the time it was truly held (after the approval) it is recorded, from stdin too
    text = record_file(tmp_path, "2026-03-11T16:00", "c.md").read_text(encoding="utf-8")
    assert last_line(workspace.as_("P-03", "record", talk, "--from", "-", input=text)) == talk
    assert "服从组织安排" in parse(ok(workspace.as_("P-03", "cat", f"{talk}/record")).stdout).body
    validate_clean(workspace)


def test_event_in_the_future_is_refused(workspace: Setup, cadre: str, clock: Clock) -> None:
    clock.set("2026-03-02T09:00")
    validate_clean(workspace)
    before = snapshot(workspace)
    result = workspace.as_(
        "P-01", "event", cadre, "post_change", "--date", "2026-09-01", "--note", "拟调任市财政局"
    )
    line = refused(result)
    assert f"cadres/{cadre}.md.age:" in line and "events: is in the future" in line
    assert "拟调任" not in line
    assert snapshot(workspace) == before
    validate_clean(workspace)
    ok(workspace.as_("P-01", "event", cadre, "post_change", "--date", "2026-03-01"))
    validate_clean(workspace)


# -- the property: every command either succeeds with validate clean, or changes nothing ------
def step(ws: Setup, clock: Clock, pid: str, *args: str, good: bool = True, at: str = "") -> str:
    """Run one command; `good` is what the rule book says of it (a refused step is one that
    validate would report). Either way validate is clean afterwards; a refused step changes
    nothing. Returns the last line of stdout (the id a creating command prints)."""
    if at:
        clock.set(at)
    before = snapshot(ws)
    result = ws.as_(pid, *args)
    if good:
        assert result.exit_code == 0, (args, result.stderr)
    else:
        refused(result)
        assert snapshot(ws) == before, args
    validate_clean(ws)
    return (result.stdout.strip().splitlines() or [""])[-1]


def test_every_write_command_leaves_validate_clean(
    workspace: Setup, clock: Clock, tmp_path: Path
) -> None:
    ws = workspace
    profile = tmp_path / "profile.md"
    profile.write_text(PROFILE_ZH, encoding="utf-8")
    cadre = step(ws, clock, "P-01", "cadre", "new", "--from", str(profile))
    clock.set("2026-03-02T09:00")
    step(ws, clock, "P-01", "event", cadre, "post_change", "--date", "2027-01-05", good=False)
    step(ws, clock, "P-01", "event", cadre, "post_change", "--date", "2026-03-01", "--note", "调任")
    talk = step(ws, clock, "P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30",
                "--occasion", "post_change")  # fmt: skip
    step(ws, clock, "P-03", "submit", talk, at="2026-03-03T10:00")
    step(ws, clock, "P-02", "approve", talk, "--comment", "同意", at="2026-03-11T10:00")
    early, held = record_file(tmp_path, None, "early.md"), record_file(tmp_path, "2026-03-11T16:00")
    step(ws, clock, "P-03", "record", talk, "--from", str(early), good=False, at="2026-03-12T09:00")
    step(ws, clock, "P-03", "record", talk, "--from", str(held))
    step(ws, clock, "P-03", "confirm", talk, "--date", "2026-03-05", good=False)
    step(ws, clock, "P-03", "confirm", talk, at="2026-03-13T09:00")
    step(ws, clock, "P-03", "addendum", talk, "--text", "谈话对象补充：希望组织关心子女就学。")
    step(ws, clock, "P-01", "done", talk, "1", at="2026-03-20T09:00")

    # edit: a held talk's plan would go back to draft under its record; the profile may change
    plan_text = ok(ws.as_("P-01", "cat", talk)).stdout
    plan_edit = tmp_path / "plan-edit.md"
    plan_edit.write_text(plan_text.replace("place: null", "place: 五楼谈话室"), encoding="utf-8")
    assert plan_edit.read_text(encoding="utf-8") != plan_text
    step(ws, clock, "P-01", "edit", talk, "--from", str(plan_edit), good=False)
    text = ok(ws.as_("P-01", "cat", cadre)).stdout
    wrong, right = tmp_path / "wrong.md", tmp_path / "right.md"
    wrong.write_text(text.replace("birth_date: 1968-05-12", "birth_date: 2068-05-12"), "utf-8")
    right.write_text(text.replace("与基层沟通偏少", "已经常下基层调研"), encoding="utf-8")
    step(ws, clock, "P-01", "edit", cadre, "--from", str(wrong), good=False)
    step(ws, clock, "P-01", "edit", cadre, "--from", str(right))
    assert "已经常下基层调研" in ok(ws.as_("P-01", "cat", cadre)).stdout


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(event_days=st.integers(min_value=-400, max_value=60))
@example(event_days=30)
@example(event_days=1)
def test_event_dates_agree_with_validate(
    workspace: Setup, cadre: str, clock: Clock, event_days: int
) -> None:
    """Whatever dates are given: success means validate is clean, refusal means no change."""
    import datetime as dt

    ws = workspace
    clock.set("2026-06-15T09:00")
    today = dt.date(2026, 6, 15)
    day = (today + dt.timedelta(days=event_days)).isoformat()
    result = ws.as_("P-01", "event", cadre, "hardship", "--date", day, "--note", "家中突遭变故")
    if result.exit_code == 0:
        validate_clean(ws)
    else:
        refused(result)
        validate_clean(ws)
    assert (result.exit_code == 0) == (event_days <= 1)  # validate's horizon: tomorrow


# -- no terminal, no --from: refused, nothing written -------------------------------------------
@pytest.mark.parametrize("command", ["record", "edit plan", "edit profile", "cadre new"])
def test_editor_commands_refuse_without_a_terminal(
    workspace: Setup, cadre: str, clock: Clock, command: str
) -> None:
    talk = approved_late(workspace, cadre, clock)
    args = {
        "record": ("record", talk),
        "edit plan": ("edit", talk),
        "edit profile": ("edit", cadre),
        "cadre new": ("cadre", "new"),
    }[command]
    before = snapshot(workspace)
    line = refused(workspace.as_("P-01" if command != "record" else "P-03", *args))
    assert "no terminal" in line and "--from" in line
    assert snapshot(workspace) == before
    assert not list(workspace.root.glob(f"talks/*/{talk}/record.md.age"))
    validate_clean(workspace)
