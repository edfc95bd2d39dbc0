"""Templates and the renderer: both locales, full and minimal contexts, overrides, errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from talkbook.errors import TalkbookError, TemplateError
from talkbook.templating import (
    as_list,
    bullets,
    copy_default_templates,
    join_or,
    package_templates_dir,
    render,
)

LOCALES = ("zh-CN", "en")
NAMES = ("profile.md.j2", "plan.md.j2", "record.md.j2")
METHODS = ("direct_questions", "open_conversation", "consultation")
OCCASIONS = (
    "post_change",
    "assessment_feedback",
    "reward",
    "discipline",
    "ideological_fluctuation",
    "hardship",
    "family_emergency",
    "conflict",
    "complaint",
    "own_request",
)
LEAKS = ("None", "[]", "{}", "Undefined", "{{", "}}", "{%", "%}", "{#", "#}")

PROFILE: dict[str, Any] = {
    "id": "C-7k2m9q",
    "name": "王晓明",
    "gender": "男",
    "unit": "市财政局",
    "post": "预算科科长",
    "personality": "introverted",
    "strengths": ["业务精通", "责任心强"],
    "family": None,
}

BRIEF: dict[str, Any] = {
    "name": "王晓明",
    "gender": "男",
    "age": 45,
    "unit": "市财政局",
    "post": "预算科科长",
    "rank": "正科级",
    "education": "大学本科",
    "major": "会计学",
    "career_years": 23,
    "work_history": [
        {"from": "2002-07-01", "to": "2012-12-31", "unit": "县财政局", "post": "科员"},
        {"from": "2013-01-01", "to": None, "unit": "市财政局", "post": "预算科科长"},
    ],
    "rewards": [{"date": "2022-01-15", "what": "年度考核优秀"}],
    "punishments": [{"date": None, "what": "通报批评"}],
    "personality": "introverted",
    "talkative": False,
    "strengths": ["业务精通", "责任心强"],
    "weaknesses": "开拓创新不够",
    "evaluations": ["群众评价较好"],
    "difficulties": "爱人长期两地分居",
    "family": "父亲新近住院",
    "recent_events": [
        {
            "date": "2026-02-01",
            "occasion": "post_change",
            "occasion_label": "岗位变动",
            "note": "拟提任副局长",
        },
        {"date": "2026-02-10", "occasion": "hardship", "occasion_label": None, "note": None},
    ],
    "deferred": ["对职级晋升的想法", "与分管领导的分歧"],
}

PLAN: dict[str, Any] = {
    "id": "T-k3x9p2",
    "cadre": "C-7k2m9q",
    "speaker": "P-01",
    "at": "2026-03-02T09:30",
    "talk_type": "occasion",
    "method": "direct_questions",
    "status": "draft",
    "place": "组织部三楼小会议室",
    "occasion": "post_change",
    "focus": ["对岗位调整的认识", "新岗位工作思路"],
    "preparations": ["查阅近三年年度考核材料", "听取分管领导意见"],
    "continues": "T-a1b2c3",
}

RECORD: dict[str, Any] = {
    "id": "T-k3x9p2",
    "cadre": "C-7k2m9q",
    "speaker": "P-01",
    "recorder": "P-03",
    "held_at": "2026-03-02T09:35",
    "topics": ["岗位调整", "家庭困难"],
    "follow_ups": None,
    "deferred": None,
}


def full_context(name: str, method: str = "direct_questions") -> dict[str, Any]:
    if name == "profile.md.j2":
        return {"cadre": PROFILE}
    if name == "record.md.j2":
        return {"record": RECORD, "plan": PLAN}
    return {
        "plan": {**PLAN, "method": method},
        "brief": BRIEF,
        "occasion_label": "岗位变动",
        "talk_type_label": "必谈事项谈话",
        "method": method,
        "continues": "T-a1b2c3",
    }


def minimal_context(name: str, method: str | None = "direct_questions") -> dict[str, Any]:
    if name == "profile.md.j2":
        return {"cadre": {"id": "C-7k2m9q", "name": "李娜"}}
    if name == "record.md.j2":
        return {"record": {"id": "T-k3x9p2"}, "plan": None}
    return {
        "plan": {"id": "T-k3x9p2", "method": method, "occasion": None},
        "brief": {},
        "occasion_label": None,
        "talk_type_label": "日常谈心谈话",
        "method": method,
        "continues": None,
    }


def assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into the output"
    assert "\n\n\n" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def numbered(text: str, heading: str) -> list[str]:
    """The numbered items under a heading, up to the next heading."""
    section = text.split(heading, 1)[1]
    section = re.split(r"\n#", section, maxsplit=1)[0]
    return re.findall(r"^\d+\. .+$", section, flags=re.MULTILINE)


# --------------------------------------------------------------------------- package templates


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", NAMES)
def test_templates_exist_with_explaining_comment(locale: str, name: str) -> None:
    source = (package_templates_dir() / locale / name).read_text(encoding="utf-8")
    assert source.startswith("{#")
    # The top comment documents the context variables for staff who edit the template.
    for variable in {"profile.md.j2": ["cadre"], "plan.md.j2": ["plan", "brief", "method"]}.get(
        name, ["record", "plan"]
    ):
        assert variable in source.split("#}", 1)[0]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", NAMES)
def test_full_cjk_context_renders_cleanly(locale: str, name: str) -> None:
    text = render(name, locale, full_context(name))
    assert_clean(text)
    assert text.startswith("# ")
    if name != "record.md.j2":
        assert "王晓明" in text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", NAMES)
def test_minimal_context_renders_cleanly(locale: str, name: str) -> None:
    assert_clean(render(name, locale, minimal_context(name)))


@pytest.mark.parametrize("locale", LOCALES)
def test_plan_without_method_or_anything_renders(locale: str) -> None:
    text = render("plan.md.j2", locale, {"plan": {}, "brief": {}})
    assert_clean(text)


@pytest.mark.parametrize("locale", LOCALES)
def test_plan_full_brief_is_laid_out(locale: str) -> None:
    text = render("plan.md.j2", locale, full_context("plan.md.j2"))
    for value in [
        "市财政局",
        "正科级",
        "会计学",
        "县财政局",
        "年度考核优秀",
        "通报批评",
        "开拓创新不够",
        "爱人长期两地分居",
        "父亲新近住院",
        "拟提任副局长",
        "查阅近三年年度考核材料",
        "对岗位调整的认识",
    ]:
        assert value in text
    # A list field becomes nested bullets, a string field stays on its line.
    assert "  - 业务精通\n  - 责任心强" in text
    assert "- 2013-01-01" in text
    assert "45" in text and "23" in text


@pytest.mark.parametrize("locale", LOCALES)
def test_plan_minimal_brief_omits_its_items(locale: str) -> None:
    text = render("plan.md.j2", locale, minimal_context("plan.md.j2"))
    full = render("plan.md.j2", locale, full_context("plan.md.j2"))
    assert "- " + ("姓名" if locale == "zh-CN" else "Name") not in text
    assert "2013-01-01" not in text
    assert len(text) < len(full)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("method", METHODS)
def test_each_method_has_guidance_and_four_to_six_questions(locale: str, method: str) -> None:
    text = render("plan.md.j2", locale, minimal_context("plan.md.j2", method))
    assert_clean(text)
    heading = "### 基本问题" if locale == "zh-CN" else "### General questions"
    assert 4 <= len(numbered(text, heading)) <= 6
    others = [render("plan.md.j2", locale, minimal_context("plan.md.j2", m)) for m in METHODS]
    assert len(set(others)) == len(METHODS), "each method renders its own guidance"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("occasion", OCCASIONS)
def test_each_default_occasion_adds_its_questions(locale: str, occasion: str) -> None:
    context = minimal_context("plan.md.j2")
    context["plan"] = {**context["plan"], "occasion": occasion}
    context["occasion_label"] = "某事由"
    text = render("plan.md.j2", locale, context)
    assert_clean(text)
    heading = "### 结合谈话事由" if locale == "zh-CN" else "### On the occasion"
    assert heading in text and "某事由" in text
    assert 2 <= len(numbered(text, heading)) <= 6


@pytest.mark.parametrize("locale", LOCALES)
def test_unknown_occasion_adds_no_questions(locale: str) -> None:
    context = minimal_context("plan.md.j2")
    context["plan"] = {**context["plan"], "occasion": "annual_review"}
    text = render("plan.md.j2", locale, context)
    assert "### 结合谈话事由" not in text and "### On the occasion" not in text


@pytest.mark.parametrize("locale", LOCALES)
def test_deferred_topics_are_taken_up_when_continuing(locale: str) -> None:
    text = render("plan.md.j2", locale, full_context("plan.md.j2"))
    assert "T-a1b2c3" in text
    assert "- 对职级晋升的想法" in text and "- 与分管领导的分歧" in text


@pytest.mark.parametrize("locale", LOCALES)
def test_record_topics_come_from_the_plan_focus(locale: str) -> None:
    text = render("record.md.j2", locale, {"record": RECORD, "plan": PLAN})
    assert "- 对岗位调整的认识\n- 新岗位工作思路" in text
    without_plan = render("record.md.j2", locale, {"record": RECORD, "plan": None})
    assert "- 岗位调整\n- 家庭困难" in without_plan


def test_record_zh_cn_has_the_four_sections() -> None:
    text = render("record.md.j2", "zh-CN", minimal_context("record.md.j2"))
    for heading in ["谈话对象反映的情况", "提出的困难和问题", "谈话人的引导和意见", "谈话结论"]:
        assert heading in text
    assert "<!--" in text


def test_profile_zh_cn_has_note_headings() -> None:
    text = render("profile.md.j2", "zh-CN", {"cadre": PROFILE})
    for heading in ["基本情况补充", "谈话注意事项", "其他"]:
        assert f"## {heading}" in text


def test_unknown_locale_falls_back_to_english() -> None:
    text = render("record.md.j2", "fr", minimal_context("record.md.j2"))
    assert text == render("record.md.j2", "en", minimal_context("record.md.j2"))


# --------------------------------------------------------------------------- workspace overrides


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_workspace_template_wins(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "zh-CN" / "plan.md.j2", "# 本单位谈话计划：{{ brief.name }}\n")
    text = render("plan.md.j2", "zh-CN", full_context("plan.md.j2"), workspace)
    assert text == "# 本单位谈话计划：王晓明\n"
    # Templates the workspace does not override still come from the package.
    record = render("record.md.j2", "zh-CN", minimal_context("record.md.j2"), workspace)
    assert record == render("record.md.j2", "zh-CN", minimal_context("record.md.j2"))


def test_workspace_locale_is_preferred_to_package_fallback(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "fr" / "record.md.j2", "# Compte rendu {{ record.id }}\n")
    text = render("record.md.j2", "fr", minimal_context("record.md.j2"), workspace)
    assert text == "# Compte rendu T-k3x9p2\n"


def test_missing_workspace_folder_is_fine(tmp_path: Path) -> None:
    text = render("record.md.j2", "en", minimal_context("record.md.j2"), tmp_path / "nowhere")
    assert text.startswith("# ")


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "zh-CN" / "plan.md.j2", "# 谈话计划\n\n{{ brief.name | }}\n王晓明\n")
    with pytest.raises(TemplateError) as caught:
        render("plan.md.j2", "zh-CN", full_context("plan.md.j2"), workspace)
    message = str(caught.value)
    assert "zh-CN/plan.md.j2" in message and "line 3" in message
    assert "\n" not in message
    assert caught.value.exit_code == 2 and isinstance(caught.value, TalkbookError)


def test_render_error_names_line_but_not_the_data(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    # KeyError's own message would quote the key: the cadre's name.
    write(workspace / "zh-CN" / "plan.md.j2", "# 谈话计划\n{{ {}.pop(brief.name) }}\n")
    with pytest.raises(TemplateError) as caught:
        render("plan.md.j2", "zh-CN", full_context("plan.md.j2"), workspace)
    message = str(caught.value)
    assert "zh-CN/plan.md.j2" in message and "line 2" in message
    assert "王晓明" not in message and "\n" not in message


def test_undefined_call_is_reported_with_line(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "en" / "record.md.j2", "a\nb\n{{ record.nothing() }}\n")
    with pytest.raises(TemplateError, match=r"en/record\.md\.j2, line 3"):
        render("record.md.j2", "en", minimal_context("record.md.j2"), workspace)


def test_missing_template_is_named() -> None:
    with pytest.raises(TemplateError, match=r"zh-CN/nothing\.md\.j2"):
        render("nothing.md.j2", "zh-CN", {})


def test_missing_include_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "zh-CN" / "plan.md.j2", "x\n{% include 'zh-CN/gone.md.j2' %}\n")
    with pytest.raises(TemplateError, match=r"gone\.md\.j2"):
        render("plan.md.j2", "zh-CN", {}, workspace)


def test_html_templates_are_escaped_markdown_ones_are_not(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "zh-CN" / "x.html.j2", "<p>{{ v }}</p>\n")
    write(workspace / "zh-CN" / "x.md.j2", "{{ v }}\n")
    context = {"v": "<b>王&李</b>"}
    assert render("x.html.j2", "zh-CN", context, workspace) == (
        "<p>&lt;b&gt;王&amp;李&lt;/b&gt;</p>\n"
    )
    assert render("x.md.j2", "zh-CN", context, workspace) == "<b>王&李</b>\n"


def test_none_never_prints(tmp_path: Path) -> None:
    workspace = tmp_path / "templates"
    write(workspace / "en" / "x.md.j2", "[{{ v }}][{{ missing }}][{{ d.a.b }}]\n")
    assert render("x.md.j2", "en", {"v": None, "d": {}}, workspace) == "[][][]\n"


# --------------------------------------------------------------------------- copying defaults


def test_copy_default_templates_copies_everything(tmp_path: Path) -> None:
    dest = tmp_path / "ws" / "templates"
    written = copy_default_templates(dest)
    for locale in LOCALES:
        for name in NAMES:
            target = dest / locale / name
            assert target in written
            source = package_templates_dir() / locale / name
            assert target.read_bytes() == source.read_bytes()


def test_copy_default_templates_never_overwrites(tmp_path: Path) -> None:
    dest = tmp_path / "templates"
    edited = write(dest / "zh-CN" / "plan.md.j2", "# 本单位自己的模板\n")
    written = copy_default_templates(dest)
    assert edited not in written
    assert edited.read_text(encoding="utf-8") == "# 本单位自己的模板\n"
    assert (dest / "zh-CN" / "record.md.j2") in written
    assert copy_default_templates(dest) == []


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ("  ", []),
        ("业务精通", ["业务精通"]),
        (["业务精通", None, "", "责任心强"], ["业务精通", "责任心强"]),
        (("甲", "乙"), ["甲", "乙"]),
        ([], []),
    ],
)
def test_as_list(value: Any, expected: list[str]) -> None:
    assert as_list(value) == expected


def test_join_or_and_bullets() -> None:
    assert join_or(["县财政局", None, "科员"], "　") == "县财政局　科员"
    assert join_or(None, "，", "无") == "无"
    assert bullets("一条") == "- 一条"
    assert bullets(["甲", "乙\n续"], indent=2) == "  - 甲\n  - 乙\n    续"
    assert bullets(None) == ""
