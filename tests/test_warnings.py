"""Warnings that help: said on stderr, the command still succeeds (`plan`, `cadre new`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, Clock, Setup, last_line, ok
from test_workflow import hold_talk


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> Clock:
    clock.set("2026-03-02T09:00")
    return clock


def plan(ws: Setup, cadre: str, *args: str) -> Result:
    return ok(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", *args))


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def event(ws: Setup, cadre: str) -> None:
    ok(ws.as_("P-01", "event", cadre, "post_change", "--date", "2026-03-01", "--note", "调任"))


def test_ordinary_plan_says_nothing(workspace: Setup, cadre: str):
    event(workspace, cadre)
    result = plan(workspace, cadre, "--at", "2026-03-10T09:30", "--occasion", "post_change")
    assert warnings(result) == []


def test_occasion_without_logged_event(workspace: Setup, cadre: str):
    result = plan(workspace, cadre, "--at", "2026-03-10T09:30", "--occasion", "post_change")
    talk = last_line(result)
    assert warnings(result) == [f"talkbook: cadre {cadre} has no logged event for this occasion"]
    assert ok(workspace.as_("P-01", "show", talk)).stdout


def test_at_before_the_event(workspace: Setup, cadre: str):
    event(workspace, cadre)
    result = plan(workspace, cadre, "--at", "2026-02-20T09:30", "--occasion", "post_change")
    talk = last_line(result)
    lines = warnings(result)
    assert len(lines) == 1
    assert lines[0].startswith(f"talkbook: plan {talk}: --at is earlier than cadre {cadre}")
    assert "2026-03-01" not in result.stderr and "调任" not in result.stderr
    assert ok(workspace.as_("P-01", "show", talk)).stdout


def test_another_open_plan(workspace: Setup, cadre: str):
    first = last_line(plan(workspace, cadre, "--at", "2026-03-10T09:30"))
    result = plan(workspace, cadre, "--at", "2026-03-20T09:30")
    second = last_line(result)
    assert second != first
    assert warnings(result) == [f"talkbook: {cadre} already has an open plan {first}"]
    assert ok(workspace.as_("P-01", "show", second)).stdout


def test_a_cancelled_plan_is_not_open(workspace: Setup, cadre: str):
    first = last_line(plan(workspace, cadre, "--at", "2026-03-10T09:30"))
    ok(workspace.as_("P-01", "cancel", first))
    assert warnings(plan(workspace, cadre, "--at", "2026-03-20T09:30")) == []


def test_a_held_talk_is_not_open(workspace: Setup, cadre: str, clock: Clock, tmp_path: Path):
    hold_talk(workspace, cadre, clock, tmp_path)
    assert warnings(plan(workspace, cadre, "--at", "2026-04-20T09:30")) == []


def test_duplicate_cadre(workspace: Setup, cadre: str, tmp_path: Path):
    source = tmp_path / "again.md"
    source.write_text(PROFILE_ZH, encoding="utf-8")
    result = ok(workspace.as_("P-01", "cadre", "new", "--from", source))
    twin = last_line(result)
    assert twin != cadre
    assert warnings(result) == [
        f"talkbook: {twin} has the same name and birth date as {cadre} (a duplicate profile?)"
    ]
    assert "张伟" not in result.stderr and "1968" not in result.stderr
    assert ok(workspace.as_("P-01", "show", twin)).stdout


def test_different_cadre_says_nothing(workspace: Setup, cadre: str, tmp_path: Path):
    source = tmp_path / "other.md"
    source.write_text(PROFILE_ZH.replace("1968-05-12", "1970-01-02"), encoding="utf-8")
    result = ok(workspace.as_("P-01", "cadre", "new", "--from", source))
    assert warnings(result) == []
