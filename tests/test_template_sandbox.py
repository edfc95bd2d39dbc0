"""Templates are data: a hostile template cannot run code, read files outside the workspace's
templates folder, follow a symlink, or make an error message quote the data being rendered."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import Setup
from talkbook.errors import TemplateError
from talkbook.templating import render

PLAN = "templates/zh-CN/plan.md.j2"
SECRET = "机密值-7f3a"


def head(ws: Setup) -> str:
    done = subprocess.run(
        ["git", "-C", str(ws.root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def plans(ws: Setup) -> list[Path]:
    return list(ws.root.rglob("plan.md.age"))


def draft(ws: Setup, cadre: str):
    return ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30")


def assert_refused(ws: Setup, cadre: str, *expected: str) -> str:
    """`talkbook plan` exits 2 with one stderr line naming the template; nothing written."""
    before = head(ws)
    result = draft(ws, cadre)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in ("template zh-CN/plan.md.j2", *expected):
        assert part in lines[0]
    assert plans(ws) == [] and head(ws) == before
    return result.output


# --------------------------------------------------------------------------- end to end


def test_template_cannot_run_commands(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = f"touch {marker}; id"
    attack = "{{ cycler.__init__.__globals__.os.popen('" + command + "').read() }}\n"
    template = workspace.path(PLAN)
    template.write_text(template.read_text(encoding="utf-8") + attack, encoding="utf-8")
    line = len(template.read_text(encoding="utf-8").splitlines())
    output = assert_refused(workspace, cadre, f"line {line}", "unsafe")
    assert not marker.exists()
    assert "uid=" not in output


def test_template_symlinked_to_a_secret_is_refused(workspace: Setup, cadre: str) -> None:
    secret = workspace.keys["P-01"].read_text(encoding="utf-8").strip().splitlines()[-1]
    template = workspace.path(PLAN)
    template.unlink()
    template.symlink_to(workspace.keys["P-01"])
    output = assert_refused(workspace, cadre, "not a regular file")
    assert secret not in output
    for path in workspace.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("tag", ["include", "extends"])
def test_template_including_outside_is_refused(workspace: Setup, cadre: str, tag: str) -> None:
    outside = workspace.root.parent / "x"
    outside.write_text("# 外部模板\n", encoding="utf-8")
    workspace.path(PLAN).write_text(f"# 计划\n{{% {tag} '../../x' %}}\n", encoding="utf-8")
    assert_refused(workspace, cadre, "line 2", "template ../../x is not a regular file")


# --------------------------------------------------------------------------- the renderer


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    return write(tmp_path / "secret.txt", SECRET + "\n")


def refusal(templates: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        render("plan.md.j2", "zh-CN", {}, templates)
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message
    return message


@pytest.mark.parametrize("tag", ["include {}", "extends {}", "import {} as parts"])
@pytest.mark.parametrize("target", ["link", "folder", "outside", "absolute"])
def test_included_template_must_be_a_regular_file_inside(
    tmp_path: Path, secret_file: Path, tag: str, target: str
) -> None:
    templates = tmp_path / "templates"
    write(templates / "zh-CN" / "ok.md.j2", "fine\n")
    (templates / "zh-CN" / "link.md.j2").symlink_to(secret_file)
    (templates / "zh-CN" / "folder").symlink_to(secret_file.parent)
    name = {
        "link": "zh-CN/link.md.j2",
        "folder": "zh-CN/folder/secret.txt",
        "outside": "../secret.txt",
        "absolute": str(secret_file),
    }[target]
    statement = tag.format(repr(name))
    write(templates / "zh-CN" / "plan.md.j2", f"# 计划\n\n{{% {statement} %}}\n")
    message = refusal(templates)
    assert message == (
        f"template zh-CN/plan.md.j2, line 3: template {name} is not a regular file inside the"
        " workspace"
    )


def test_symlinked_templates_folder_is_refused(tmp_path: Path, secret_file: Path) -> None:
    write(secret_file.parent / "zh-CN" / "plan.md.j2", "# 计划 {{ 1 }}\n")
    (tmp_path / "templates").symlink_to(secret_file.parent)
    message = refusal(tmp_path / "templates")
    assert message == "template zh-CN/plan.md.j2: not a regular file inside the workspace"


def test_folder_or_fifo_is_not_a_template(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "zh-CN" / "plan.md.j2").mkdir(parents=True)
    assert "not a regular file" in refusal(templates)
    os.mkfifo(templates / "zh-CN" / "record.md.j2")
    with pytest.raises(TemplateError, match="not a regular file"):
        render("record.md.j2", "zh-CN", {}, templates)


def test_edits_are_noticed_and_a_swap_to_a_symlink_is_refused(
    tmp_path: Path, secret_file: Path
) -> None:
    template = write(tmp_path / "templates" / "zh-CN" / "plan.md.j2", "v1\n")
    assert render("plan.md.j2", "zh-CN", {}, tmp_path / "templates") == "v1\n"
    write(template, "version 2\n")
    assert render("plan.md.j2", "zh-CN", {}, tmp_path / "templates") == "version 2\n"
    template.unlink()
    template.symlink_to(secret_file)
    assert "not a regular file" in refusal(tmp_path / "templates")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x\n{{ cycler.__init__.__globals__ }}\n", "attribute '__init__' of 'type' object"),
        ("x\n{{ joiner|attr('__init__') }}\n", "attribute '__init__' of 'type' object"),
        ("x\n{{ ''.__class__.__mro__ }}\n", "attribute '__class__' of 'str' object"),
        ("x\n{{ '{0.__class__}'.format(1) }}\n", "attribute '__class__' of 'int' object"),
        ("x\n{{ plan.update({'id': 1}) }}\n", "attribute 'update' of 'dict' object"),
        ("x\n{{ plan.focus.append(1) }}\n", "attribute 'append' of 'list' object"),
    ],
)
def test_sandbox_violation_is_one_line_with_the_line(
    tmp_path: Path, source: str, expected: str
) -> None:
    write(tmp_path / "zh-CN" / "plan.md.j2", source)
    with pytest.raises(TemplateError) as caught:
        render("plan.md.j2", "zh-CN", {"plan": {"focus": []}}, tmp_path)
    assert str(caught.value) == f"template zh-CN/plan.md.j2, line 2: access to {expected} is unsafe"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "source",
    [
        # The unsafe attribute's name is the data: it is not named.
        "{% set ns = namespace({brief.private: 1}) %}\n{{ ns[brief.private] }}\n",
        # The missing key is the data: Jinja's own message would quote it.
        "x\n{{ {}[brief.private] + 1 }}\n",
        "x\n{{ {}[brief.private]() }}\n",
    ],
)
def test_errors_never_quote_the_data(tmp_path: Path, source: str) -> None:
    write(tmp_path / "zh-CN" / "plan.md.j2", source)
    with pytest.raises(TemplateError) as caught:
        render("plan.md.j2", "zh-CN", {"brief": {"private": "_" + SECRET}}, tmp_path)
    message = str(caught.value)
    assert message.startswith("template zh-CN/plan.md.j2, line 2: ")
    assert SECRET not in message and "\n" not in message
