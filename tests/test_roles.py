"""Who may run which command (README's command table), and people who left (issue 9, item 4).

Each command runs as each staff member: allowed (exit 0) or refused (one line on stderr,
exit 2, nothing changed). Besides the conftest staff, P-05 speaks in other talks and is the
recorder this talk's plan names: being a speaker somewhere is not being this plan's speaker.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, Clock, Setup, last_line, make_key, ok

PEOPLE = ("P-01", "P-02", "P-03", "P-04", "P-05")
RECORD_ZH = """---
topics: [对岗位调整的认识]
follow_ups:
  - what: 协调市人民医院专家会诊
    owner: 干部一科
    due: 2026-04-10
---

## 谈话结论

思想稳定，工作积极，家庭困难需要组织帮助协调。
"""


@pytest.fixture
def staff(workspace: Setup, keydir: Path, clock: Clock) -> Setup:
    clock.set("2026-03-01T08:00")
    ws = workspace
    ws.keys["P-05"], ws.public["P-05"] = make_key(keydir, "P-05")
    ok(ws.as_("P-01", "person", "add", "P-05", "--name", "孙悦", "--role", "speaker",
              "--role", "recorder", "--key", ws.public["P-05"]))  # fmt: skip
    return ws


def refused(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkbook: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def state(ws: Setup) -> tuple[str, str]:
    """HEAD and the working tree: what a refused command must leave as it was."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ws.root), *args], capture_output=True, text=True)
        return done.stdout

    return git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=all")


def bring(ws: Setup, cadre: str, clock: Clock, tmp_path: Path, stage: str) -> str:
    """A talk of `cadre` (speaker P-03, recorder P-05) brought to `stage`; its id."""
    talk = last_line(
        ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--recorder", "P-05",
               "--at", "2026-03-10T09:30")
    )  # fmt: skip
    steps = ["draft", "submitted", "approved", "held", "confirmed"]
    if steps.index(stage) >= 1:
        ok(ws.as_("P-03", "submit", talk))
    if steps.index(stage) >= 2:
        clock.set("2026-03-04T15:00")
        ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))
    if steps.index(stage) >= 3:
        clock.set("2026-03-10T11:30")
        source = tmp_path / "record.md"
        source.write_text(RECORD_ZH, encoding="utf-8")
        ok(ws.as_("P-05", "record", talk, "--from", source))
    if steps.index(stage) >= 4:
        ok(ws.as_("P-03", "confirm", talk))
    clock.set("2026-03-12T10:00")
    return talk


def _profile(tmp_path: Path) -> str:
    source = tmp_path / "新档案.md"
    source.write_text(PROFILE_ZH.replace("张伟", "王磊"), encoding="utf-8")
    return str(source)


Args = Callable[[str, str, Path], list[str]]  # (cadre, talk, tmp_path) → the command line
# command, the stage its talk needs (None: no talk), its arguments, who may run it
TABLE: list[tuple[str, str | None, Args, set[str]]] = [
    ("cadre new", None, lambda c, t, p: ["cadre", "new", "--from", _profile(p)], {"P-01"}),
    ("event", None, lambda c, t, p: ["event", c, "post_change", "--note", "调任"], {"P-01"}),
    (
        "plan",
        None,
        lambda c, t, p: ["plan", c, "--speaker", "P-03", "--at", "2026-04-01T09:00"],
        {"P-01"},
    ),  # fmt: skip
    ("submit", "draft", lambda c, t, p: ["submit", t], {"P-01", "P-03"}),
    ("approve", "submitted", lambda c, t, p: ["approve", t, "--comment", "同意"], {"P-02"}),
    ("reject", "submitted", lambda c, t, p: ["reject", t, "--comment", "再斟酌"], {"P-02"}),
    (
        "postpone",
        "draft",
        lambda c, t, p: ["postpone", t, "--comment", "下周再谈"],
        {"P-01", "P-02", "P-03"},
    ),  # fmt: skip
    ("cancel", "draft", lambda c, t, p: ["cancel", t, "--comment", "不再需要"], {"P-01", "P-02"}),
    (
        "record",
        "approved",
        lambda c, t, p: ["record", t, "--from", str(p / "record.md")],
        {"P-03", "P-05"},
    ),  # fmt: skip
    ("confirm", "held", lambda c, t, p: ["confirm", t], {"P-01", "P-03", "P-05"}),
    (
        "addendum",
        "confirmed",
        lambda c, t, p: ["addendum", t, "--text", "补充：已协调"],
        {"P-01", "P-03", "P-05"},
    ),  # fmt: skip
    ("done", "held", lambda c, t, p: ["done", t, "1"], {"P-01", "P-03", "P-05"}),
    (
        "person add",
        None,
        lambda c, t, p: [
            "person",
            "add",
            "P-09",
            "--name",
            "钱进",
            "--role",
            "recorder",
            "--key",
            make_key(p, "P-09")[1],
        ],
        {"P-01"},
    ),  # fmt: skip
    ("person remove", None, lambda c, t, p: ["person", "remove", "P-04"], {"P-01"}),
]
CASES = [
    pytest.param(name, stage, args, pid, pid in allowed, id=f"{name}-{pid}")
    for name, stage, args, allowed in TABLE
    for pid in PEOPLE
]


@pytest.mark.parametrize(("name", "stage", "args", "pid", "allowed"), CASES)
def test_who_may_run_each_command(
    staff: Setup, cadre: str, clock: Clock, tmp_path: Path, name, stage, args, pid, allowed
):
    ws = staff
    talk = bring(ws, cadre, clock, tmp_path, stage) if stage else ""
    (tmp_path / "record.md").write_text(RECORD_ZH, encoding="utf-8")
    before = state(ws)
    result = ws.as_(pid, *args(cadre, talk, tmp_path))
    if allowed:
        ok(result)
        assert state(ws)[0] != before[0]  # one commit by its actor
    else:
        refused(result)
        assert state(ws) == before


# -- people who left ---------------------------------------------------------------------------
def test_person_list_shows_who_left_apart(staff: Setup, clock: Clock):
    ws = staff
    clock.set("2026-03-05T09:00")
    ok(ws.as_("P-01", "person", "remove", "P-03"))
    lines = ok(ws.as_("P-01", "person", "list")).stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["P-01", "P-02", "P-04", "P-05", "P-03"]
    assert lines[-1].startswith("P-03\t李明\t") and lines[-1].endswith("\tleft 2026-03-05")
    assert not any("left" in line for line in lines[:-1])


def test_who_left_is_named_in_no_new_talk_and_does_not_act(
    staff: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    ws = staff
    old = bring(ws, cadre, clock, tmp_path, "draft")  # speaker P-03, recorder P-05
    ok(ws.as_("P-01", "person", "remove", "P-05"))
    ok(ws.as_("P-01", "person", "remove", "P-04"))
    before = state(ws)
    at = ("--at", "2026-04-01T09:00")
    assert "P-05 left" in refused(ws.as_("P-01", "plan", cadre, "--speaker", "P-05", *at))
    assert "P-04 left" in refused(
        ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--recorder", "P-04", *at)
    )
    source = tmp_path / "计划.md"
    source.write_text("---\nrecorder: P-04\nplace: 三楼小会议室\n---\n", encoding="utf-8")
    line = refused(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", *at, "--from", source))
    assert "recorder" in line and "P-04 left" in line
    assert state(ws) == before
    # whoever left does not act, not even on the talk they were named in
    refused(ws.as_("P-05", "postpone", old))
    assert state(ws) == before
    # the talk that named them before they left still goes on, and validates
    ok(ws.as_("P-03", "submit", old))
    ok(ws.as_("P-02", "approve", old, "--comment", "同意"))
    ok(ws.as_("P-01", "rekey"))
    ok(ws.as_("P-01", "validate"))


def test_who_left_does_not_approve(staff: Setup, cadre: str, clock: Clock, tmp_path: Path, keydir):
    ws = staff
    ws.keys["P-06"], ws.public["P-06"] = make_key(keydir, "P-06")
    ok(ws.as_("P-01", "person", "add", "P-06", "--name", "周强", "--role", "approver",
              "--key", ws.public["P-06"]))  # fmt: skip
    talk = bring(ws, cadre, clock, tmp_path, "submitted")
    ok(ws.as_("P-01", "person", "remove", "P-06"))
    before = state(ws)
    refused(ws.as_("P-06", "approve", talk, "--comment", "同意"))
    assert state(ws) == before


def test_the_approver_sees_a_held_talk_as_held(
    staff: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    ws = staff
    held = bring(ws, cadre, clock, tmp_path, "held")
    waiting = bring(ws, cadre, clock, tmp_path, "approved")
    for pid in ("P-01", "P-02", "P-03"):
        rows = json.loads(ok(ws.as_(pid, "list", "talks", "--format", "json")).stdout)
        assert {r["id"]: r["status"] for r in rows} == {held: "held", waiting: "approved"}, pid
    rows = json.loads(
        ok(ws.as_("P-02", "list", "talks", "--status", "held", "--format", "json")).stdout
    )
    assert [r["id"] for r in rows] == [held]
