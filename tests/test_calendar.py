"""`talkbook calendar`: approved talks not yet held, as iCalendar, with nothing confidential
unless asked; only what the identity can decrypt."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from icalendar import Calendar

from conftest import Clock, Setup, last_line, make_key, ok

PLACE = "三楼小会议室"
RECORD = """---
held_at: 2026-03-05T09:30
place: 谈话室
present: [P-03]
topics: [岗位认识]
---

谈话对象表示服从组织安排。
"""


def events(ics: bytes | str) -> dict[str, dict]:
    """The VEVENTs by talk id: uid, start, summary, location, duration."""
    calendar = Calendar.from_ical(ics)
    found = {}
    for event in calendar.walk("VEVENT"):
        uid = str(event["UID"])
        found[uid.removesuffix("@talkbook")] = {
            "uid": uid,
            "start": event["DTSTART"].dt,
            "summary": str(event["SUMMARY"]),
            "location": str(event.get("LOCATION", "")),
            "duration": event["DURATION"].dt,
        }
    return found


def plan(ws: Setup, cadre: str, at: str, speaker: str = "P-03", *extra: str) -> str:
    return last_line(ws.as_("P-01", "plan", cadre, "--speaker", speaker, "--at", at, *extra))


def approve(ws: Setup, talk: str) -> None:
    ok(ws.as_("P-01", "submit", talk))
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))


@pytest.fixture
def talks(workspace: Setup, cadre: str, clock: Clock, tmp_path: Path, keydir: Path) -> dict:
    """One talk in each state, plus an approved one for a second speaker, P-05."""
    ws = workspace
    clock.set("2026-03-02T09:00")
    ok(ws.as_("P-01", "event", cadre, "post_change", "--date", "2026-03-01", "--note", "调任"))
    upcoming = plan(ws, cadre, "2026-03-20T09:30", "P-03", "--occasion", "post_change",
                    "--place", PLACE)  # fmt: skip
    approve(ws, upcoming)
    drafted = plan(ws, cadre, "2026-03-21T10:00", "P-03", "--place", PLACE)
    held = plan(ws, cadre, "2026-03-05T09:30", "P-03", "--place", PLACE)
    approve(ws, held)
    ws.keys["P-05"], ws.public["P-05"] = make_key(keydir, "P-05")
    ok(ws.as_("P-01", "person", "add", "P-05", "--name", "周强", "--role", "speaker",
              "--key", ws.public["P-05"]))  # fmt: skip
    other = plan(ws, cadre, "2026-03-25T14:00", "P-05", "--place", PLACE)
    approve(ws, other)
    clock.set("2026-03-06T09:00")
    source = tmp_path / "record.md"
    source.write_text(RECORD, encoding="utf-8")
    ok(ws.as_("P-03", "record", held, "--from", source))
    return {"upcoming": upcoming, "drafted": drafted, "held": held, "other": other}


def test_only_approved_talks_not_yet_held(workspace: Setup, talks: dict) -> None:
    result = ok(workspace.as_("P-01", "calendar"))
    found = events(result.stdout_bytes)
    assert set(found) == {talks["upcoming"], talks["other"]}
    first = found[talks["upcoming"]]
    assert first["uid"] == f"{talks['upcoming']}@talkbook"
    assert first["start"] == dt.datetime(2026, 3, 20, 9, 30)  # floating: no time zone
    assert first["start"].tzinfo is None
    assert first["duration"] == dt.timedelta(hours=1)
    assert first["summary"] == f"谈心谈话 {talks['upcoming']}"
    assert b"\r\nDTSTART:20260320T093000\r\n" in result.stdout_bytes  # CRLF lines


def test_nothing_confidential_without_details(workspace: Setup, cadre: str, talks: dict) -> None:
    text = ok(workspace.as_("P-01", "calendar")).stdout
    for secret in ("张伟", PLACE, "调任", "post_change", "岗位", cadre, "P-03", "LOCATION"):
        assert secret not in text


def test_details_add_the_name_and_the_place(workspace: Setup, talks: dict) -> None:
    found = events(ok(workspace.as_("P-01", "calendar", "--details")).stdout_bytes)
    event = found[talks["upcoming"]]
    assert event["summary"] == f"谈心谈话 {talks['upcoming']} 张伟"
    assert event["location"] == PLACE


def test_out_is_an_owner_only_file(workspace: Setup, talks: dict, tmp_path: Path) -> None:
    out = tmp_path / "build" / "talks.ics"
    result = ok(workspace.as_("P-01", "calendar", "--out", out))
    assert result.stdout == ""
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert set(events(out.read_bytes())) == {talks["upcoming"], talks["other"]}


def test_a_speaker_sees_only_the_talks_they_can_decrypt(workspace: Setup, talks: dict) -> None:
    result = ok(workspace.as_("P-03", "calendar", "--details"))
    found = events(result.stdout_bytes)
    assert set(found) == {talks["upcoming"]}
    # the speaker cannot read the profile: no name even with --details, but the plan's place
    assert found[talks["upcoming"]]["summary"] == f"谈心谈话 {talks['upcoming']}"
    assert found[talks["upcoming"]]["location"] == PLACE
    assert "not readable" in result.stderr
    assert set(events(ok(workspace.as_("P-05", "calendar")).stdout_bytes)) == {talks["other"]}


def test_an_english_workspace_says_talk(tmp_path: Path, keydir: Path) -> None:
    from conftest import run

    key, public = make_key(keydir, "en-custodian")
    root = tmp_path / "en"
    ok(run("-i", key, "init", root, "--org", "Personnel", "--locale", "en"))
    ok(run("-w", root, "-i", key, "person", "add", "P-01", "--name", "Ann", "--role", "custodian",
           "--role", "approver", "--key", public))  # fmt: skip
    empty = Calendar.from_ical(ok(run("-w", root, "-i", key, "calendar")).stdout_bytes)
    assert list(empty.walk("VEVENT")) == []
    from talkbook.calendar_export import Scheduled, summary

    assert summary("en", Scheduled("T-k3x9p2", dt.datetime(2026, 1, 1))) == "Talk T-k3x9p2"
