"""What is owed, judged on a fixed day: occasions, cadence, follow-ups, approvals (`due`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from conftest import Clock, Setup, last_line, make_key, ok
from talkbook import obligations
from talkbook.catalog import Catalog, Item
from talkbook.models import Document
from talkbook.workspace import Workspace, default_config_text

START = "2026-01-05T09:00"  # the workspace and its first profile are made on this day
DEFAULT_DEADLINES = {
    "post_change": 30,
    "assessment_feedback": 30,
    "reward": 30,
    "discipline": 15,
    "ideological_fluctuation": 7,
    "hardship": 14,
    "family_emergency": 7,
    "conflict": 14,
    "complaint": 7,
    "own_request": 14,
}
HEAD_ZH = """---
name: 刘洋
gender: 男
birth_date: 1972-03-08
unit: 市发展和改革委员会
post: 主任
rank: 正处级
roles: [unit_head]
personality: extroverted
---

单位主要负责人。
"""


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> Clock:
    clock.set(START)
    return clock


def due(ws: Setup, as_of: str, *extra: str, pid: str = "P-01") -> tuple[int, list[dict]]:
    result = ws.as_(pid, "due", "--as-of", as_of, "--format", "json", *extra)
    assert result.exit_code in (0, 1), result.stderr
    rows = json.loads(result.stdout)
    for row in rows:
        assert {"cadre", "reason", "talk", "deadline", "overdue"} <= set(row)
    return result.exit_code, rows


def brief(rows: list[dict]) -> list[tuple[str, str, bool]]:
    return [(r["cadre"], r["reason"], r["deadline"], r["overdue"]) for r in rows]


def event(ws: Setup, cadre: str, occasion: str, date: str, note: str = "有关情况") -> None:
    ok(ws.as_("P-01", "event", cadre, occasion, "--date", date, "--note", note))


def hold(
    ws: Setup,
    clock: Clock,
    cadre: str,
    day: str,
    *,
    occasion: str | None = None,
    speaker: str = "P-03",
    follow_ups: list[dict] | None = None,
) -> str:
    """Plan, submit, approve and record a talk held on `day`; returns its id."""
    clock.set(f"{day}T08:00")
    extra = ["--occasion", occasion] if occasion else []
    at = f"{day}T09:00"
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", speaker, "--at", at, *extra))
    ok(ws.as_(speaker, "submit", talk))
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))
    clock.set(f"{day}T11:00")
    meta = {"follow_ups": follow_ups or [], "deferred": ["今后的工作打算"]}
    source = ws.root.parent / f"record-{talk}.md"
    source.write_text(Document(meta, "谈话对象表示服从组织安排。").text(), encoding="utf-8")
    ok(ws.as_(speaker, "record", talk, "--from", source))
    return talk


# -- occasions --------------------------------------------------------------------------------
def _workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "talkbook.toml").write_text(default_config_text(), encoding="utf-8")
    return Workspace(tmp_path)


def _item(kind: str, key: str, meta: dict[str, Any]) -> Item:
    return Item(kind, f"{kind}/{key}", Document(meta), "")


@pytest.mark.parametrize("occasion, days", sorted(DEFAULT_DEADLINES.items()))
def test_default_occasion_deadlines(tmp_path: Path, occasion: str, days: int) -> None:
    ws = _workspace(tmp_path)
    profile = {
        "id": "C-aaaaaa",
        "name": "张伟",
        "events": [{"date": "2026-02-01", "occasion": occasion}],
    }
    catalog = Catalog(profiles={"C-aaaaaa": _item("profile", "C-aaaaaa", profile)})
    deadline = dt.date(2026, 2, 1) + dt.timedelta(days=days)
    [owed] = obligations.occasion_obligations(ws, catalog, deadline)
    assert (owed.reason, owed.deadline, owed.overdue) == (occasion, deadline, False)
    assert owed.detail == ws.label("occasions", occasion) != occasion
    [late] = obligations.occasion_obligations(ws, catalog, deadline + dt.timedelta(days=1))
    assert late.overdue


def test_occasions_due_and_overdue(workspace: Setup, cadre: str, clock: Clock) -> None:
    clock.set("2026-02-01T17:00")
    for occasion in ("post_change", "ideological_fluctuation", "discipline"):
        event(workspace, cadre, occasion, "2026-02-01")
    assert due(workspace, "2026-01-31") == (0, [])  # nothing has happened yet on that day
    code, rows = due(workspace, "2026-02-08")
    assert code == 0 and brief(rows) == [
        (cadre, "ideological_fluctuation", "2026-02-08", False),
        (cadre, "discipline", "2026-02-16", False),
        (cadre, "post_change", "2026-03-03", False),
    ]
    code, rows = due(workspace, "2026-02-10")
    assert code == 1 and [(r["reason"], r["overdue"]) for r in rows] == [
        ("ideological_fluctuation", True),
        ("discipline", False),
        ("post_change", False),
    ]
    assert rows[0]["talk"] is None and rows[0]["detail"] == "思想情绪波动"
    table = workspace.as_("P-01", "due", "--as-of", "2026-02-10")
    assert table.exit_code == 1 and "张伟" in table.stdout and "思想情绪波动" in table.stdout


def test_an_event_without_date_is_dated_by_the_clock(workspace: Setup, cadre: str, clock: Clock):
    clock.set("2026-02-03T10:00")
    ok(workspace.as_("P-01", "event", cadre, "own_request", "--note", "本人要求谈话"))
    assert "2026-02-03  本人要求谈话" in ok(workspace.as_("P-01", "show", cadre)).stdout
    assert brief(due(workspace, "2026-02-18")[1]) == [(cadre, "own_request", "2026-02-17", True)]


def test_met_only_by_a_held_talk_for_that_occasion_after_the_event(
    workspace: Setup, cadre: str, clock: Clock
) -> None:
    ws = workspace
    clock.set("2026-02-01T17:00")
    event(ws, cadre, "post_change", "2026-02-01", "调任市财政局")
    event(ws, cadre, "reward", "2026-02-01", "获评先进个人")
    hold(ws, clock, cadre, "2026-02-10", occasion="reward")
    assert [r["reason"] for r in due(ws, "2026-02-20")[1]] == ["post_change"]  # another occasion

    clock.set("2026-02-21T08:00")
    planned = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at",
                               "2026-02-25T09:00", "--occasion", "post_change"))  # fmt: skip
    assert [r["talk"] for r in due(ws, "2026-02-22")[1]] == [planned]  # the talk in hand
    ok(ws.as_("P-01", "cancel", planned))
    hold(ws, clock, cadre, "2026-02-25", occasion="post_change")
    assert due(ws, "2026-03-10") == (0, [])

    clock.set("2026-03-05T17:00")
    event(ws, cadre, "post_change", "2026-03-05", "再次调整分工")  # a talk before it does not count
    assert brief(due(ws, "2026-04-10")[1]) == [(cadre, "post_change", "2026-04-04", True)]


# -- cadence ----------------------------------------------------------------------------------
def test_yearly_cadence(workspace: Setup, cadre: str, clock: Clock) -> None:
    ws = workspace
    assert due(ws, "2026-12-01") == (0, [])  # a year from the profile's creation: 35 days off
    assert brief(due(ws, "2026-12-01", "--within", "60")[1]) == [
        (cadre, "cadence", "2027-01-05", False)
    ]
    assert brief(due(ws, "2026-12-10")[1]) == [(cadre, "cadence", "2027-01-05", False)]
    code, rows = due(ws, "2027-01-06")
    assert code == 1 and brief(rows) == [(cadre, "cadence", "2027-01-05", True)]
    assert rows[0]["detail"] == "每年至少谈话一次"
    hold(ws, clock, cadre, "2026-06-01")
    assert due(ws, "2027-01-06") == (0, [])
    assert brief(due(ws, "2027-05-20")[1]) == [(cadre, "cadence", "2027-06-01", False)]


def test_unit_head_with_the_leadership_team(
    workspace: Setup, cadre: str, clock: Clock, keydir: Path, tmp_path: Path
) -> None:
    ws = workspace
    # no person is the unit head yet: nobody could meet the rule, so it is not listed
    assert due(ws, "2026-06-10") == (0, [])

    source = tmp_path / "head.md"
    source.write_text(HEAD_ZH, encoding="utf-8")
    head = last_line(ws.as_("P-01", "cadre", "new", "--from", source))
    ws.keys["P-06"], ws.public["P-06"] = make_key(keydir, "P-06")
    ok(ws.as_("P-01", "person", "add", "P-06", "--name", "刘洋", "--role", "speaker",
              "--key", ws.public["P-06"], "--cadre", head))  # fmt: skip
    code, rows = due(ws, "2026-06-10")  # 182 days from 2026-01-05: 26 days left
    assert code == 0 and brief(rows) == [(cadre, "cadence", "2026-07-06", False)]
    assert rows[0]["detail"] == "主要负责人每半年与班子成员谈话"

    hold(ws, clock, cadre, "2026-06-15")  # by P-03, who is not the unit head
    assert brief(due(ws, "2026-07-07")[1]) == [(cadre, "cadence", "2026-07-06", True)]
    hold(ws, clock, cadre, "2026-07-08", speaker="P-06")
    assert due(ws, "2026-07-09") == (0, [])
    assert brief(due(ws, "2026-12-20")[1]) == [
        (head, "cadence", "2027-01-05", False),  # the head's own yearly talk
        (cadre, "cadence", "2027-01-06", False),  # half a year after the head's talk
    ]


# -- follow-ups and approvals ---------------------------------------------------------------------
def test_follow_ups_listed_once_their_date_passes(workspace: Setup, cadre: str, clock: Clock):
    ws = workspace
    follow_ups = [
        {"what": "协调解决子女入学问题", "owner": "干部一科", "due": "2026-03-01"},
        {"what": "送达调任通知", "owner": "干部二科", "due": "2026-02-20", "done": True},
    ]
    talk = hold(ws, clock, cadre, "2026-02-10", follow_ups=follow_ups)
    assert due(ws, "2026-02-28") == (0, [])
    assert brief(due(ws, "2026-03-01")[1]) == [(cadre, "follow_up", "2026-03-01", False)]
    code, rows = due(ws, "2026-03-02", pid="P-03")  # the speaker reads the record
    assert code == 1 and brief(rows) == [(cadre, "follow_up", "2026-03-01", True)]
    assert rows[0]["talk"] == talk and rows[0]["detail"] == "协调解决子女入学问题"

    listed = json.loads(ok(ws.as_("P-03", "followups", "--as-of", "2026-02-11",
                                  "--format", "json")).stdout)  # fmt: skip
    assert [(f["what"], f["owner"], f["overdue"]) for f in listed] == [
        ("协调解决子女入学问题", "干部一科", False)
    ]


def test_approvals_waiting_too_long(workspace: Setup, cadre: str, clock: Clock) -> None:
    ws = workspace
    clock.set("2026-02-01T10:00")
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-02-20T09:00"))
    assert due(ws, "2026-02-05") == (0, [])  # a draft waits for nobody
    ok(ws.as_("P-03", "submit", talk))
    assert due(ws, "2026-02-04") == (0, [])  # approval_wait_days = 3
    code, rows = due(ws, "2026-02-05")
    assert code == 1 and brief(rows) == [(cadre, "approval", "2026-02-04", True)]
    assert rows[0]["talk"] == talk

    config = tomlkit.parse(ws.path("talkbook.toml").read_text(encoding="utf-8"))
    config["approval_wait_days"] = 10
    ws.path("talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    assert due(ws, "2026-02-05") == (0, [])
    assert due(ws, "2026-02-12")[0] == 1
    clock.set("2026-02-12T10:00")
    ok(ws.as_("P-02", "approve", talk))
    assert due(ws, "2026-02-12") == (0, [])


def test_most_urgent_first(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    events_a = [{"date": "2026-02-01", "occasion": "ideological_fluctuation"}]
    events_b = [
        {"date": "2026-01-20", "occasion": "post_change"},
        {"date": "2026-02-08", "occasion": "family_emergency"},
    ]
    submitted = {"by": "P-03", "at": "2026-02-01T10:00", "decision": "submitted"}
    plan = {"id": "T-pppppp", "cadre": "C-bbbbbb", "status": "submitted", "decisions": [submitted]}
    follow_up = {"what": "落实体检安排", "owner": "干部一科", "due": "2026-02-09"}
    record = {
        "id": "T-rrrrrr",
        "cadre": "C-aaaaaa",
        "held_at": "2026-01-10T09:00",
        "follow_ups": [follow_up],
    }
    catalog = Catalog(
        profiles={
            "C-aaaaaa": _item("profile", "C-aaaaaa", {"name": "张伟", "events": events_a}),
            "C-bbbbbb": _item("profile", "C-bbbbbb", {"name": "李娜", "events": events_b}),
        },
        plans={"T-pppppp": _item("plan", "T-pppppp", plan)},
        records={"T-rrrrrr": _item("record", "T-rrrrrr", record)},
    )
    created = {"C-aaaaaa": dt.date(2026, 1, 1), "C-bbbbbb": dt.date(2026, 1, 1)}
    as_of = dt.date(2026, 2, 10)
    found = obligations.due(ws, catalog, as_of, created)
    assert [(o.reason, o.deadline.isoformat(), o.overdue) for o in found] == [
        ("approval", "2026-02-04", True),
        ("ideological_fluctuation", "2026-02-08", True),
        ("follow_up", "2026-02-09", True),
        ("family_emergency", "2026-02-15", False),
        ("post_change", "2026-02-19", False),
    ]
    row = found[2].as_dict(as_of, catalog)
    assert (row["name"], row["talk"], row["days_left"], row["owner"]) == (
        "张伟",
        "T-rrrrrr",
        -1,
        "干部一科",
    )


def test_due_reads_the_records_once_for_every_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`due` reads the records' front matter in one pass (obligations.Records) and hands it to
    each kind, which then answers as when asked alone."""
    ws = _workspace(tmp_path)
    held = {"cadre": "C-aaaaaa", "occasion": "post_change", "speaker": "P-02"}
    records = {
        "T-rrrrr1": {**held, "id": "T-rrrrr1", "held_at": "2026-01-25T09:00"},
        "T-rrrrr2": {
            **held,
            "id": "T-rrrrr2",
            "held_at": "not a day",
            "follow_ups": [{"what": "回访", "due": "2026-02-01"}, {"what": "x", "done": True}],
        },
    }
    events = [
        {"date": "2026-01-20", "occasion": "post_change"},  # met by T-rrrrr1
        {"date": "2026-02-01", "occasion": "post_change"},
    ]
    catalog = Catalog(
        profiles={"C-aaaaaa": _item("profile", "C-aaaaaa", {"name": "张伟", "events": events})},
        records={tid: _item("record", tid, meta) for tid, meta in records.items()},
    )
    created, as_of = {"C-aaaaaa": dt.date(2025, 1, 1)}, dt.date(2026, 2, 10)
    alone = [
        *obligations.occasion_obligations(ws, catalog, as_of),
        *obligations.cadence_obligations(ws, catalog, as_of, created),
        *obligations.followup_obligations(catalog, as_of),
    ]
    reads = []
    real = obligations.Records.read
    monkeypatch.setattr(
        obligations.Records, "read", classmethod(lambda cls, c: reads.append(c) or real(c))
    )
    found = obligations.due(ws, catalog, as_of, created)
    assert reads == [catalog]
    assert sorted(found) == sorted(alone)
    assert {(o.reason, o.since) for o in found} == {
        ("post_change", dt.date(2026, 2, 1)),
        ("follow_up", None),  # held_at unreadable: no day, as before
    }


# -- the workspace's own rules ------------------------------------------------------------------
def test_workspace_may_rename_add_and_drop_occasions(
    workspace: Setup, cadre: str, clock: Clock
) -> None:
    ws = workspace
    clock.set("2026-02-01T17:00")
    event(ws, cadre, "reward", "2026-02-01", "获评先进个人")
    event(ws, cadre, "conflict", "2026-02-01", "与同事发生争执")
    path = ws.path("talkbook.toml")
    config = tomlkit.parse(path.read_text(encoding="utf-8"))
    occasions = config["occasions"]
    del occasions["reward"]  # dropped
    occasions["dispute"] = occasions.pop("conflict")  # renamed
    occasions["post_change"]["deadline_days"] = 5
    occasions["post_change"]["label"]["zh-CN"] = "职务调整"
    study = tomlkit.table()
    study["deadline_days"] = 3
    study["label"] = {"zh-CN": "出国学习", "en": "Study abroad"}
    occasions["study_abroad"] = study  # added
    path.write_text(tomlkit.dumps(config), encoding="utf-8")

    for gone in ("reward", "conflict"):
        result = ws.as_("P-01", "event", cadre, gone, "--date", "2026-02-02")
        assert result.exit_code == 2 and "unknown occasion" in result.stderr
    event(ws, cadre, "study_abroad", "2026-02-02", "赴新加坡学习三个月")
    event(ws, cadre, "post_change", "2026-02-02", "调任市财政局")
    event(ws, cadre, "dispute", "2026-02-02", "与同事发生争执")
    code, rows = due(ws, "2026-02-10")
    assert code == 1 and [(r["reason"], r["deadline"], r["detail"]) for r in rows] == [
        ("study_abroad", "2026-02-05", "出国学习"),
        ("post_change", "2026-02-07", "职务调整"),
        ("dispute", "2026-02-16", "与同事发生矛盾"),
    ]
    assert "2026-02-02  出国学习  赴新加坡学习三个月" in ok(ws.as_("P-01", "show", cadre)).stdout


def _git(root: Path, *args: str, day: str = "2026-01-01") -> None:
    import os
    import subprocess

    when = {"GIT_AUTHOR_DATE": f"{day}T12:00:00", "GIT_COMMITTER_DATE": f"{day}T12:00:00"}
    subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True,
        env={**os.environ, **when},
    )  # fmt: skip


def _add(root: Path, rel: str, day: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rel.encode())
    _git(root, "add", rel, day=day)
    _git(root, "commit", "-q", "--no-verify", "-m", f"add {rel}", day=day)


def test_first_added_under_a_path_is_the_whole_logs_answer(tmp_path: Path) -> None:
    """`due` asks only about cadres/ (a log of every file is ten times slower at 20,000 files):
    a profile added on a branch that was merged keeps its day, as in the whole log."""
    from talkbook import gittrail

    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    assert gittrail.first_added(root, "cadres/") == {}  # no commit yet
    _add(root, "cadres/C-aaaaaa.md.age", "2026-01-02")
    _git(root, "checkout", "-q", "-b", "side")
    _add(root, "cadres/C-bbbbbb.md.age", "2026-02-03")
    _git(root, "checkout", "-q", "main")
    _add(root, "talks/2026/T-cccccc/plan.md.age", "2026-03-04")
    _git(root, "merge", "-q", "--no-ff", "-m", "merge", "side", day="2026-04-05")
    whole = gittrail.first_added(root)
    cadres = gittrail.first_added(root, "cadres/")
    assert cadres == {rel: day for rel, day in whole.items() if rel.startswith("cadres/")}
    assert cadres["cadres/C-bbbbbb.md.age"] == dt.date(2026, 2, 3)
    assert len(whole) == 3


def test_days_parses_each_text_once_and_none_when_no_day(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = obligations.parse_date
    monkeypatch.setattr(obligations, "parse_date", lambda text: parsed.append(text) or real(text))
    days = obligations.Days()
    assert days["2026-02-01"] == days["2026-02-01"] == dt.date(2026, 2, 1)
    assert days["2026-02-30"] is None and days["None"] is None and days["2026-02-30"] is None
    assert parsed == ["2026-02-01", "2026-02-30", "None"]


def test_followups_alone_read_only_records_with_follow_ups() -> None:
    """followup_obligations without Records: the same obligations as with them."""
    records = {
        "T-rrrrr1": {"cadre": "C-aaaaaa", "held_at": "2026-01-25T09:00", "follow_ups": []},
        "T-rrrrr2": {
            "cadre": "C-aaaaaa",
            "held_at": "2026-01-26T09:00",
            "follow_ups": [{"what": "回访", "due": "2026-02-01", "owner": "P-02"}],
        },
    }
    catalog = Catalog(records={tid: _item("record", tid, meta) for tid, meta in records.items()})
    as_of = dt.date(2026, 2, 10)
    alone = obligations.followup_obligations(catalog, as_of, upcoming=True)
    given = obligations.Records.read(catalog)
    assert alone == obligations.followup_obligations(catalog, as_of, True, given)
    assert [(o.talk, o.since, o.deadline, o.owner, o.number) for o in alone] == [
        ("T-rrrrr2", dt.date(2026, 1, 26), dt.date(2026, 2, 1), "P-02", 1)
    ]


def test_git_s_log_runs_while_the_index_loads_and_its_failure_is_one_line(
    workspace: Setup, cadre: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`due` starts git's log of when each profile was added before it loads the index, reads
    it once, and says git's refusal in one line (exit 2), as when it waited for it first."""
    from talkbook import gittrail
    from talkbook.errors import TalkbookError

    started: list[str] = []
    real = gittrail.first_added_later

    def counted(root: Path, *specs: str) -> Any:
        started.append(" ".join(specs))
        return real(root, *specs)

    monkeypatch.setattr(gittrail, "first_added_later", counted)
    ok(workspace.as_("P-01", "due", "--format", "json"))
    assert started == ["cadres/"]

    def failing() -> dict[str, dt.date]:
        raise TalkbookError("git log failed here")

    monkeypatch.setattr(gittrail, "first_added_later", lambda root, *specs: failing)
    refused = workspace.as_("P-01", "due")
    lines = refused.stderr.strip().splitlines()
    assert refused.exit_code == 2 and lines == ["talkbook: git log failed here"]
