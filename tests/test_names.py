"""Names where people think in names: a cadre by name, occasions, talk types and methods by label,
in a zh-CN workspace; names never reach a commit message or an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import Setup, git_log, last_line, ok
from talkbook.names import resolve_cadre, resolve_method, resolve_occasion


def add_cadre(ws: Setup, tmp_path: Path, name: str, unit: str, post: str) -> str:
    source = tmp_path / f"{name}-{unit}.md"
    source.write_text(
        f"---\nname: {name}\nbirth_date: 1971-03-08\nunit: {unit}\npost: {post}\n"
        "family: 爱人在外地工作\n---\n\n本人性格开朗。\n",
        encoding="utf-8",
    )
    return last_line(ws.as_("P-01", "cadre", "new", "--from", source))


@pytest.fixture
def people(workspace: Setup, tmp_path: Path) -> dict[str, str]:
    """司马建国 once, 马俊 twice (two units)."""
    return {
        "司马建国": add_cadre(workspace, tmp_path, "司马建国", "市财政局", "副局长"),
        "马俊一": add_cadre(workspace, tmp_path, "马俊", "市教育局", "科长"),
        "马俊二": add_cadre(workspace, tmp_path, "马俊", "市卫健委", "副主任"),
    }


def meta(ws: Setup, ref: str) -> dict:
    text = ok(ws.as_("P-01", "cat", ref)).stdout
    return yaml.safe_load(text.split("---")[1])


def one_error(result) -> str:
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def commits(root: Path) -> int:
    return len(git_log(root, "--format=%H").splitlines())


def no_names_in_history(root: Path) -> None:
    log = git_log(root, "--format=%s%n%b")
    for name in ("司马建国", "马俊", "岗位变动", "调任", "Post change"):
        assert name not in log


def test_event_by_name_and_label_in_either_language(
    workspace: Setup, people: dict[str, str]
) -> None:
    ws = workspace
    result = ok(ws.as_("P-01", "event", "司马建国", "岗位变动", "--date", "2026-03-01",
                       "--note", "调任市财政局"))  # fmt: skip
    cadre = people["司马建国"]
    assert result.stdout.strip() == f"{cadre}: 岗位变动 on 2026-03-01"
    assert git_log(ws.root, "-1", "--format=%s").strip() == f"cadre {cadre}: event"
    for label in ("post_change", "Post change", "post change", " 岗位变动 "):
        ok(ws.as_("P-01", "event", cadre, label, "--date", "2026-03-02"))
    events = meta(ws, cadre)["events"]
    assert [e["occasion"] for e in events] == ["post_change"] * 5
    no_names_in_history(ws.root)


def test_ambiguous_and_unknown_names(workspace: Setup, people: dict[str, str]) -> None:
    ws = workspace
    before = commits(ws.root)
    message = one_error(ws.as_("P-01", "event", "马俊", "岗位变动"))
    one, two = sorted([people["马俊一"], people["马俊二"]])
    assert f"{one} (" in message and f"{two} (" in message
    assert "市教育局, 科长" in message and "市卫健委, 副主任" in message
    for secret in ("1971", "爱人", "开朗", "马俊"):
        assert secret not in message  # ids, units and posts only: not the name typed
    plan = ws.as_("P-01", "plan", "马俊", "--speaker", "P-03", "--at", "2026-03-10T09:30")
    assert one in one_error(plan)

    message = one_error(ws.as_("P-01", "event", "欧阳不存在", "岗位变动"))
    assert message.startswith("talkbook: unknown cadre") and "欧阳不存在" not in message
    plan = ws.as_("P-01", "plan", "欧阳不存在", "--speaker", "P-03", "--at", "2026-03-10T09:30")
    assert one_error(plan).startswith("talkbook: unknown cadre")
    # a speaker reads no profile: a name means nothing to them, and says nothing of who exists
    assert one_error(ws.as_("P-03", "edit", "司马建国")).startswith("talkbook: unknown cadre")
    assert commits(ws.root) == before


def test_plan_by_name_with_labels(workspace: Setup, people: dict[str, str]) -> None:
    ws = workspace
    ok(ws.as_("P-01", "event", "司马建国", "岗位变动", "--date", "2026-03-01"))
    talk = last_line(ws.as_("P-01", "plan", "司马建国", "--speaker", "李明",
                            "--at", "2026-03-10T09:30", "--occasion", "岗位变动",
                            "--method", "征询意见", "--type", "任前谈话"))  # fmt: skip
    plan = meta(ws, talk)
    assert plan["cadre"] == people["司马建国"] and plan["speaker"] == "P-03"
    assert (plan["occasion"], plan["method"], plan["talk_type"]) == (
        "post_change",
        "consultation",
        "pre_appointment",
    )
    cadre = people["马俊一"]
    other = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at",
                             "2026-03-11T09:30", "--method", "Open conversation"))  # fmt: skip
    assert meta(ws, other)["method"] == "open_conversation"
    assert git_log(ws.root, "-1", "--format=%s").strip() == f"plan {other}: drafted"
    before = commits(ws.root)
    for option, value, expected in (
        ("--occasion", "升职加薪", "unknown occasion: choose from"),
        ("--method", "聊天", "unknown method: choose from"),
        ("--type", "闲谈", "unknown talk type: choose from"),
    ):
        result = ws.as_("P-01", "plan", cadre, "--speaker", "P-03",
                        "--at", "2026-03-12T09:30", option, value)  # fmt: skip
        message = one_error(result)
        assert expected in message and value not in message
        if option == "--occasion":  # the choices read in the workspace's language, with codes
            assert "岗位变动 (post_change)" in message
    assert commits(ws.root) == before
    no_names_in_history(ws.root)


def test_edit_and_retire_take_a_name(workspace: Setup, people: dict[str, str], tmp_path) -> None:
    ws = workspace
    cadre = people["司马建国"]
    text = ok(ws.as_("P-01", "cat", cadre)).stdout
    changed = tmp_path / "改.md"
    changed.write_text(text.replace("副局长", "局长"), encoding="utf-8")
    ok(ws.as_("P-01", "edit", "司马建国", "--from", changed))
    assert meta(ws, cadre)["post"] == "局长"
    ok(ws.as_("P-01", "cadre", "retire", "司马建国", "--date", "2026-03-01"))
    assert str(meta(ws, cadre)["retired"]) == "2026-03-01"
    assert ok(ws.as_("P-01", "cat", "司马建国")).stdout == ok(ws.as_("P-01", "cat", cadre)).stdout
    story = ok(ws.as_("P-01", "history", "司马建国")).stdout
    assert f"cadre {cadre}: retired" in story and "司马建国" not in story
    no_names_in_history(ws.root)

    # the queries helper resolves from a catalog already loaded; the same rules apply
    from talkbook.app import App
    from talkbook.catalog import load

    app = App(ws.root, ws.keys["P-01"])
    assert resolve_cadre(load(app), "司马建国") == cadre
    assert resolve_cadre(app, people["马俊一"]) == people["马俊一"]
    assert resolve_occasion(app.workspace, "Family emergency") == "family_emergency"
    assert resolve_method("直接提问") == "direct_questions"
    assert resolve_method("漫谈交流") == "open_conversation"
    assert resolve_method(None) is None
