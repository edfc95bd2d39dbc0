"""Queries: `list cadres|talks` with every filter and format, and `show` of a talk or a cadre.

One workspace with Chinese data is built once for the module (the commands here only read):
four cadres (two named 张伟; 王强 retired), four talks in several states, a held talk with a
confirmed record and an addendum. Each reader sees only what their key decrypts.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, STAFF, Setup, last_line, make_key, ok, run
from talkbook.cli import cli
from talkbook.listing import CADRE_COLUMNS, TALK_COLUMNS, Filters
from talkbook.models import Document

LINA = """---
name: 李娜
gender: 女
birth_date: 1985-09-17
unit: 市财政局
post: 预算科科长
rank: 正科级
personality: extroverted
strengths: [思路清晰]
---
"""
ZHANG_WEI_TWO = """---
name: 张伟
gender: 男
birth_date: 1990-01-02
unit: 市教育局
post: 办公室主任
personality: balanced
---
"""
WANG_QIANG = """---
name: 王强
gender: 男
birth_date: 1962-11-30
unit: 市财政局
post: 调研员
---
"""
RECORD = {
    "held_at": "2026-03-10T09:30",
    "place": "市委组织部三楼谈话室",
    "present": ["P-03"],
    "topics": ["对岗位调整的认识"],
    "follow_ups": [
        {"what": "协调市人民医院专家会诊", "owner": "干部一科", "due": "2026-04-10"},
        {"what": "送达调任通知", "owner": "干部二科", "due": "2026-03-12", "done": True},
    ],
    "deferred": ["对班子分工的不同意见"],
}
PRIVATE = "曾因家庭矛盾情绪低落"  # the `private` field of PROFILE_ZH: never listed or searched


@dataclass
class World:
    ws: Setup
    cadres: dict[str, str] = field(default_factory=dict)  # short name → id
    talks: dict[str, str] = field(default_factory=dict)

    def as_(self, pid: str, *args: str) -> Result:
        return self.ws.as_(pid, *args)


def _new_cadre(ws: Setup, folder: Path, name: str, text: str) -> str:
    source = folder / f"{name}.md"
    source.write_text(text, encoding="utf-8")
    return last_line(ws.as_("P-01", "cadre", "new", "--from", source))


def _retire(ws: Setup, folder: Path, cadre: str, day: str) -> None:
    """`cadre retire` where it exists; else the field by an edit, as older workspaces did."""
    if "retire" in cli.commands["cadre"].commands:  # type: ignore[attr-defined]
        ok(ws.as_("P-01", "cadre", "retire", cadre, "--date", day))
        return
    text = ok(ws.as_("P-01", "cat", cadre)).stdout
    source = folder / "retired.md"
    source.write_text(text.replace("\n---\n", f"\nretired: '{day}'\n---\n", 1), encoding="utf-8")
    ok(ws.as_("P-01", "edit", cadre, "--from", source))


def _plan(ws: Setup, cadre: str, speaker: str, at: str, *extra: str) -> str:
    os.environ["TALKBOOK_NOW"] = at
    return last_line(ws.as_("P-01", "plan", cadre, "--speaker", speaker, "--at", at, *extra))


def _approve(ws: Setup, talk: str, speaker: str) -> None:
    ok(ws.as_(speaker, "submit", talk))
    ok(ws.as_("P-02", "approve", talk, "--comment", "同意"))


def _build(root: Path, keydir: Path) -> World:
    ws = Setup(root)
    for pid in [*STAFF, "P-05", "outsider"]:
        ws.keys[pid], ws.public[pid] = make_key(keydir, pid)
    ok(run("-i", ws.keys["P-01"], "init", root, "--org", "市委组织部"))
    people = {**STAFF, "P-05": ("周强", ["speaker"])}
    for pid, (name, roles) in people.items():
        role_args = [a for r in roles for a in ("--role", r)]
        ok(
            ws.as_(
                "P-01", "person", "add", pid, "--name", name, *role_args, "--key", ws.public[pid]
            )
        )
    world = World(ws)
    folder = root.parent
    world.cadres["zhang"] = _new_cadre(ws, folder, "zhang", PROFILE_ZH)
    world.cadres["zhang2"] = _new_cadre(ws, folder, "zhang2", ZHANG_WEI_TWO)
    world.cadres["lina"] = _new_cadre(ws, folder, "lina", LINA)
    world.cadres["wang"] = _new_cadre(ws, folder, "wang", WANG_QIANG)
    zhang, lina, wang = world.cadres["zhang"], world.cadres["lina"], world.cadres["wang"]
    os.environ["TALKBOOK_NOW"] = "2026-04-02T09:00"
    ok(ws.as_("P-01", "event", zhang, "post_change", "--date", "2026-03-01",
              "--note", "调任市财政局副局长"))  # fmt: skip
    ok(ws.as_("P-01", "event", lina, "hardship", "--date", "2026-04-01", "--note", "家中老人生病"))

    world.talks["wang"] = _plan(ws, wang, "P-03", "2026-02-01T09:00")
    held = world.talks["held"] = _plan(
        ws,
        zhang,
        "P-03",
        "2026-03-10T09:30",
        "--occasion",
        "post_change",
        "--place",
        "三楼小会议室",
    )
    _approve(ws, held, "P-03")
    os.environ["TALKBOOK_NOW"] = "2026-03-10T11:00"
    record = folder / "record.md"
    record.write_text(Document(RECORD, "谈话对象表示服从组织安排。\n").text(), encoding="utf-8")
    ok(ws.as_("P-03", "record", held, "--from", record))
    ok(ws.as_("P-03", "confirm", held))
    ok(ws.as_("P-03", "addendum", held, "--text", "本人补充说明：已与家属沟通"))
    world.talks["approved"] = _plan(ws, lina, "P-05", "2026-04-20T15:00", "--occasion", "hardship")
    _approve(ws, world.talks["approved"], "P-05")
    world.talks["draft"] = _plan(ws, lina, "P-03", "2026-05-08T10:00")
    os.environ["TALKBOOK_NOW"] = "2026-07-01T09:00"
    _retire(ws, folder, wang, "2026-06-30")
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("queries-home")
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        for var in ("TALKBOOK_IDENTITY", "TALKBOOK_WORKSPACE", "VISUAL", "EDITOR"):
            patch.delenv(var, raising=False)
        for var in ("AUTHOR", "COMMITTER"):
            patch.setenv(f"GIT_{var}_NAME", "tester")
            patch.setenv(f"GIT_{var}_EMAIL", "tester@example.invalid")
        patch.setenv("TALKBOOK_NOW", "2026-01-05T09:00")
        base = tmp_path_factory.mktemp("queries")
        keydir = base / "keys"
        keydir.mkdir(mode=0o700)
        return _build(base / "ws", keydir)


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages and headers in English (labels from talkbook.toml stay in the workspace's)."""
    monkeypatch.setenv("TALKBOOK_LANG", "en")


def listed(world: World, pid: str, what: str, *args: str) -> list[dict]:
    result = ok(world.as_(pid, "list", what, "--format", "json", *args))
    return json.loads(result.stdout)


def talk_names(world: World, rows: list[dict]) -> list[str]:
    by_id = {v: k for k, v in world.talks.items()}
    return [by_id[row["id"]] for row in rows]


def cadre_names(world: World, rows: list[dict]) -> list[str]:
    by_id = {v: k for k, v in world.cadres.items()}
    return [by_id[row["id"]] for row in rows]


def one_error(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("talkbook: ") and "Traceback" not in result.stderr
    assert "unexpected" not in lines[0]
    return lines[0]


# -- list talks -------------------------------------------------------------------------------
def test_list_talks_as_json_carries_codes_and_names(world: World) -> None:
    rows = listed(world, "P-01", "talks")
    assert talk_names(world, rows) == ["wang", "held", "approved", "draft"]  # soonest first
    assert all(list(row) == TALK_COLUMNS for row in rows)
    held = rows[1]
    assert (held["status"], held["occasion"], held["talk_type"]) == (
        "held",
        "post_change",
        "occasion",
    )
    assert (held["name"], held["unit"], held["cadre"]) == (
        "张伟",
        "市发展和改革委员会",
        world.cadres["zhang"],
    )
    assert held["method"] in ("direct_questions", "open_conversation", "consultation")
    assert (held["held_at"], held["speaker"]) == ("2026-03-10T09:30", "P-03")
    assert [r["status"] for r in rows] == ["draft", "held", "approved", "draft"]


TALK_FILTERS = [
    (["--status", "held"], ["held"]),
    (["--status", "approved"], ["approved"]),
    (["--occasion", "post_change"], ["held"]),
    (["--occasion", "岗位变动"], ["held"]),
    (["--occasion", "Setback or hardship"], ["approved"]),
    (["--type", "routine"], ["wang", "draft"]),
    (["--type", "日常谈心谈话"], ["wang", "draft"]),
    (["--speaker", "P-05"], ["approved"]),
    (["--speaker", "周强"], ["approved"]),
    (["--cadre", "李娜"], ["approved", "draft"]),
    (["--unit", "市财政局"], ["wang", "approved", "draft"]),
    (["--since", "2026-04-01"], ["approved", "draft"]),
    (["--until", "2026-03-31"], ["wang", "held"]),
    (["--since", "2026-03-01", "--until", "2026-04-30"], ["held", "approved"]),
    (["--text", "会诊"], ["held"]),  # a follow-up of the record
    (["--text", "三楼"], ["held"]),  # the place
    (["--text", "周强"], ["approved"]),  # the speaker's name
    (["--text", "张伟"], ["held"]),  # the cadre's name, for a reader of the profile
    (["--speaker", "P-03", "--type", "routine"], ["wang", "draft"]),
]


@pytest.mark.parametrize("args, expected", TALK_FILTERS, ids=[" ".join(a) for a, _ in TALK_FILTERS])
def test_each_talk_filter(world: World, args: list[str], expected: list[str]) -> None:
    assert talk_names(world, listed(world, "P-01", "talks", *args)) == expected


def test_filters_are_given_when_any_one_is_set() -> None:
    assert not Filters().given()
    assert Filters(unit="干部一科").given() and Filters(until=None, text="王").given()


def test_a_cadre_by_id_filters_talks(world: World) -> None:
    rows = listed(world, "P-03", "talks", "--cadre", world.cadres["lina"])
    assert talk_names(world, rows) == ["draft"]  # P-03 reads only their own plans


def test_names_go_to_whoever_reads_the_profile_only(world: World) -> None:
    custodian = ok(world.as_("P-01", "list", "talks")).stdout
    assert "张伟" in custodian and "李娜" in custodian
    for pid in ("P-03", "P-02"):  # a speaker and an approver read plans, not profiles
        rows = listed(world, pid, "talks")
        assert rows and all(row["name"] is None and row["unit"] is None for row in rows)
        table = ok(world.as_(pid, "list", "talks")).stdout
        assert world.cadres["zhang"] in table
        for secret in ("张伟", "李娜", "王强", "市财政局", PRIVATE):
            assert secret not in table
    # no search over what the reader cannot read: the name is not in anything P-03 decrypts
    searched = world.as_("P-03", "list", "talks", "--text", "张伟", "--format", "json")
    assert json.loads(ok(searched).stdout) == []
    assert searched.stderr.splitlines()[0] == "no talk matches these filters"
    assert listed(world, "P-03", "talks", "--unit", "市财政局") == []


def test_the_approver_sees_the_held_talk_as_held(world: World) -> None:
    rows = listed(world, "P-02", "talks", "--status", "held")
    assert talk_names(world, rows) == ["held"] and rows[0]["held_at"] is None


# -- formats and nothing matched --------------------------------------------------------------
def test_csv_parses_with_the_csv_module(world: World) -> None:
    result = ok(world.as_("P-01", "list", "talks", "--format", "csv", "--cadre", "李娜"))
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == [world.talks["approved"], world.talks["draft"]]
    assert list(rows[0]) == TALK_COLUMNS
    assert (rows[0]["name"], rows[0]["occasion"], rows[0]["recorder"]) == ("李娜", "hardship", "")
    cadres = list(
        csv.DictReader(
            io.StringIO(ok(world.as_("P-01", "list", "cadres", "--format", "csv")).stdout)
        )
    )
    assert list(cadres[0]) == CADRE_COLUMNS and {r["name"] for r in cadres} == {"张伟", "李娜"}


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_nothing_matched_is_said_on_stderr(world: World, fmt: str) -> None:
    result = ok(world.as_("P-01", "list", "talks", "--occasion", "reward", "--format", fmt))
    assert result.stderr == "no talk matches these filters\n"
    if fmt == "json":
        assert json.loads(result.stdout) == []
    elif fmt == "csv":
        assert list(csv.reader(io.StringIO(result.stdout))) == [TALK_COLUMNS]
    else:
        header, rule = result.stdout.splitlines()
        assert header.split() == [
            "id",
            "cadre",
            "name",
            "speaker",
            "at",
            "status",
            "occasion",
            "method",
        ]
        assert set(rule.replace(" ", "")) == {"-"}


def test_a_table_exactly(world: World) -> None:
    approved, draft = world.talks["approved"], world.talks["draft"]
    lina = world.cadres["lina"]
    rows = {r["id"]: r for r in listed(world, "P-01", "talks", "--cadre", lina)}
    a, d = (
        rows[approved]["method"],
        rows[draft]["method"],
    )  # in English a method's label is its code
    width = max(len(a), len(d), len("method"))
    expected = "\n".join(
        [
            "id        cadre     name  speaker  at                status    occasion      method",
            "--------  --------  ----  -------  ----------------  --------  ------------  "
            + "-" * width,
            f"{approved}  {lina}  李娜  周强     2026-04-20 15:00  approved  遇到挫折困难  {a}",
            f"{draft}  {lina}  李娜  李明     2026-05-08 10:00  draft                   {d}",
        ]
    )
    result = ok(world.as_("P-01", "list", "talks", "--cadre", "李娜"))
    assert result.stdout == expected + "\n"
    assert result.stderr == ""


def test_bad_filter_values_are_one_line(world: World) -> None:
    for args in (["--occasion", "出国学习"], ["--type", "谈恋爱"], ["--status", "秘密"]):
        message = one_error(world.as_("P-01", "list", "talks", *args))
        assert args[1] not in message
    one_error(world.as_("P-01", "list", "talks", "--since", "2026-13-01"))
    message = one_error(world.as_("P-01", "list", "talks", "--cadre", "张伟"))  # two of them
    assert world.cadres["zhang"] in message and world.cadres["zhang2"] in message
    assert "张伟" not in message
    message = one_error(world.as_("P-03", "list", "talks", "--cadre", "李娜"))  # not readable
    assert "李娜" not in message


# -- list cadres ------------------------------------------------------------------------------
def test_list_cadres_leaves_retired_ones_out_and_says_so(world: World) -> None:
    result = ok(world.as_("P-01", "list", "cadres", "--format", "json"))
    rows = json.loads(result.stdout)
    assert sorted(cadre_names(world, rows)) == ["lina", "zhang", "zhang2"]
    assert result.stderr == "1 retired cadre(s) left out (--all to include them)\n"
    assert all(list(r) == CADRE_COLUMNS and r["retired"] is None for r in rows)
    everyone = listed(world, "P-01", "cadres", "--all")
    assert sorted(cadre_names(world, everyone)) == ["lina", "wang", "zhang", "zhang2"]
    retired = listed(world, "P-01", "cadres", "--retired")
    assert cadre_names(world, retired) == ["wang"] and retired[0]["retired"] == "2026-06-30"
    table = ok(world.as_("P-01", "list", "cadres", "--all")).stdout
    assert "retired" in table.splitlines()[0] and "2026-06-30" in table


CADRE_FILTERS = [
    (["--unit", "市财政局"], ["lina"]),  # 王强 too, but retired
    (["--unit", "市财政局", "--all"], ["lina", "wang"]),
    (["--occasion", "hardship"], ["lina"]),  # an event
    (["--occasion", "岗位变动"], ["zhang"]),
    (["--speaker", "周强"], ["lina"]),  # a talk by that speaker
    (["--status", "held"], ["zhang"]),
    (["--type", "routine", "--all"], ["lina", "wang"]),
    (["--since", "2026-03-01"], ["zhang"]),  # by the last talk held
    (["--until", "2026-02-28"], []),
    (["--cadre", "李娜"], ["lina"]),
    (["--text", "区域经济"], ["zhang"]),  # the major
    (["--text", "教育局"], ["zhang2"]),
    (["--text", PRIVATE], []),  # never the private field
]


@pytest.mark.parametrize(
    "args, expected", CADRE_FILTERS, ids=[" ".join(a) for a, _ in CADRE_FILTERS]
)
def test_each_cadre_filter(world: World, args: list[str], expected: list[str]) -> None:
    rows = listed(world, "P-01", "cadres", *args)
    assert sorted(cadre_names(world, rows)) == expected


def test_cadre_rows_count_talks_and_the_last_one(world: World) -> None:
    rows = {r["id"]: r for r in listed(world, "P-01", "cadres", "--all")}
    zhang, lina = rows[world.cadres["zhang"]], rows[world.cadres["lina"]]
    assert (zhang["last_talk"], zhang["talks"], zhang["events"]) == ("2026-03-10", 1, 1)
    assert (lina["last_talk"], lina["talks"], lina["events"]) == (None, 2, 1)


def test_who_reads_no_profile_lists_no_cadre(world: World) -> None:
    result = ok(world.as_("P-03", "list", "cadres", "--format", "json"))
    assert json.loads(result.stdout) == []
    assert result.stderr.splitlines()[0] == "no cadre you can read"


# -- show a talk ------------------------------------------------------------------------------
def test_show_a_talk_with_record_addenda_and_history(world: World) -> None:
    held, zhang = world.talks["held"], world.cadres["zhang"]
    text = ok(world.as_("P-01", "show", held)).stdout
    lines = text.splitlines()
    assert lines[0] == f"{held}  张伟 ({zhang})"
    for wanted in (
        "  speaker: 李明 (P-03)",
        "  at: 2026-03-10 09:30",
        "  place: 三楼小会议室",
        "  occasion: 岗位变动",
        "  type: 必谈事项谈话",
        "  event date: 2026-03-01",
        "  held at: 2026-03-10 09:30",
        "  deferred: 对班子分工的不同意见",
        "    1. [ ] 协调市人民医院专家会诊 (干部一科, 2026-04-10)",
        "    2. [x] 送达调任通知 (干部二科, 2026-03-12)",
        "    本人补充说明：已与家属沟通",
        "    谈话对象表示服从组织安排。",
    ):
        assert wanted in lines, (wanted, text)
    assert any(line.startswith("  status: ") and "held" in line for line in lines)
    assert any("陈建国 (P-02)" in line and "approved" in line and "同意" in line for line in lines)
    assert any(line.startswith("  confirmed on: ") for line in lines)
    assert "addenda:" in lines and "history:" in lines
    story = lines[lines.index("history:") + 1 :]
    messages = [" ".join(line.split()[3:]) for line in story]
    assert messages[:4] == [f"plan {held}: drafted", f"plan {held}: submitted",
                            f"plan {held}: approved", f"record {held}: written"]  # fmt: skip
    assert any(line.split()[2] == "王芳" for line in story)  # who drafted: the custodian
    assert not any("UNVERIFIED" in line for line in story)  # every step signed by its author
    assert PRIVATE not in text


def test_show_marks_unverified_steps(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from talkbook import history

    steps = history.Step("2026-03-10T11:00:00+08:00", "李明", "record T-x: written", "f", (),
                         True, signed_by=None, verified=False)  # fmt: skip
    monkeypatch.setattr(history, "story", lambda app, ref: [steps])
    text = ok(world.as_("P-01", "show", world.talks["held"])).stdout
    assert text.splitlines()[-1] == (
        "  2026-03-10 11:00  李明  record T-x: written  (UNVERIFIED: no signature of a person)"
    )


def test_an_approver_sees_the_plan_not_the_record_nor_the_name(world: World) -> None:
    held, zhang = world.talks["held"], world.cadres["zhang"]
    text = ok(world.as_("P-02", "show", held)).stdout
    assert text.splitlines()[0] == f"{held}  {zhang}"
    assert "record: held (not readable with your identity)" in text
    assert "  status: held" in text.splitlines()  # the record's existence says so
    for secret in ("会诊", "服从组织安排", PRIVATE):  # the plan's own brief names the cadre
        assert secret not in text


def test_what_the_identity_cannot_read_is_one_line(world: World) -> None:
    approved = world.talks["approved"]
    message = one_error(world.as_("P-03", "show", approved))  # P-05's talk
    assert message == f"talkbook: {approved}: not readable with your identity"
    zhang = world.cadres["zhang"]
    assert one_error(world.as_("outsider", "show", zhang)) == (
        f"talkbook: {zhang}: not readable with your identity"
    )
    assert "not readable" in one_error(world.as_("P-03", "show", zhang))
    message = one_error(world.as_("P-03", "show", "李娜"))  # no profile P-03 reads has it
    assert "李娜" not in message


# -- show a cadre -----------------------------------------------------------------------------
def test_show_a_cadre_by_name_and_by_id(world: World) -> None:
    lina = world.cadres["lina"]
    by_id = ok(world.as_("P-01", "show", lina)).stdout
    assert ok(world.as_("P-01", "show", "李娜")).stdout == by_id
    lines = by_id.splitlines()
    assert lines[0] == f"{lina}  李娜"
    assert "  unit: 市财政局" in lines and "  post: 预算科科长" in lines
    assert "events (1):" in lines and "  2026-04-01  遇到挫折困难  家中老人生病" in lines
    assert "talks (2):" in lines
    talks = lines[lines.index("talks (2):") + 1 :]
    assert talks[0].split()[:2] == [world.talks["approved"], "approved"]
    assert "周强" in talks[0] and "遇到挫折困难" in talks[0]
    assert talks[1].split()[:2] == [world.talks["draft"], "draft"] and "日常谈心谈话" in talks[1]


def test_show_a_cadre_never_shows_the_private_field(world: World) -> None:
    text = ok(world.as_("P-01", "show", world.cadres["zhang"])).stdout
    assert "张伟" in text and "  2026-03-01  岗位变动  调任市财政局副局长" in text
    assert PRIVATE not in text and "private" not in text


def test_an_ambiguous_name_lists_the_ids(world: World) -> None:
    message = one_error(world.as_("P-01", "show", "张伟"))
    assert world.cadres["zhang"] in message and world.cadres["zhang2"] in message
    assert "张伟" not in message


def test_a_table_in_chinese(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers, statuses and methods in the reader's language; the columns still line up."""
    from talkbook import i18n

    monkeypatch.setenv("TALKBOOK_LANG", "zh-CN")
    result = ok(world.as_("P-01", "list", "talks", "--status", "held"))
    try:
        i18n.use("zh-CN")
        names = ["id", "cadre", "name", "speaker", "at", "status", "occasion", "method"]
        headers = [i18n._(name) for name in names]
        held = i18n.label("status", "held")
    finally:
        i18n.use("en")
    header, rule, row = result.stdout.splitlines()
    assert header.split() == headers
    assert row.split()[2:6] == ["张伟", "李明", "2026-03-10", "09:30"]
    assert held in row.split() and "岗位变动" in row.split()
    assert len(rule.split()) == len(headers)


def test_a_status_by_its_label_in_the_readers_language(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talkbook import i18n

    try:
        i18n.use("zh-CN")
        held = i18n.label("status", "held")
    finally:
        i18n.use("en")
    monkeypatch.setenv("TALKBOOK_LANG", "zh-CN")
    assert talk_names(world, listed(world, "P-01", "talks", "--status", held)) == ["held"]
    monkeypatch.setenv("TALKBOOK_LANG", "en")
    one_error(world.as_("P-01", "list", "talks", "--speaker", "不存在的人"))


def test_a_table_sanitizes_each_line_once_and_keeps_its_columns() -> None:
    """table_text runs terminal_safe over whole lines: the same text as cell by cell (each
    replaced character, and U+FFFD, take one column), wide characters and all."""
    from talkbook.views import UNSAFE, _width, table_text, terminal_safe

    rows = [
        {"id": "C-1", "name": "张伟\x1b]0;title\x07", "unit": None, "retired": True},
        {"id": "C-22\u202e", "name": "Li\x85", "unit": "市财政局\x0b", "retired": False},
        {"id": 7, "name": "", "unit": "x\ty", "retired": None},
    ]
    columns = ["id", "name", "unit", "retired"]
    cells = [
        [terminal_safe("" if v is None or v is False else "yes" if v is True else str(v))
         for v in (row[c] for c in columns)]
        for row in rows
    ]  # fmt: skip
    widths = [max(_width(t), *(_width(r[i]) for r in cells)) for i, t in enumerate(columns)]
    expected = [
        "  ".join(v + " " * (w - _width(v)) for v, w in zip(line, widths, strict=True)).rstrip()
        for line in [columns, ["-" * w for w in widths], *cells]
    ]
    shown = table_text(rows, columns, columns)
    assert shown.splitlines() == expected
    assert not UNSAFE.search(shown)
    assert all(_width(chr(c)) == 1 for c in range(0x30000) if UNSAFE.match(chr(c)))


def test_a_table_reads_a_missing_column_as_blank_whatever_the_rows() -> None:
    """A row without some column shows a blank cell there (row.get), whether the rows are plain
    dicts, a dict subclass whose [] would answer otherwise, or the table has one column."""
    from collections import defaultdict

    from talkbook.views import table_text

    plain = [{"id": "T-1", "name": "张伟"}, {"id": "T-22"}]
    expected = ["id    name", "----  ----", "T-1   张伟", "T-22"]
    assert table_text(plain, ["id", "name"], ["id", "name"]).splitlines() == expected
    subclass = [defaultdict(lambda: "filled", row) for row in plain]
    assert table_text(subclass, ["id", "name"], ["id", "name"]).splitlines() == expected
    assert all("name" not in row for row in subclass[1:])  # asked with get: nothing added
    assert table_text(plain, ["name"], ["name"]).split("\n") == ["name", "----", "张伟", ""]


def test_a_listing_asks_each_label_once() -> None:
    """A table shows each row as display_row does, column by column (display_columns), asking
    the workspace for each occasion's and talk type's label once per listing (the config is
    walked on each ask)."""
    from types import SimpleNamespace

    from talkbook.views import display_columns, display_row, table_text

    asked: list[tuple[str, object]] = []

    def label(table: str, code: object) -> str:
        asked.append((table, code))
        return f"{table}:{code}"

    person = SimpleNamespace(name="李明")
    ws = SimpleNamespace(label=label, people={"P-03": person})
    rows = [
        {"id": f"T-{n}", "speaker": "P-03", "occasion": ["odd"] if n in (1, 3) else "post_change",
         "talk_type": "routine", "status": "held", "method": None, "at": "2026-01-02T09:30"}
        for n in range(5)
    ]  # fmt: skip
    columns = list(rows[0])
    shown = table_text(rows, columns, columns, shown=display_columns(ws))  # type: ignore[arg-type]
    assert len(asked) == 4  # post_change, routine, and the unhashable list each time it comes
    asked.clear()
    by_row = table_text([display_row(ws, row) for row in rows], columns, columns)  # type: ignore[arg-type]
    assert shown == by_row
    assert display_row(ws, rows[0])["speaker"] == "李明"  # type: ignore[arg-type]
    assert display_row(ws, rows[0])["at"] == "2026-01-02 09:30"  # type: ignore[arg-type]
