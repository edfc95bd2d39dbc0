"""Shared fixtures: throwaway homes, keys and workspaces under tmp_path; never the real home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from talkbook.cli import cli
from talkbook.crypto import generate_key_file

# The staff of the test workspace: custodian, approver (a leader), speaker, recorder, and an
# outsider who holds a key but is nobody's recipient.
STAFF = {
    "P-01": ("王芳", ["custodian"]),
    "P-02": ("陈建国", ["approver"]),
    "P-03": ("李明", ["speaker", "recorder"]),
    "P-04": ("赵丽", ["recorder"]),
}

PROFILE_ZH = """---
name: 张伟
gender: 男
birth_date: 1968-05-12
unit: 市发展和改革委员会
post: 副主任
rank: 副处级
roles: [leadership_team]
education: 研究生
major: 区域经济学
career_start: 1990-07-01
personality: introverted
strengths: [业务扎实, 作风严谨]
weaknesses: 与基层沟通偏少
difficulties: [爱人长期生病，家庭负担较重]
family: 爱人在市人民医院住院治疗
private: 曾因家庭矛盾情绪低落
---

谈话时注意语气，不宜追问家庭细节。
"""


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """No test reads or writes the real home, config folder or git identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for var in ("TALKBOOK_IDENTITY", "TALKBOOK_WORKSPACE", "TALKBOOK_NOW", "VISUAL", "EDITOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TALKBOOK_AGENT", "0")  # no passphrase agent unless a test starts one
    monkeypatch.setenv("TALKBOOK_LANG", "en")  # English whatever LANG is; test_i18n chooses
    monkeypatch.setenv("GIT_AUTHOR_NAME", "tester")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tester@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "tester")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tester@example.invalid")
    return home


class Clock:
    """Sets TALKBOOK_NOW, the clock App.now and the git trail read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def set(self, when: str) -> None:
        self._monkeypatch.setenv("TALKBOOK_NOW", when)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.stderr
    return result


def last_line(result: Result) -> str:
    """The id a creating command prints alone on its last line."""
    return ok(result).stdout.strip().splitlines()[-1]


def run(*args: str, input: str | bytes | None = None, env: dict | None = None) -> Result:
    """Run the real command line (the same exit point users hit); stdout and stderr apart."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)


@dataclass
class Setup:
    root: Path
    keys: dict[str, Path] = field(default_factory=dict)
    public: dict[str, str] = field(default_factory=dict)

    def as_(self, pid: str, *args: str, **kwargs) -> Result:
        """Run a command in this workspace with a person's identity."""
        return run("-w", self.root, "-i", self.keys[pid], *args, **kwargs)

    def path(self, rel: str) -> Path:
        return self.root / rel


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    path = folder / f"{name}.txt"
    return path, generate_key_file(path)


def modules_after(ws: Setup, *args: str) -> list[str]:
    """The modules a fresh process imported to run `talkbook ARGS` (as the console command
    runs it: printed by an exit handler, since main() ends the process itself)."""
    script = (
        "import atexit, json, sys\n"
        "from talkbook.cli import main\n"
        "sys.argv = ['talkbook', *json.loads(sys.argv[1])]\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
        "main()\n"
    )
    argv = ["-w", str(ws.root), "-i", str(ws.keys["P-01"]), *args]
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argv)], capture_output=True, text=True
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.fixture
def keydir(tmp_path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def workspace(tmp_path, keydir) -> Setup:
    """A zh-CN workspace with the four staff people and an outsider key."""
    root = tmp_path / "ws"
    setup = Setup(root)
    for pid in [*STAFF, "outsider"]:
        setup.keys[pid], setup.public[pid] = make_key(keydir, pid)
    assert run("-i", setup.keys["P-01"], "init", root, "--org", "市委组织部").exit_code == 0
    for pid, (name, roles) in STAFF.items():
        role_args = [a for r in roles for a in ("--role", r)]
        result = run(
            "-w", root, "-i", setup.keys["P-01"], "person", "add", pid, "--name", name,
            *role_args, "--key", setup.public[pid],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    return setup


@pytest.fixture
def cadre(workspace, tmp_path) -> str:
    """One profile with Chinese content, added by the custodian; returns its id."""
    source = tmp_path / "profile.md"
    source.write_text(PROFILE_ZH, encoding="utf-8")
    result = workspace.as_("P-01", "cadre", "new", "--from", source)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def git_log(root: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", "-C", str(root), "log", *args], capture_output=True, text=True, check=True
    ).stdout


def age_cli() -> str | None:
    """The age command-line tool; in CI its absence is a failure, not a skip."""
    found = shutil.which("age")
    if found is None and os.environ.get("CI"):
        pytest.fail("the age command-line tool is missing in CI (apt-get install age)")
    if found is None:
        pytest.skip("age command-line tool not installed")
    return found
