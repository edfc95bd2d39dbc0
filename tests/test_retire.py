"""cadre retire and event remove: one commit each, ids only in the message; a retired cadre is
kept (encrypted) but out of `due`, and gets no new plan or event."""

from __future__ import annotations

import json

import pytest
from click.testing import Result

from conftest import Clock, Setup, git_log, last_line, ok
from talkbook.models import parse

SECRETS = ("张伟", "岗位变动", "调任", "post_change")


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> Clock:
    clock.set("2026-03-01T08:00")
    return clock


def commits(ws: Setup) -> int:
    return len(git_log(ws.root, "--format=%H").split())


def subject(ws: Setup) -> str:
    return git_log(ws.root, "-1", "--format=%s").strip()


def one_error(result: Result) -> str:
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def due_cadres(ws: Setup, as_of: str) -> list[tuple[str, str]]:
    result = ws.as_("P-01", "due", "--as-of", as_of, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return [(row["cadre"], row["reason"]) for row in json.loads(result.stdout)]


def events(ws: Setup, cadre: str) -> list[tuple[str, str]]:
    meta = parse(ok(ws.as_("P-01", "cat", cadre)).stdout).meta
    return [(str(e["date"]), e["occasion"]) for e in meta.get("events") or []]


def test_retire_takes_the_cadre_out_of_due(workspace: Setup, cadre: str, clock: Clock) -> None:
    ws = workspace
    ok(ws.as_("P-01", "event", cadre, "岗位变动", "--date", "2026-02-20", "--note", "调任"))
    assert (cadre, "post_change") in due_cadres(ws, "2026-04-15")
    before = commits(ws)
    result = ok(ws.as_("P-01", "cadre", "retire", cadre, "--date", "2026-03-31"))
    assert result.stdout.strip() == f"{cadre}: retired"
    assert commits(ws) == before + 1 and subject(ws) == f"cadre {cadre}: retired"
    assert due_cadres(ws, "2026-04-15") == []
    assert (cadre, "post_change") in due_cadres(ws, "2026-03-25")  # not retired yet then
    profile = ws.path(f"cadres/{cadre}.md.age").read_bytes()
    assert profile.startswith(b"age-encryption.org/v1") and "张伟".encode() not in profile
    assert "retired: 2026-03-31" in ok(ws.as_("P-01", "cat", cadre)).stdout
    ok(ws.as_("P-01", "validate"))
    log = git_log(ws.root, "--format=%s%n%b")
    assert not any(secret in log for secret in SECRETS)


def test_a_retired_cadre_gets_no_new_plan_or_event(workspace: Setup, cadre: str) -> None:
    ws = workspace
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    before = commits(ws)
    assert ws.as_("P-02", "cadre", "retire", cadre).exit_code == 2  # custodians only
    assert commits(ws) == before
    result = ok(ws.as_("P-01", "cadre", "retire", cadre, "--date", "2026-02-28"))
    assert result.stderr.strip().splitlines()[-1] == (
        f"talkbook: {cadre}: open plans {talk} are left as they are; cancel them if need be"
    )
    before = commits(ws)
    plan = one_error(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    assert plan == f"talkbook: {cadre}: retired on 2026-02-28; no new plans"
    event = one_error(ws.as_("P-01", "event", cadre, "岗位变动"))
    assert event == f"talkbook: {cadre}: retired on 2026-02-28; no new events"
    again = one_error(ws.as_("P-01", "cadre", "retire", "张伟"))
    assert again == f"talkbook: {cadre}: retired on 2026-02-28 already"
    assert commits(ws) == before


def test_event_remove_is_one_commit_with_ids_only(workspace: Setup, cadre: str) -> None:
    ws = workspace
    ok(ws.as_("P-01", "event", cadre, "reward", "--date", "2026-02-10"))
    ok(ws.as_("P-01", "event", cadre, "岗位变动", "--date", "2026-01-05", "--note", "调任"))
    ok(ws.as_("P-01", "event", cadre, "hardship", "--date", "2026-02-20"))
    before = commits(ws)
    # numbered as `show` lists them, by date: 1 is the post change of 2026-01-05
    result = ok(ws.as_("P-01", "event", cadre, "--remove", "1"))
    assert result.stdout.strip() == f"{cadre}: event 1 removed (2026-01-05 岗位变动)"
    assert commits(ws) == before + 1 and subject(ws) == f"cadre {cadre}: event removed"
    assert events(ws, cadre) == [("2026-02-10", "reward"), ("2026-02-20", "hardship")]
    ok(ws.as_("P-01", "event", "remove", "张伟", "2"))  # the other spelling, by name
    assert events(ws, cadre) == [("2026-02-10", "reward")]
    assert commits(ws) == before + 2
    for args, expected in (
        ((cadre, "--remove", "3"), "has no event 3 (it has 1)"),
        ((cadre, "--remove", "0"), "has no event 0 (it has 1)"),
        ((cadre, "reward", "--remove", "1"), "--remove N takes no occasion"),
        (("remove", cadre, "一"), "N is the event's number"),
        ((cadre, "reward", "2"), "event takes CADRE OCCASION, or CADRE --remove N"),
    ):
        assert expected in one_error(ws.as_("P-01", "event", *args))
    assert commits(ws) == before + 2
    log = git_log(ws.root, "--format=%s%n%b")
    assert not any(secret in log for secret in SECRETS)
