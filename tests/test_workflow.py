"""The life of a talk through the command line, with separate keys for every role (issue 3).

The clock is TALKBOOK_NOW (App.now and the git trail read it), so every step has a fixed date.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from conftest import Clock, Setup, age_cli, git_log, last_line, make_key, ok
from talkbook.crypto import Keyring, decrypt, encrypt
from talkbook.models import Document, parse

START = "2026-03-01T08:00"
RECORD_ZH = """---
held_at: 2026-03-10T09:30
place: 市委组织部三楼谈话室
present: [P-03]
topics:
  - 对岗位调整的认识
  - 家庭实际困难
follow_ups:
  - what: 协调市人民医院专家会诊
    owner: 干部一科
    due: 2026-04-10
  - what: 送达调任通知
    owner: 干部二科
    due: 2026-03-12
    done: true
deferred:
  - 对班子分工的不同意见
  - 本人今后的职业打算
---

## 一、谈话对象反映的情况

谈话对象表示服从组织安排，愿意尽快熟悉新岗位工作。

## 四、谈话结论

思想稳定，工作积极，家庭困难需要组织帮助协调。
"""
SECRETS = ("张伟", "爱人", "服从组织安排", "post_change", "岗位变动", "市发展和改革委员会")


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> Clock:
    """Runs before the workspace and cadre fixtures, so their commits are dated too."""
    clock.set(START)
    return clock


def refused(result: Result, code: int = 2) -> str:
    """A clean refusal: the exit code and one line on stderr, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkbook: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def meta_of(ws: Setup, pid: str, ref: str) -> dict:
    return parse(ok(ws.as_(pid, "cat", ref)).stdout).meta


def head(ws: Setup) -> tuple[str, str]:
    author, _, subject = git_log(ws.root, "-1", "--format=%an|%s").strip().partition("|")
    return author, subject


def commits(ws: Setup) -> int:
    return len(git_log(ws.root, "--format=%H").split())


def git(ws: Setup, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(ws.root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def plant(ws: Setup, rel: str, text: str, readers: list[str]) -> Path:
    """A hand-made file: encrypted to the given people and committed with plain git."""
    path = ws.path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encrypt(text.encode("utf-8"), [ws.public[p] for p in readers]))
    assert git(ws, "add", rel).returncode == 0
    done = git(ws, "commit", "--no-verify", "-q", "-m", "hand-made change")
    assert done.returncode == 0, done.stderr
    return path


def draft(ws: Setup, cadre: str, *args: str, speaker: str = "P-03") -> str:
    return last_line(ws.as_("P-01", "plan", cadre, "--speaker", speaker, *args))


def hold_talk(ws: Setup, cadre: str, clock: Clock, tmp_path: Path) -> str:
    """A post change logged, planned, submitted, approved and recorded; returns the talk id."""
    clock.set("2026-03-02T09:00")
    note = "调任市财政局副局长"
    ok(ws.as_("P-01", "event", cadre, "post_change", "--date", "2026-03-01", "--note", note))
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30", "--occasion", "post_change")
    clock.set("2026-03-03T10:00")
    ok(ws.as_("P-03", "submit", talk))
    clock.set("2026-03-04T15:00")
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))
    clock.set("2026-03-10T11:30")
    source = tmp_path / "record.md"
    source.write_text(RECORD_ZH, encoding="utf-8")
    assert last_line(ws.as_("P-03", "record", talk, "--from", source)) == talk
    return talk


def record_path(ws: Setup, talk: str) -> Path:
    return ws.path(f"talks/2026/{talk}/record.md.age")


# -- the scenario of issue 3 ------------------------------------------------------------------
def test_post_change_end_to_end(workspace: Setup, cadre: str, clock: Clock, tmp_path: Path):
    ws = workspace
    clock.set("2026-03-02T09:00")
    ok(ws.as_("P-01", "event", cadre, "post_change", "--date", "2026-03-01", "--note", "调任"))

    # the post change is owed: overdue once its 30 days have passed
    result = ws.as_("P-01", "due", "--as-of", "2026-04-15", "--format", "json")
    assert result.exit_code == 1
    owed = [r for r in json.loads(result.stdout) if r["reason"] == "post_change"]
    assert owed == [owed[0]] and owed[0]["cadre"] == cadre
    assert owed[0]["deadline"] == "2026-03-31" and owed[0]["overdue"] is True

    # the plan: consultation for a veteran, the difficulties in its brief, no family or private
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30", "--occasion", "post_change")
    plan_text = ok(ws.as_("P-01", "cat", talk)).stdout
    plan = parse(plan_text)
    assert plan.meta["method"] == "consultation"
    assert plan.meta["talk_type"] == "occasion" and plan.meta["status"] == "draft"
    assert (plan.meta["cadre"], plan.meta["speaker"]) == (cadre, "P-03")
    assert "爱人长期生病，家庭负担较重" in plan.body and "征求意见" in plan.body
    assert "住院治疗" not in plan_text and "家庭矛盾" not in plan_text

    # the speaker reads the plan but not the profile; the outsider reads neither
    assert ok(ws.as_("P-03", "cat", talk)).stdout == plan_text
    refused(ws.as_("P-03", "cat", cadre))
    refused(ws.as_("outsider", "cat", cadre))
    refused(ws.as_("outsider", "cat", talk))

    clock.set("2026-03-03T10:00")
    ok(ws.as_("P-03", "submit", talk))
    refused(ws.as_("P-03", "approve", talk))  # a speaker, no approver
    assert meta_of(ws, "P-03", talk)["status"] == "submitted"
    clock.set("2026-03-04T15:00")
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意按计划谈话"))

    clock.set("2026-03-10T11:30")
    source = tmp_path / "record.md"
    source.write_text(RECORD_ZH, encoding="utf-8")
    assert last_line(ws.as_("P-03", "record", talk, "--from", source)) == talk

    # the age tool reads the record with the speaker's key, not with the outsider's
    age = age_cli()
    path = record_path(ws, talk)
    read = subprocess.run([age, "-d", "-i", ws.keys["P-03"], path], capture_output=True)
    assert read.returncode == 0, read.stderr
    assert "服从组织安排" in read.stdout.decode("utf-8")
    assert parse(read.stdout.decode("utf-8")).meta["follow_ups"][0]["owner"] == "干部一科"
    denied = subprocess.run([age, "-d", "-i", ws.keys["outsider"], path], capture_output=True)
    assert denied.returncode != 0 and not denied.stdout

    # the post change is met; the open follow-up is owed once its date passes, the done one never
    quiet = ws.as_("P-01", "due", "--as-of", "2026-04-09", "--format", "json")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout) == []
    later = ws.as_("P-01", "due", "--as-of", "2026-04-15", "--format", "json")
    assert later.exit_code == 1
    rows = json.loads(later.stdout)
    assert [(r["reason"], r["talk"], r["deadline"]) for r in rows] == [
        ("follow_up", talk, "2026-04-10")
    ]

    authors = set(git_log(ws.root, "--format=%an").split())
    assert {"王芳", "陈建国", "李明"} <= authors
    trail = git_log(ws.root, "--format=%s") + git(ws, "ls-files").stdout
    assert not [s for s in SECRETS if s in trail]

    # a record for an unapproved plan is refused cleanly, and nothing is written
    other = draft(ws, cadre, "--at", "2026-03-20T09:00")
    before = commits(ws)
    assert "approved" in refused(ws.as_("P-03", "record", other, "--from", source))
    assert not record_path(ws, other).exists() and commits(ws) == before

    # a broken plan planted by hand is reported as path:line, exit 1
    broken = f"""---
id: T-bad001
cadre: {cadre}
speaker: P-03
at: 2026-05-06T09:00
talk_type: routine
method: 随便聊聊
status: draft
decisions: []
---

手工加入的计划。
"""
    rel = "talks/2026/T-bad001/plan.md.age"
    planted = ws.path(rel)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(encrypt(broken.encode(), [ws.public[p] for p in ("P-01", "P-02", "P-03")]))
    git(ws, "add", rel)
    line = broken.splitlines().index("method: 随便聊聊") + 1
    hooked = git(ws, "commit", "-q", "-m", "x", env={"TALKBOOK_IDENTITY": str(ws.keys["P-01"])})
    assert hooked.returncode != 0 and f"{rel}:{line}: method: " in hooked.stdout + hooked.stderr
    assert git(ws, "commit", "--no-verify", "-q", "-m", "plan T-bad001: planted").returncode == 0
    result = ws.as_("P-01", "validate")
    assert result.exit_code == 1
    assert f"{rel}:{line}: method: " in result.stdout

    # the pre-commit hook refuses a plaintext file
    notes = ws.path("talks/2026/notes.md")
    notes.write_text("谈话要点：张伟同志情绪稳定。\n", encoding="utf-8")
    git(ws, "add", "talks/2026/notes.md")
    before = commits(ws)
    blocked = git(ws, "commit", "-q", "-m", "notes")
    assert blocked.returncode != 0 and commits(ws) == before
    assert "plaintext" in blocked.stdout + blocked.stderr


# -- decisions ---------------------------------------------------------------------------------
def test_reject_needs_comment_and_every_step_is_one_commit(
    workspace: Setup, cadre: str, clock: Clock
):
    ws = workspace
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30")
    reject = ["reject", talk, "--comment", "谈话重点不够明确"]
    steps = [
        ("P-03", "2026-03-02T09:00", ["submit", talk], "李明", "submitted"),
        ("P-02", "2026-03-03T09:00", reject, "陈建国", "rejected"),
        ("P-03", "2026-03-04T09:00", ["submit", talk], "李明", "submitted"),
        ("P-02", "2026-03-05T09:00", ["approve", talk], "陈建国", "approved"),
    ]
    for pid, when, args, author, decision in steps:
        clock.set(when)
        if decision == "rejected":
            assert ws.as_(pid, "reject", talk).exit_code == 2  # --comment is required
            refused(ws.as_(pid, "reject", talk, "--comment", "  "))
            refused(ws.as_("P-03", *args))  # the speaker is no approver
        before = commits(ws)
        ok(ws.as_(pid, *args))
        assert commits(ws) == before + 1
        assert head(ws) == (author, f"plan {talk}: {decision}")
        assert git_log(ws.root, "-1", "--format=%aI").startswith(when)
    decisions = meta_of(ws, "P-02", talk)["decisions"]
    assert [(d["by"], d["decision"], d["at"]) for d in decisions] == [
        (pid, decision, when) for pid, when, _, _, decision in steps
    ]
    assert decisions[1]["comment"] == "谈话重点不够明确"
    assert meta_of(ws, "P-01", talk)["status"] == "approved"


def test_an_approver_never_approves_their_own_plan(workspace: Setup, cadre: str, keydir: Path):
    ws = workspace
    ws.keys["P-05"], ws.public["P-05"] = make_key(keydir, "P-05")
    ok(ws.as_("P-01", "person", "add", "P-05", "--name", "周强", "--role", "approver",
              "--role", "speaker", "--key", ws.public["P-05"]))  # fmt: skip
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30", speaker="P-05")
    ok(ws.as_("P-05", "submit", talk))
    assert "speaker" in refused(ws.as_("P-05", "approve", talk))
    refused(ws.as_("P-05", "reject", talk, "--comment", "自己不能审批自己"))
    ok(ws.as_("P-02", "approve", talk))
    assert meta_of(ws, "P-05", talk)["decisions"][-1]["by"] == "P-02"


def test_postpone_and_cancel(workspace: Setup, cadre: str, tmp_path: Path):
    ws = workspace
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30")
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk))
    assert "--to" in refused(ws.as_("P-03", "postpone", talk, "--to", "下周三下午"))
    ok(ws.as_("P-03", "postpone", talk, "--to", "2026-03-20T14:00"))
    plan = meta_of(ws, "P-01", talk)
    assert plan["status"] == "postponed" and plan["at"] == "2026-03-20T14:00"
    assert head(ws) == ("李明", f"plan {talk}: postponed")
    source = tmp_path / "record.md"
    source.write_text(RECORD_ZH, encoding="utf-8")
    refused(ws.as_("P-03", "record", talk, "--from", source))
    ok(ws.as_("P-03", "submit", talk))
    refused(ws.as_("P-03", "cancel", talk))  # a speaker does not cancel
    ok(ws.as_("P-02", "cancel", talk, "--comment", "谈话对象已调离"))
    assert head(ws) == ("陈建国", f"plan {talk}: cancelled")
    assert "cancelled" in refused(ws.as_("P-02", "approve", talk))
    listed = json.loads(ok(ws.as_("P-01", "list", "talks", "--status", "cancelled",
                                  "--format", "json")).stdout)  # fmt: skip
    assert [row["id"] for row in listed] == [talk]
    assert [d["decision"] for d in meta_of(ws, "P-01", talk)["decisions"]] == [
        "submitted", "approved", "postponed", "submitted", "cancelled",
    ]  # fmt: skip


# -- records -----------------------------------------------------------------------------------
def test_continuation_picks_up_deferred_topics(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    ws = workspace
    talk = hold_talk(ws, cadre, clock, tmp_path)
    clock.set("2026-03-12T09:00")
    unheld = draft(ws, cadre, "--at", "2026-03-30T09:00")
    continued = ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-04-01T09:00",
                       "--continues", unheld)  # fmt: skip
    assert "record" in refused(continued)  # only a held talk can be continued
    follow = draft(ws, cadre, "--at", "2026-04-01T09:00", "--continues", talk)
    plan = parse(ok(ws.as_("P-03", "cat", follow)).stdout)
    assert plan.meta["talk_type"] == "continuation" and plan.meta["continues"] == talk
    assert plan.meta["focus"][:2] == ["对班子分工的不同意见", "本人今后的职业打算"]
    assert "本人今后的职业打算" in plan.body and talk in plan.body


def test_deferred_topics_reach_the_next_plan_until_one_continues_them(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    ws = workspace
    talk = hold_talk(ws, cadre, clock, tmp_path)
    clock.set("2026-03-12T09:00")
    routine = draft(ws, cadre, "--at", "2026-03-20T09:00")  # no --continues
    focus = parse(ok(ws.as_("P-01", "cat", routine)).stdout).meta["focus"]
    assert focus[:2] == ["对班子分工的不同意见", "本人今后的职业打算"]
    draft(ws, cadre, "--at", "2026-04-01T09:00", "--continues", talk)
    later = draft(ws, cadre, "--at", "2026-04-20T09:00")
    assert "本人今后的职业打算" not in parse(ok(ws.as_("P-01", "cat", later)).stdout).meta["focus"]


def test_deferred_topics_look_through_the_plans_only_for_a_cadre_that_put_some_off() -> None:
    """Every plan is looked at (which continues what) only when one of the cadre's held talks
    deferred a topic: another cadre's deferred topics do not count."""
    from talkbook import talks
    from talkbook.catalog import Catalog, Item

    class NoPlans(dict):
        def values(self):
            raise AssertionError("looked through the plans")

    def record(talk: str, cadre: str, deferred: list[str]) -> Item:
        meta = {"id": talk, "cadre": cadre, "held_at": "2026-03-10T09:30", "deferred": deferred}
        return Item("record", f"talks/2026/{talk}/record.md.age", meta=meta)

    catalog = Catalog(plans=NoPlans())
    catalog.add(record("T-aaaaaa", "C-aaaaaa", []))
    catalog.add(record("T-bbbbbb", "C-bbbbbb", ["另一位干部的话题"]))
    assert talks._deferred_from(None, "C-aaaaaa", None, catalog) == []  # type: ignore[arg-type]
    catalog.add(record("T-cccccc", "C-aaaaaa", ["推迟的话题"]))
    with pytest.raises(AssertionError, match="looked through the plans"):
        talks._deferred_from(None, "C-aaaaaa", None, catalog)  # type: ignore[arg-type]


def _fake_editor(tmp_path: Path, old: str, new: str) -> str:
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n"
        f"text = path.read_text(encoding='utf-8')\nassert {old!r} in text\n"
        f"path.write_text(text.replace({old!r}, {new!r}), encoding='utf-8')\n",
        encoding="utf-8",
    )
    return f"{sys.executable} {script}"


def test_confirmed_record_changes_only_by_addendum(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ws = workspace
    talk = hold_talk(ws, cadre, clock, tmp_path)
    ref = f"{talk}/record"
    monkeypatch.setenv("EDITOR", _fake_editor(tmp_path, "思想稳定", "思想基本稳定"))
    ok(ws.as_("P-03", "edit", ref))  # before confirmation the record may still be edited
    assert head(ws) == ("李明", f"record {talk}: edited")
    clock.set("2026-03-11T09:00")
    ok(ws.as_("P-03", "confirm", talk))
    assert meta_of(ws, "P-03", ref)["confirmed_on"] == "2026-03-11"

    monkeypatch.setenv("EDITOR", _fake_editor(tmp_path, "服从组织安排", "不服从组织安排"))
    data, before = record_path(ws, talk).read_bytes(), commits(ws)
    assert "addendum" in refused(ws.as_("P-03", "edit", ref))
    assert record_path(ws, talk).read_bytes() == data and commits(ws) == before

    clock.set("2026-03-12T16:20")
    ok(ws.as_("P-03", "addendum", talk, "--text", "谈话对象补充：希望组织关心其子女就学问题。"))
    assert head(ws) == ("李明", f"record {talk}: addendum")
    record = meta_of(ws, "P-01", ref)
    assert record["addenda"] == [
        {
            "by": "P-03",
            "at": "2026-03-12T16:20",
            "text": "谈话对象补充：希望组织关心其子女就学问题。",
        }
    ]
    assert "服从组织安排" in ok(ws.as_("P-01", "cat", ref)).stdout
    assert ok(ws.as_("P-01", "validate")).exit_code == 0


def test_follow_ups_are_closed_on_a_confirmed_record(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    """Closing a follow-up is progress, not a rewrite: `done` works after confirmation."""
    ws = workspace
    talk = hold_talk(ws, cadre, clock, tmp_path)
    ok(ws.as_("P-03", "confirm", talk))
    listed = json.loads(ok(ws.as_("P-01", "followups", "--format", "json")).stdout)
    assert [(f["n"], f["what"]) for f in listed] == [(1, "协调市人民医院专家会诊")]
    clock.set("2026-04-08T10:00")
    assert ok(ws.as_("P-01", "done", talk, "1")).stdout == f"{talk}: follow-up 1 done\n"
    assert head(ws) == ("王芳", f"record {talk}: follow-up 1 done")
    item = meta_of(ws, "P-01", f"{talk}/record")["follow_ups"][0]
    assert item["done"] is True and item["done_on"] == "2026-04-08"
    assert json.loads(ok(ws.as_("P-01", "followups", "--format", "json")).stdout) == []
    assert ok(ws.as_("P-01", "validate")).exit_code == 0
    assert "is done already" in refused(ws.as_("P-01", "done", talk, "1"))
    assert "has no follow-up 3" in refused(ws.as_("P-01", "done", talk, "3"))
    assert refused(ws.as_("outsider", "done", talk, "1"))


def test_validate_flags_a_rewrite_of_a_confirmed_record(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    ws = workspace
    talk = hold_talk(ws, cadre, clock, tmp_path)
    ok(ws.as_("P-03", "confirm", talk))
    rel = f"talks/2026/{talk}/record.md.age"
    text = decrypt(ws.path(rel).read_bytes(), Keyring.from_file(ws.keys["P-01"])).decode()
    rewritten = Document(parse(text).meta, parse(text).body.replace("服从", "不服从")).text()
    plant(ws, rel, rewritten, ["P-01", "P-03"])
    result = ws.as_("P-01", "validate")
    assert result.exit_code == 1
    assert f"{rel}:1: body: the record was confirmed" in result.stdout


def test_history_followups_lists_and_show(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    ws = workspace
    talk = hold_talk(ws, cadre, clock, tmp_path)
    story = ok(ws.as_("P-01", "history", talk)).stdout.splitlines()
    expected = [
        ("王芳", f"plan {talk}: drafted"),
        ("李明", f"plan {talk}: submitted"),
        ("陈建国", f"plan {talk}: approved"),
        ("李明", f"record {talk}: written"),  # the plan, now held
        ("李明", f"record {talk}: written"),  # the record
    ]
    assert [(line.split()[1], " ".join(line.split()[2:5])) for line in story] == expected
    assert "status" in story[2] and "decisions" in story[2]

    followups = ok(ws.as_("P-03", "followups", "--format", "json")).stdout
    assert [(f["what"], f["due"]) for f in json.loads(followups)] == [
        ("协调市人民医院专家会诊", "2026-04-10")
    ]

    held = json.loads(ok(ws.as_("P-01", "list", "talks", "--status", "held",
                                "--format", "json")).stdout)  # fmt: skip
    assert [(r["id"], r["status"], r["cadre"]) for r in held] == [(talk, "held", cadre)]
    approved = ok(ws.as_("P-01", "list", "talks", "--status", "approved", "--format", "json"))
    assert json.loads(approved.stdout) == []  # once held, a talk is listed as held
    shown = ok(ws.as_("P-01", "show", cadre)).stdout
    assert "events (1):" in shown and "2026-03-01  岗位变动  调任市财政局副局长" in shown
    talk_view = ok(ws.as_("P-03", "show", talk)).stdout
    assert "协调市人民医院专家会诊" in talk_view and "deferred: 对班子分工的不同意见" in talk_view

    for ref in (cadre, talk, f"{talk}/record"):
        refused(ws.as_("outsider", "cat", ref))
    refused(ws.as_("P-02", "cat", f"{talk}/record"))  # the approver reads plans, not records
    refused(ws.as_("P-04", "cat", talk))  # a recorder of no talk of this cadre's


def test_from_file_findings_point_at_the_users_file(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
):
    """A plan or record given with --from is merged with suggestions before it is checked;
    a finding still names the user's file and the line they wrote."""
    ws = workspace
    bad_plan = tmp_path / "计划.md"
    bad_plan.write_text("---\nplace: 三楼会议室\nmethod: 聊天\n---\n", encoding="utf-8")
    result = ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30",
                    "--from", bad_plan)  # fmt: skip
    assert refused(result) == (
        f"talkbook: {bad_plan}:3: method: must be one of direct_questions, open_conversation, "
        "consultation"
    )
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30")
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk))
    clock.set("2026-03-10T11:00")
    text = "---\nplace: 谈话室\nfollow_ups:\n  - what: 回访\n    due: 2026-04-01\n---\n"
    result = ws.as_("P-03", "record", talk, "--from", "-", input=text)
    assert refused(result) == ("talkbook: <stdin>:4: follow_ups.0.owner: required field is missing")


def test_editing_an_approved_plan_sends_it_back_to_draft(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """What the approver approved is what is held: an edit after approval needs a new one."""
    ws = workspace
    talk = draft(ws, cadre, "--at", "2026-03-10T09:30", "--place", "三楼会议室")
    ok(ws.as_("P-03", "submit", talk))
    ok(ws.as_("P-02", "approve", talk))
    clock.set("2026-03-05T08:00")
    monkeypatch.setenv("EDITOR", _fake_editor(tmp_path, "三楼会议室", "五楼谈话室"))
    ok(ws.as_("P-03", "edit", talk))
    assert head(ws) == ("李明", f"plan {talk}: edited, back to draft")
    plan = meta_of(ws, "P-01", talk)
    assert plan["status"] == "draft" and plan["place"] == "五楼谈话室"
    assert plan["decisions"][-1] == {
        "by": "P-03",
        "at": "2026-03-05T08:00",
        "decision": "reopened",
        "comment": "edited while approved",
    }
    clock.set("2026-03-10T11:00")
    assert "a record needs an approved plan" in refused(ws.as_("P-03", "record", talk))
    assert ok(ws.as_("P-01", "validate")).exit_code == 0


@pytest.mark.parametrize(
    "ref, old, new, field",
    [
        ("plan", "status: draft", "status: approved", "status"),
        (
            "plan",
            "decisions: []",
            "decisions: [{by: P-02, at: 2026-03-02T09:00, decision: approved}]",
            "decisions",
        ),  # fmt: skip
        ("record", "confirmed_on: null", "confirmed_on: 2026-03-11", "confirmed_on"),
        (
            "record",
            "addenda: []",
            "addenda: [{by: P-02, at: 2026-03-12T09:00, text: 补充}]",
            "addenda",
        ),  # fmt: skip
    ],
)
def test_an_edit_cannot_forge_a_workflow_step(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    ref: str, old: str, new: str, field: str,
):  # fmt: skip
    ws = workspace
    if ref == "plan":
        target = draft(ws, cadre, "--at", "2026-03-10T09:30")
    else:
        target = f"{hold_talk(ws, cadre, clock, tmp_path)}/record"
    before = commits(ws)
    monkeypatch.setenv("EDITOR", _fake_editor(tmp_path, old, new))
    message = refused(ws.as_("P-01", "edit", target))
    assert f": {field}: changes only through " in message
    assert commits(ws) == before


def test_a_new_talk_id_is_one_no_year_has(tmp_path: Path, monkeypatch) -> None:
    """`plan` asks each year's folder for the id it drew (not a listing of every talk): a name
    there of any kind, a file or a symlink too, is taken, and another id is drawn."""
    from talkbook import talks
    from talkbook.workspace import Workspace

    root = tmp_path / "ws"
    for rel in ("talks/2025/T-aaaaaa", "talks/2026/T-bbbbbb", "elsewhere"):
        (root / rel).mkdir(parents=True)
    (root / "talks/2026/T-cccccc").write_text("a file, not a talk")
    (root / "talks/2026/T-dddddd").symlink_to(root / "missing")
    (root / "talkbook.toml").write_text("")
    ws = Workspace(root)
    taken = ["T-aaaaaa", "T-bbbbbb", "T-cccccc", "T-dddddd"]
    assert all(ws.talk_taken(talk) for talk in taken) and not ws.talk_taken("T-eeeeee")
    drawn = iter([*taken, "T-eeeeee"])
    monkeypatch.setattr(talks, "new_id", lambda prefix: next(drawn))
    app = type("FakeApp", (), {"workspace": ws})()
    assert talks._new_talk_id(app) == "T-eeeeee"


def test_plan_takes_the_profile_from_the_catalog(
    workspace: Setup, cadre: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog (read for deferred topics anyway) holds the profile, checked: `plan` does
    not decrypt and check it a second time; an id the catalog lacks is still read, and refused."""
    import talkbook.talks

    clock.set(START)
    read: list[str] = []
    real = talkbook.talks.read_profile
    monkeypatch.setattr(
        talkbook.talks, "read_profile", lambda app, c: read.append(c) or real(app, c)
    )
    at = "2026-03-20T09:30"
    plan = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", at))
    assert plan.stdout.strip().splitlines()[-1].startswith("T-")
    assert read == []
    unknown = workspace.as_("P-01", "plan", "C-zzzzzz", "--speaker", "P-03", "--at", at)
    assert unknown.exit_code == 2
    assert "unknown cadre: C-zzzzzz" in unknown.stderr
    assert read == ["C-zzzzzz"]


def test_the_plan_template_is_compiled_once_and_kept(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan's brief is rendered from the template compiled by an earlier command (kept in
    `.talkbook/templates/` as template_cache allows), each command with a fresh environment."""
    import jinja2

    from talkbook import templating

    compiled: list[str] = []
    real = jinja2.Environment.compile

    def counting(env: jinja2.Environment, source: str, name=None, *rest):
        compiled.append(str(name))
        return real(env, source, name, *rest)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    monkeypatch.setattr(templating, "environment", templating.environment.__wrapped__)
    first = ok(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30")
    )
    again = ok(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-02T09:30")
    )
    assert compiled.count("zh-CN/plan.md.j2") == 1, compiled
    bodies = [
        parse(ok(workspace.as_("P-01", "cat", last_line(r))).stdout).body for r in (first, again)
    ]
    assert bodies[0] == bodies[1]


def test_a_plans_flags_are_refused_before_the_catalog_is_read(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong --at is said as ever, even where reading the catalog would fail first."""
    from talkbook import talks

    def unreadable(app, compute):
        raise AssertionError("the catalog was read")

    monkeypatch.setattr(talks, "load_into", unreadable)
    result = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "someday")
    assert result.exit_code == 2 and "--at 'someday'" in result.stderr, result.stderr
