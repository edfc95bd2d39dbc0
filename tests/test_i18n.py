"""The language a person reads: complete zh_CN catalog, fresh .mo files, and the choice of
language (--lang, TALKBOOK_LANG, the locale variables, the workspace's locale)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conftest import ok, run
from talkbook import i18n

REPO = Path(__file__).resolve().parent.parent
LOCALE = REPO / "tools" / "talkbook" / "locale"
LOCALE_VARS = ("TALKBOOK_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def extracted() -> dict[tuple[str | None, str], str]:
    """Every message of the package, extracted the way `make messages` does (babel.cfg)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(REPO / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {}
    for filename, _line, message, _comments, context in extract_from_dir(
        REPO, method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found[(context, msgid)] = filename
    return found


def catalog(lang: str):
    from babel.messages.pofile import read_po

    with open(LOCALE / lang / "LC_MESSAGES" / "talkbook.po", "rb") as po:
        return read_po(po, locale=lang)


def test_every_message_has_a_reviewed_chinese_translation():
    zh = catalog("zh_CN")
    missing = []
    for (context, msgid), filename in sorted(extracted().items(), key=str):
        entry = zh.get(msgid, context=context)
        strings = entry.string if entry is not None else ""
        translated = all(strings) if isinstance(strings, tuple) else bool(strings)
        if entry is None or not translated or entry.fuzzy:
            missing.append(f"{filename}: {msgid!r}")
    assert not missing, "untranslated or fuzzy in zh_CN (run `make messages`, translate):\n" + (
        "\n".join(missing)
    )


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_committed_mo_is_compiled_from_the_po(lang):
    from babel.messages.mofile import write_mo

    compiled = io.BytesIO()
    write_mo(compiled, catalog(lang))
    committed = (LOCALE / lang / "LC_MESSAGES" / "talkbook.mo").read_bytes()
    assert committed == compiled.getvalue(), f"{lang}: .mo is stale: run `make messages`"


def test_translations_keep_the_placeholders_of_the_original():
    import string

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}

    for message in catalog("zh_CN"):
        if message.id and message.string and isinstance(message.id, str):
            assert fields(message.string) == fields(message.id), message.id


# -- choosing the language ---------------------------------------------------------------------


def test_choose_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no workspace here
    env = {"TALKBOOK_LANG": "en", "LANG": "zh_CN.UTF-8"}
    assert i18n.choose("zh-CN", env=env) == "zh-CN"
    assert i18n.choose(None, env=env) == "en"
    assert i18n.choose(None, env={"LANG": "zh_CN.UTF-8"}) == "zh-CN"
    assert i18n.choose(None, env={"LANG": "en_US.UTF-8", "LANGUAGE": "zh_CN:en"}) == "zh-CN"
    assert i18n.choose(None, env={"LC_ALL": "C", "LANGUAGE": "zh_CN"}) == "en"
    assert i18n.choose(None, env={}) == "en"


@pytest.mark.parametrize("value", ["C", "C.UTF-8", "POSIX", "fr_FR.UTF-8", ""])
def test_a_locale_without_zh_or_en_says_nothing(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no workspace here
    assert i18n.from_environment({"LANG": value}) is None
    assert i18n.choose(None, env={"LANG": value}) == "en"


def test_labels_translate_codes_and_keep_unknown_ones():
    try:
        i18n.use("zh-CN")
        assert i18n.label("status", "held") == "已谈话"
        assert i18n.label("reason", "follow_up") == "跟进事项"
        assert i18n.label("method", "consultation") == "征询意见"
        assert i18n.label("role", "approver") == "审批人"
        assert i18n.label("status", "no_such") == "no_such"
        assert i18n.label("nonsense", "held") == "held"
        i18n.use("en")
        assert i18n.label("status", "held") == "held"
        assert i18n.label("reason", "follow_up") == "follow_up"
    finally:
        i18n.use("en")


# -- the command line in a zh-CN workspace -----------------------------------------------------


@pytest.fixture
def speak(monkeypatch):
    """Set the locale variables (and nothing else) for one test."""

    def set_env(**values: str) -> None:
        for var in LOCALE_VARS:
            monkeypatch.delenv(var, raising=False)
        for var, value in values.items():
            monkeypatch.setenv(var, value)

    return set_env


def test_errors_and_help_follow_the_workspace_locale(workspace, speak):
    speak()
    result = workspace.as_("P-01", "cat", "T-zzzzzz")
    assert result.exit_code == 2
    assert "未知" in result.stderr and "T-zzzzzz" in result.stderr
    helped = run("-w", workspace.root, "--help")
    assert "谈心谈话" in helped.stdout and "用法" in helped.stdout
    sub = run("-w", workspace.root, "person", "add", "--help")
    assert "选项" in sub.stdout
    assert "Show this message and exit." not in sub.stdout
    assert i18n.language() == "en", "the process's language is put back after a command"


def test_lang_option_and_locale_variables_override_the_workspace(workspace, speak):
    speak(LANG="en_US.UTF-8")
    english = workspace.as_("P-01", "cat", "T-zzzzzz")
    assert "unknown talk: T-zzzzzz" in english.stderr
    speak(LANG="C")  # C names no language: the workspace's (zh-CN) decides
    assert "未知" in workspace.as_("P-01", "cat", "T-zzzzzz").stderr
    by_option = run(
        "--lang", "en", "-w", workspace.root, "-i", workspace.keys["P-01"], "cat", "T-zzzzzz"
    )
    assert "unknown talk: T-zzzzzz" in by_option.stderr
    speak(TALKBOOK_LANG="zh-CN", LANG="en_US.UTF-8")
    assert "用法" in run("--help").stdout
    assert "Usage:" in run("--help", "--lang", "en").stdout
    assert "Usage:" in run("--lang", "en", "--help").stdout


def test_usage_errors_are_translated_too(workspace, speak):
    speak(TALKBOOK_LANG="zh-CN")
    result = run("-w", workspace.root, "no-such-command")
    assert result.exit_code == 2
    assert "no-such-command" in result.stderr and "--help" in result.stderr
    assert "No such command" not in result.stderr


def test_data_is_never_a_format_string(workspace, speak, monkeypatch):
    monkeypatch.chdir(workspace.root)  # a path that is not there: named in the error
    for hostile in ("x{0}%s{name}.md", "{}%(x)s/y", "{__class__}.age", "T-{0}"):
        for lang in ("zh-CN", "en"):
            speak(TALKBOOK_LANG=lang)
            result = workspace.as_("P-01", "cat", hostile)
            assert result.exit_code == 2, result.stderr
            assert hostile in result.stderr
            assert "Traceback" not in result.stderr and "unexpected" not in result.stderr


def test_the_workspace_is_found_as_commands_find_it(workspace, speak, monkeypatch):
    speak()
    monkeypatch.chdir(workspace.root / "cadres")  # upwards from a subfolder
    assert "用法" in run("--help").stdout
    monkeypatch.chdir(workspace.root.parent)  # not in it: TALKBOOK_WORKSPACE names it
    assert "Usage:" in run("--help").stdout
    monkeypatch.setenv("TALKBOOK_WORKSPACE", str(workspace.root))
    assert "用法" in run("--help").stdout


def test_due_listing_and_plan_errors_read_in_chinese(workspace, cadre, speak):
    speak(TALKBOOK_LANG="zh-CN")
    ok(workspace.as_("P-01", "event", cadre, "post_change", "--date", "2026-02-01"))
    due = workspace.as_("P-01", "due", "--as-of", "2026-04-01")
    assert due.exit_code == 1, due.stderr
    header = due.stdout.splitlines()[0].split()
    assert header == ["干部", "姓名", "应谈原因", "谈话", "期限", "剩余天数", "逾期", "说明"]
    assert "岗位变动" in due.stdout and "是" in due.stdout
    assert "post_change" not in due.stdout and "yes" not in due.stdout
    assert "项逾期" in due.stderr and "overdue" not in due.stderr
    as_json = workspace.as_("P-01", "due", "--as-of", "2026-04-01", "--format", "json")
    assert '"reason": "post_change"' in as_json.stdout  # JSON keeps the codes

    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-04-02T09:30"))
    listed = ok(workspace.as_("P-01", "list", "talks"))
    assert listed.stdout.splitlines()[0].split()[:6] == [
        "编号",
        "干部",
        "姓名",
        "谈话人",
        "时间",
        "状态",
    ]
    assert "草稿" in listed.stdout and "draft" not in listed.stdout

    unknown = workspace.as_(
        "P-01", "plan", cadre, "--speaker", "无此人", "--at", "2026-04-02T09:30"
    )
    assert unknown.exit_code == 2 and "未知" in unknown.stderr and "unknown" not in unknown.stderr
    missing = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03")
    assert missing.exit_code != 0 and "谈话计划需要" in missing.stderr, missing.stderr
