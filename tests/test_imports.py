"""A warm read command imports only what it uses: no YAML library (it reads front matter from
the index, parses no text), no agent server, no editor or tempfile for the sweep of private
folders, no `secrets`; and its trust check starts no git process. A regression guard on what is
imported and run, not a timer: the bench times."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import Setup, modules_after
from talkbook import doctor, editor

# What a warm listing does not need, and what loaded it before (each cost a few ms per command)
NOT_FOR_A_WARM_READ = {
    "yaml": "models.py (python-frontmatter and PyYAML, for parsing text)",
    "frontmatter": "models.py",
    "talkbook.plainyaml": "models.py",
    "talkbook.yamlguard": "models.py's parse, split, field_lines and Document.text",
    "socketserver": "crypto/agent.py (the agent process's server)",
    "talkbook.crypto.agentd": "crypto/agent.py",
    "talkbook.editor": "doctor.py (the sweep before every command)",
    "tempfile": "doctor.py",
    "secrets": "models.new_id and crypto's key writing",
}


TEXT: dict = {"capture_output": True, "text": True}


@pytest.mark.parametrize("command", [["list", "talks"], ["list", "cadres"], ["due"]])
def test_a_warm_read_loads_no_yaml_agent_server_or_editor(
    workspace: Setup, cadre: str, command: list[str]
) -> None:
    modules_after(workspace, *command)  # the index is up to date after this one
    loaded = set(modules_after(workspace, *command))
    assert "talkbook.index" in loaded  # it did read, from the index
    assert {name: why for name, why in NOT_FOR_A_WARM_READ.items() if name in loaded} == {}


@pytest.mark.parametrize(
    "module", ["talkbook.models", "talkbook.yamlguard", "talkbook.crypto.agentd", "talkbook.cli"]
)
def test_each_module_imports_alone_without_a_cycle(module: str) -> None:
    """models calls yamlguard lazily and yamlguard imports models; agentd imports agent: each
    must import first, in a fresh process (a module-level cycle would fail for one of them)."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_models_alone_loads_no_yaml_library() -> None:
    script = (
        "import sys, talkbook.models; print(sorted({'yaml', 'frontmatter'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_sweep_looks_wherever_editor_and_tempfile_make_folders(monkeypatch, tmp_path) -> None:
    """doctor lists the folders itself (importing editor and tempfile would cost every command):
    it must cover editor's tmpfs candidates and the temp folder tempfile picks."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    parents = doctor.private_parents()
    assert set(editor.private_dir_candidates()) <= set(parents)
    assert Path(tempfile.gettempdir()) in parents
    assert Path(tempfile.gettempdir()) == temp


def test_a_dead_processs_folder_in_the_temp_folder_is_swept(monkeypatch, tmp_path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **TEXT)
    dead = gone.stdout.strip()  # the pid of a process that has ended
    left = temp / f"talkbook-{dead}-abc"
    left.mkdir()
    (left / "T-abcdef.md").write_text("decrypted", encoding="utf-8")
    assert left in doctor.sweep_private()
    assert not left.exists()


def test_a_verified_head_is_checked_without_starting_git(
    workspace: Setup, cadre: str, monkeypatch
) -> None:
    """trust.ensure before every read: HEAD is read from .git's files (gittrail.head), so a
    chain already verified up to it costs no git process."""
    from talkbook import trust

    trust.ensure(workspace.root)  # verified up to HEAD from here on
    started: list[object] = []

    def refuse(args, *rest, **kwargs):
        started.append(args)
        raise AssertionError("a git process was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    trust.ensure(workspace.root)
    assert started == []


@pytest.mark.parametrize("command", [["list", "talks"], ["list", "cadres"]])
def test_a_warm_listing_starts_no_process(workspace: Setup, cadre: str, command: list[str]) -> None:
    """HEAD comes from .git's files and no agent is started: subprocess is never imported
    (crypto/agent.py and gittrail.head import it where they start one)."""
    modules_after(workspace, *command)
    assert "subprocess" not in modules_after(workspace, *command)
