"""The JSON Schemas: valid themselves, accept good CJK documents, refuse bad ones by field."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "tools" / "talkbook" / "schemas"
KINDS = ("profile", "plan", "record", "config")


def load(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))


def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(load(kind))


PROFILE: dict[str, Any] = {
    "id": "C-7k2m9q",
    "name": "王晓明",
    "gender": "男",
    "birth_date": "1980-04-12",
    "unit": "市财政局",
    "post": "预算科科长",
    "rank": "正科级",
    "roles": ["leadership_team"],
    "education": "大学本科",
    "major": "会计学",
    "career_start": "2002-07-01",
    "work_history": [
        {"from": "2002-07-01", "to": "2012-12-31", "unit": "县财政局", "post": "科员"},
        {"from": "2013-01-01", "to": None, "unit": "市财政局", "post": "预算科科长"},
    ],
    "rewards": [{"date": "2022-01-15", "what": "年度考核优秀"}],
    "punishments": [],
    "personality": "introverted",
    "talkative": False,
    "strengths": ["业务精通", "责任心强"],
    "weaknesses": "开拓创新不够",
    "evaluations": None,
    "difficulties": ["爱人长期两地分居"],
    "family": "父母均已退休",
    "private": None,
    "events": [{"date": "2026-02-01", "occasion": "post_change", "note": "拟提任副局长"}],
    "hobby": "书法",  # extra fields are welcome
}

PLAN: dict[str, Any] = {
    "id": "T-k3x9p2",
    "cadre": "C-7k2m9q",
    "speaker": "P-01",
    "at": "2026-03-02T09:30",
    "talk_type": "occasion",
    "method": "direct_questions",
    "status": "approved",
    "place": "组织部三楼小会议室",
    "occasion": "post_change",
    "event_date": "2026-02-01",
    "focus": ["对岗位调整的认识", "新岗位工作思路"],
    "preparations": "查阅近三年年度考核材料",
    "decisions": [
        {"by": "P-01", "at": "2026-02-20T10:00", "decision": "submitted", "comment": None},
        {"by": "P-02", "at": "2026-02-21T15:20:05", "decision": "approved", "comment": "同意"},
    ],
    "continues": None,
    "created_by": "P-01",
}

RECORD: dict[str, Any] = {
    "id": "T-k3x9p2",
    "cadre": "C-7k2m9q",
    "speaker": "P-01",
    "recorder": "P-03",
    "held_at": "2026-03-02T09:35",
    "place": "组织部三楼小会议室",
    "present": ["李华（记录人）"],
    "method": "direct_questions",
    "occasion": "post_change",
    "topics": ["岗位调整", "家庭困难"],
    "follow_ups": [
        {"what": "协调解决子女入学", "owner": "P-03", "due": "2026-04-01", "done": False}
    ],
    "deferred": ["对职级晋升的想法"],
    "confirmed_on": None,
    "addenda": [{"by": "P-01", "at": "2026-03-03T08:00", "text": "补充：本人已提交书面材料"}],
}

CONFIG: dict[str, Any] = {
    "organization": "中共某某市委组织部",
    "locale": "zh-CN",
    "approval_wait_days": 3,
    "people": {
        "P-01": {
            "name": "赵敏",
            "roles": ["custodian", "speaker"],
            "keys": ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"],
            "email": "zhaomin@example.org",
        },
        "P-02": {
            "name": "钱进",
            "roles": ["approver"],
            "keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyDummyKeyDummy qian@host"],
            "cadre": "C-a1b2c3",
        },
    },
    "access": {
        "cadre": ["role:custodian"],
        "plan": ["role:custodian", "role:approver", "field:speaker"],
        "record": ["role:custodian", "field:speaker", "field:recorder"],
    },
    "occasions": {
        "post_change": {"deadline_days": 30, "label": {"zh-CN": "岗位变动", "en": "Post change"}},
    },
    "talk_types": {"routine": {"label": {"zh-CN": "日常谈心谈话", "en": "Routine talk"}}},
    "methods": {"experience": {"career_years": 25, "ranks": ["正处级", "副厅级"]}},
    "cadence": [
        {
            "id": "unit_head_with_team",
            "every_days": 182,
            "cadre_role": "leadership_team",
            "speaker_role": "unit_head",
            "label": {"zh-CN": "主要负责人每半年与班子成员谈话", "en": "Half-yearly"},
        }
    ],
    "extra_section": {"anything": True},
}

GOOD = {"profile": PROFILE, "plan": PLAN, "record": RECORD, "config": CONFIG}


def errors(kind: str, document: dict[str, Any]) -> list[Any]:
    return list(validator(kind).iter_errors(document))


def mentions(error: Any, field: str) -> bool:
    """The error names the field: in its path, or (a missing required field) in its message."""
    return field in [str(part) for part in error.absolute_path] or repr(field) in error.message


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12(kind: str) -> None:
    schema = load(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"talkbook:{kind}"
    assert schema["title"]
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{kind}.{name} has no description"


@pytest.mark.parametrize("kind", KINDS)
def test_good_documents_pass(kind: str) -> None:
    assert errors(kind, GOOD[kind]) == []


@pytest.mark.parametrize("kind", ["profile", "plan", "record"])
def test_minimal_documents_pass(kind: str) -> None:
    required = load(kind)["required"]
    minimal = {key: GOOD[kind][key] for key in required}
    assert errors(kind, minimal) == []


@pytest.mark.parametrize("kind", ["profile", "plan", "record"])
def test_optional_fields_may_be_null(kind: str) -> None:
    required = set(load(kind)["required"])
    document = {k: (v if k in required else None) for k, v in GOOD[kind].items()}
    document.pop("hobby", None)
    assert errors(kind, document) == []


def test_default_config_passes() -> None:
    defaults = Path(__file__).resolve().parents[1] / "tools" / "talkbook" / "defaults.toml"
    if not defaults.exists():
        pytest.skip("no defaults.toml in this checkout")
    with defaults.open("rb") as handle:
        assert errors("config", tomllib.load(handle)) == []


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("profile", "name"),
        ("profile", "id"),
        ("plan", "speaker"),
        ("plan", "at"),
        ("plan", "method"),
        ("record", "recorder"),
        ("record", "held_at"),
    ],
)
def test_missing_required_field_fails(kind: str, field: str) -> None:
    document = copy.deepcopy(GOOD[kind])
    del document[field]
    found = errors(kind, document)
    assert found and any(mentions(error, field) for error in found)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("profile", ["personality"], "内向"),
        ("plan", ["method"], "聊天"),
        ("plan", ["status"], "done"),
        ("plan", ["decisions", 0, "decision"], "同意"),
        ("record", ["method"], "chat"),
        ("config", ["locale"], "zh_CN"),
        ("config", ["people", "P-01", "roles", 0], "leader"),
    ],
)
def test_wrong_enum_fails(kind: str, path: list[Any], value: Any) -> None:
    document = copy.deepcopy(GOOD[kind])
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    found = errors(kind, document)
    assert found
    error = best_match(found)
    assert list(error.absolute_path)[: len(path)] == path


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("profile", ["birth_date"], "1980/04/12"),
        ("profile", ["birth_date"], "1980-13-01"),
        ("profile", ["work_history", 0, "from"], "二〇〇二年七月"),
        ("profile", ["events", 0, "date"], "2026-2-1"),
        ("plan", ["at"], "2026-03-02"),
        ("plan", ["at"], "2026-03-02 09:30"),
        ("plan", ["event_date"], "2026-02-01T09:00"),
        ("record", ["held_at"], "2026-03-02T9:35"),
        ("record", ["follow_ups", 0, "due"], "下周五"),
        ("record", ["confirmed_on"], "2026-03-32"),
    ],
)
def test_bad_date_pattern_fails(kind: str, path: list[Any], value: str) -> None:
    document = copy.deepcopy(GOOD[kind])
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    found = errors(kind, document)
    assert found
    assert list(best_match(found).absolute_path) == path


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("profile", "id", "C-7K2M9Q"),
        ("profile", "id", "T-7k2m9q"),
        ("plan", "cadre", "王晓明"),
        ("plan", "continues", "T-123"),
        ("plan", "speaker", "赵敏"),
        ("profile", "talkative", "是"),
        ("profile", "strengths", 42),
        ("record", "topics", "岗位调整"),
    ],
)
def test_wrong_ids_and_types_fail(kind: str, field: str, value: Any) -> None:
    document = copy.deepcopy(GOOD[kind])
    document[field] = value
    found = errors(kind, document)
    assert found and any(mentions(error, field) for error in found)


def test_follow_up_needs_owner_and_due() -> None:
    document = copy.deepcopy(RECORD)
    document["follow_ups"] = [{"what": "协调解决子女入学"}]
    messages = " ".join(error.message for error in errors("record", document))
    assert "'owner'" in messages or "'due'" in messages


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["occasions", "post_change", "deadline_days"], 0),
        (["occasions", "post_change", "deadline_days"], "30"),
        (["approval_wait_days"], "三天"),
        (["cadence", 0, "every_days"], 1.5),
        (["access", "plan", 0], "speaker"),
        (["people", "P-01", "keys", 0], "not-a-key"),
        (["methods", "experience", "ranks"], "正处级"),
    ],
)
def test_config_types_are_strict(path: list[Any], value: Any) -> None:
    document = copy.deepcopy(CONFIG)
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    found = errors("config", document)
    assert found
    assert list(best_match(found).absolute_path)[: len(path)] == path


def test_config_person_ids_are_checked() -> None:
    document = copy.deepcopy(CONFIG)
    document["people"]["赵敏"] = document["people"].pop("P-01")
    assert errors("config", document)


# one valid document of each kind, and values to set each field to (CJK ones too)
VALID = {
    "profile": {"id": "C-aaaaaa", "name": "张伟"},
    "plan": {
        "id": "T-aaaaaa", "cadre": "C-aaaaaa", "speaker": "P-03", "at": "2026-03-10T09:30",
        "talk_type": "routine", "method": "consultation", "status": "draft",
    },
    "record": {
        "id": "T-aaaaaa", "cadre": "C-aaaaaa", "speaker": "P-03", "recorder": "P-04",
        "held_at": "2026-03-10T09:30",
    },
}  # fmt: skip
VALUES = [
    None, 5, -1, 1.5, True, "", "x", "张伟", "2026-01-01", "2026-01-01\n", "2026-13-01",
    "2026-03-10T09:30", "T-aaaaaa", "C-aaaaaa", "C-aaaaaa\n", "P-03", [], ["x"], [5], {}, {"a": 1},
    [{"date": "2026-01-01", "occasion": "x"}],
    [{"what": "x", "owner": "P-03", "due": "2026-01-01"}],
    [{"by": "P-02", "at": "2026-03-10T09:30", "decision": "approved"}],
]  # fmt: skip


@pytest.mark.parametrize("kind", ["profile", "plan", "record"])
def test_jsonschema_rs_passes_exactly_what_the_walk_finds_nothing_in(kind: str) -> None:
    """validation.check_schema asks jsonschema-rs "valid?" and walks with jsonschema only what
    it refuses: both must agree on every field of the schema set to every kind of value."""
    from talkbook.validation import passes_schema, validator_for

    walk = validator_for(kind)
    for name in [*load(kind).get("properties", {}), "unknown_field"]:
        for value in VALUES:
            meta = {**VALID[kind], name: value}
            found = list(walk.iter_errors(meta))
            assert passes_schema(kind, meta) == (not found), (name, value)
