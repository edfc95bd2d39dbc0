"""The practice as rules: method by personality and experience, focus, the preparation brief."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup
from talkbook import rules
from talkbook.models import parse
from talkbook.workspace import Workspace, default_config_text

TODAY = dt.date(2026, 5, 12)
PROFILE: dict[str, Any] = {
    "name": "张伟",
    "gender": "男",
    "birth_date": "1968-05-12",
    "unit": "市发展和改革委员会",
    "post": "副主任",
    "rank": "副处级",
    "education": "研究生",
    "major": "区域经济学",
    "career_start": "2010-07-01",
    "work_history": [
        {"from": "2010-07-01", "to": "2018-12-31", "unit": "县发改局", "post": "科员"}
    ],
    "rewards": [{"date": "2021-12-30", "what": "年度考核优秀"}],
    "punishments": [{"date": "2019-03-01", "what": "通报批评"}],
    "personality": "introverted",
    "strengths": ["业务扎实", "作风严谨"],
    "weaknesses": "与基层沟通偏少",
    "evaluations": "群众评价较好",
    "difficulties": ["爱人长期生病", "子女上学路远"],
    "family": "爱人在市人民医院住院治疗",
    "private": "曾因家庭矛盾情绪低落",
    "events": [
        {"date": "2026-03-01", "occasion": "reward", "note": "获评先进个人"},
        {"date": "2026-04-01", "occasion": "post_change", "note": "调任市财政局"},
        {"date": "2025-10-01", "occasion": "conflict", "note": "与同事发生争执"},  # too old
        {"date": "2026-06-01", "occasion": "hardship", "note": "尚未发生"},  # after today
    ],
}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return tomllib.loads(default_config_text())


@pytest.fixture
def label(tmp_path: Path):
    (tmp_path / "talkbook.toml").write_text(default_config_text(), encoding="utf-8")
    return Workspace(tmp_path).label


def with_(**changes: Any) -> dict[str, Any]:
    return {**PROFILE, **changes}


# -- method -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, method",
    [
        ({"personality": "introverted"}, "direct_questions"),
        ({"personality": "extroverted"}, "open_conversation"),
        ({"personality": "balanced", "talkative": True}, "open_conversation"),
        ({"personality": None, "talkative": True}, "open_conversation"),
        ({"career_start": "2001-05-12"}, "consultation"),  # 25 years today: the threshold
        ({"career_start": "2001-05-13"}, "direct_questions"),  # one day short
        ({"rank": "正处级"}, "consultation"),
        ({"rank": "一级巡视员", "personality": "extroverted"}, "consultation"),
        ({"career_start": None, "rank": None}, "direct_questions"),
        ({"career_start": "不详"}, "direct_questions"),
    ],
)
def test_method_by_personality_and_experience(changes: dict, method: str, config: dict) -> None:
    assert rules.suggest_method(with_(**changes), config, TODAY) == method


def test_experience_thresholds_come_from_the_config(config: dict) -> None:
    custom = {**config, "methods": {"experience": {"career_years": 10, "ranks": ["科长"]}}}
    assert rules.suggest_method(PROFILE, custom, TODAY) == "consultation"  # 15 years in
    assert rules.suggest_method(PROFILE, config, TODAY) == "direct_questions"
    assert rules.suggest_method(with_(career_start=None, rank="科长"), custom, TODAY) == (
        "consultation"
    )
    assert rules.suggest_method(with_(career_start=None, rank="正处级"), custom, TODAY) == (
        "direct_questions"
    )
    strict = {**config, "methods": {"experience": {"career_years": 40, "ranks": []}}}
    veteran = with_(career_start="1990-07-01")  # 35 years
    assert rules.suggest_method(veteran, config, TODAY) == "consultation"
    assert rules.suggest_method(veteran, strict, TODAY) == "direct_questions"


def test_years_between_counts_whole_years() -> None:
    assert rules.years_between("1968-05-12", dt.date(2026, 5, 11)) == 57
    assert rules.years_between("1968-05-12", dt.date(2026, 5, 12)) == 58
    assert rules.years_between("2000-02-29", dt.date(2026, 2, 28)) == 25
    assert rules.years_between(None, TODAY) is None
    assert rules.years_between("某年某月", TODAY) is None


# -- focus ------------------------------------------------------------------------------------
def test_focus_deferred_first_then_recent_events_then_difficulties(label) -> None:
    deferred = ["对班子分工的不同意见"]
    focus = rules.suggest_focus(PROFILE, None, deferred, label, TODAY)
    assert focus == [
        "对班子分工的不同意见",
        "岗位变动：调任市财政局",  # newest event first
        "受到表彰奖励：获评先进个人",
        "爱人长期生病",
        "子女上学路远",
    ]


def test_focus_puts_the_occasion_first_and_drops_duplicates(label) -> None:
    deferred = ["爱人长期生病"]
    focus = rules.suggest_focus(PROFILE, "reward", deferred, label, TODAY)
    assert focus == [
        "爱人长期生病",
        "受到表彰奖励：获评先进个人",
        "岗位变动：调任市财政局",
        "子女上学路远",
    ]


def test_focus_of_a_bare_profile(label) -> None:
    event = {"date": "2026-05-01", "occasion": "own_request", "note": None}
    profile = {"name": "李娜", "events": [event], "difficulties": "住房困难"}
    assert rules.suggest_focus(profile, None, [], label, TODAY) == ["本人要求谈话", "住房困难"]
    assert rules.suggest_focus({"name": "李娜"}, None, [], label, TODAY) == []


def test_recent_events_window(label) -> None:
    dates = [e["date"] for e in rules.recent_events(PROFILE, TODAY)]
    assert dates == ["2026-04-01", "2026-03-01"]
    assert [e["date"] for e in rules.recent_events(PROFILE, TODAY, days=60)] == ["2026-04-01"]
    broken = {"events": [{"date": "不详", "occasion": "reward"}, "不是事项"]}
    assert rules.recent_events(broken, TODAY) == []


# -- brief ------------------------------------------------------------------------------------
def test_brief_carries_the_profile_a_speaker_needs(label) -> None:
    brief = rules.brief(PROFILE, "post_change", ["本人今后的职业打算"], label, TODAY)
    assert brief["age"] == 58 and brief["career_years"] == 15
    for key in ("name", "education", "major", "strengths", "weaknesses", "evaluations"):
        assert brief[key] == PROFILE[key]
    assert brief["work_history"] == PROFILE["work_history"]
    assert brief["rewards"] == PROFILE["rewards"] and brief["punishments"] == PROFILE["punishments"]
    assert brief["difficulties"] == ["爱人长期生病", "子女上学路远"]
    assert brief["deferred"] == ["本人今后的职业打算"]
    assert [e["occasion_label"] for e in brief["recent_events"]] == ["岗位变动", "受到表彰奖励"]


def test_brief_age_from_birth_date(label) -> None:
    assert rules.brief(PROFILE, None, [], label, dt.date(2026, 5, 11))["age"] == 57
    assert rules.brief(with_(birth_date=None), None, [], label, TODAY)["age"] is None


@pytest.mark.parametrize("occasion", sorted(rules.FAMILY_OCCASIONS))
def test_family_reaches_the_brief_for_family_related_occasions(label, occasion: str) -> None:
    assert rules.brief(PROFILE, occasion, [], label, TODAY)["family"] == PROFILE["family"]


@pytest.mark.parametrize("occasion", [None, "post_change", "reward", "discipline", "complaint"])
def test_family_stays_out_of_other_briefs(label, occasion: str | None) -> None:
    assert rules.brief(PROFILE, occasion, [], label, TODAY)["family"] is None


@pytest.mark.parametrize("occasion", [None, "post_change", "family_emergency", "hardship"])
def test_private_never_reaches_the_brief(label, occasion: str | None) -> None:
    brief = rules.brief(PROFILE, occasion, [], label, TODAY)
    assert "private" not in brief
    assert PROFILE["private"] not in json.dumps(brief, ensure_ascii=False)


def test_latest_event_and_deadline(config: dict) -> None:
    latest = rules.latest_event(PROFILE, "post_change")
    assert latest is not None and latest["note"] == "调任市财政局"
    assert rules.latest_event(PROFILE, "discipline") is None
    assert rules.deadline(latest, config) == dt.date(2026, 5, 1)
    assert rules.deadline({"date": "2026-04-01", "occasion": "已取消的事由"}, config) is None


# -- through the command line: what the plan's body shows ---------------------------------------
def test_plan_body_shows_family_only_when_it_bears_on_the_talk(workspace: Setup, cadre: str):
    at = "2026-12-01T09:30"
    bodies = {}
    for occasion in ("family_emergency", "post_change"):
        made = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", at,
                             "--occasion", occasion)  # fmt: skip
        assert made.exit_code == 0, made.stderr
        talk = made.stdout.strip().splitlines()[-1]
        shown = workspace.as_("P-03", "cat", talk)
        assert shown.exit_code == 0, shown.stderr
        bodies[occasion] = parse(shown.stdout)
    assert "爱人在市人民医院住院治疗" in bodies["family_emergency"].body
    assert "爱人在市人民医院住院治疗" not in bodies["post_change"].body
    for doc in bodies.values():
        assert "曾因家庭矛盾情绪低落" not in doc.text()
        assert doc.meta["method"] == "consultation"  # career since 1990: a veteran
        assert "爱人长期生病，家庭负担较重" in doc.body
