"""Crash safety (issue 7): a command killed at any point leaves the workspace exactly as before
it or exactly as after it, once `talkbook doctor` has run; no plaintext stays in memory folders.

The kill harness runs each command as its own process with TALKBOOK_KILL_AT=<step>, which makes
fsutil.checkpoint send it SIGKILL there (journal written, temp file written, file in place,
before the commit, after the commit), plus kills at random moments. After each kill and one
`talkbook doctor`: every file decrypts and validates, HEAD and the tree are the old ones or the
old ones plus exactly the command's commit, `git status` is clean, and nothing named
talkbook-<pid>-* is left by the killed process in /dev/shm, the runtime folder or /tmp.
"""

from __future__ import annotations

import os
import pty
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import PROFILE_ZH, STAFF, make_key, run
from talkbook.editor import is_tmpfs

SHM = Path("/dev/shm")
START = "2026-03-01T08:00"  # plans are drafted, submitted and approved then
HELD = "2026-03-11T08:00"  # records are written then, and everything is validated then
STEPS = ["journal", "written", "commit", "committed"]  # every step of a one-file write
RECORD = """---
held_at: 2026-03-10T09:30
place: 三楼谈话室
topics: [岗位调整]
---

谈话对象表示服从组织安排。
"""


@dataclass
class Stage:
    """A workspace built once for the module, by the real command line in subprocesses."""

    root: Path
    home: Path
    runtime: Path
    keys: dict[str, Path] = field(default_factory=dict)
    public: dict[str, str] = field(default_factory=dict)
    cadre: str = ""
    submitted: str = ""
    approved: str = ""

    def env(self, now: str = START, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALKBOOK_")}
        for name in ("VISUAL", "EDITOR"):
            env.pop(name, None)
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_RUNTIME_DIR=str(self.runtime),
            TALKBOOK_NOW=now,
            TALKBOOK_LANG="en",  # the messages asserted are English ones
            GIT_AUTHOR_NAME="tester",
            GIT_AUTHOR_EMAIL="tester@example.invalid",
            GIT_COMMITTER_NAME="tester",
            GIT_COMMITTER_EMAIL="tester@example.invalid",
        )
        env.update(extra)
        return env

    def argv(self, who: str | None, *args: str) -> list[str]:
        identity = ["-i", str(self.keys[who])] if who else []
        return [sys.executable, "-m", "talkbook", "-w", str(self.root), *identity, *args]

    def talkbook(
        self, who: str | None, *args: str, kill_at: str | None = None, now: str = START, **kw
    ) -> subprocess.CompletedProcess:
        extra = {"TALKBOOK_KILL_AT": kill_at} if kill_at else {}
        return subprocess.run(
            self.argv(who, *args),
            env=self.env(now, **extra),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            **kw,
        )

    def ok(self, who: str | None, *args: str, now: str = START) -> str:
        """In this process (quicker): for building the stage, not for what is killed."""
        identity = ["-i", str(self.keys[who])] if who else []
        done = run("-w", self.root, *identity, *args, env=self.env(now))
        assert done.exit_code == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    if not SHM.is_dir() or not is_tmpfs(SHM):
        pytest.skip("no tmpfs at /dev/shm")
    base = tmp_path_factory.mktemp("crash")
    runtime = Path(tempfile.mkdtemp(prefix="tbtest-", dir=SHM))
    (base / "home").mkdir()
    stage = Stage(base / "ws", base / "home", runtime)
    keys = base / "keys"
    keys.mkdir(mode=0o700)
    for pid in [*STAFF, "P-05", "P-06"]:
        stage.keys[pid], stage.public[pid] = make_key(keys, pid)
    done = run("-i", stage.keys["P-01"], "init", stage.root, env=stage.env())
    assert done.exit_code == 0, done.stderr
    for pid, (name, roles) in STAFF.items():
        roles_args = [a for role in roles for a in ("--role", role)]
        stage.ok("P-01", "person", "add", pid, "--name", name, *roles_args,
                 "--key", stage.public[pid])  # fmt: skip
    profile = base / "profile.md"
    profile.write_text(PROFILE_ZH, encoding="utf-8")
    stage.cadre = stage.ok("P-01", "cadre", "new", "--from", str(profile))
    talks = []
    for _ in range(2):
        talk = stage.ok("P-01", "plan", stage.cadre, "--speaker", "P-03",
                        "--at", "2026-03-10T09:30")  # fmt: skip
        stage.ok("P-03", "submit", talk)
        talks.append(talk)
    stage.submitted, stage.approved = talks
    stage.ok("P-02", "approve", stage.approved, "--comment", "同意")
    try:
        yield stage
    finally:
        for leftover in runtime.iterdir():  # never leave plaintext behind, even on failure
            subprocess.run(["rm", "-rf", str(leftover)], check=False)
        runtime.rmdir()


# -- what "exactly before or after" means ---------------------------------------------------------
def git(stage: Stage, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(stage.root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def state(stage: Stage) -> tuple[str, str]:
    return git(stage, "rev-parse", "HEAD").strip(), git(stage, "ls-tree", "-r", "HEAD")


def leftovers(stage: Stage, pid: int) -> list[Path]:
    """Folders the killed process made in memory or temp folders, and temp files it left."""
    found = []
    for parent in {SHM, stage.runtime, Path(tempfile.gettempdir()), Path("/tmp")}:
        found += parent.glob(f"talkbook-{pid}-*")
        found += parent.glob(f"talkbook-agent-{pid}-*")
    for folder, dirs, files in os.walk(stage.root):
        dirs[:] = [d for d in dirs if d != ".git"]
        found += [Path(folder) / f for f in files if ".tmp-" in f]
    return found


def doctor_then_check(
    stage: Stage, before: tuple[str, str], pid: int, rekey_pending: bool = False
) -> str:
    """Run doctor once; assert the workspace is sound; 'before' or 'after'.

    Before a rekey, validate says files wait for it: that, and only that, is as before."""
    done = run("-w", stage.root, "doctor")
    assert done.exit_code == 0, done.stderr
    assert git(stage, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (stage.root / ".git" / "talkbook" / "journal.json").exists()
    assert leftovers(stage, pid) == []
    valid = run("-w", stage.root, "-i", stage.keys["P-01"], "validate", env={"TALKBOOK_NOW": HELD})
    assert "not readable" not in valid.stderr
    head, tree = state(stage)
    findings = valid.stdout.splitlines()
    if rekey_pending and head == before[0]:
        assert findings and all(f.endswith("run `talkbook rekey`") for f in findings), findings
    else:
        assert valid.exit_code == 0, valid.stdout + valid.stderr
    if head == before[0]:
        assert tree == before[1]
        return "before"
    assert git(stage, "rev-parse", "HEAD^").strip() == before[0], "more than one commit"
    return "after"


def killed(
    stage: Stage, step: str, who: str, *args: str, now: str = START, rekey_pending: bool = False
) -> str:
    """Run the command, killed at `step`; doctor; the outcome."""
    before = state(stage)
    process = subprocess.Popen(
        stage.argv(who, *args),
        env=stage.env(now, TALKBOOK_KILL_AT=step),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _out, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"not killed at {step}: {err}"
    return doctor_then_check(stage, before, process.pid, rekey_pending)


def steps_of(command: str) -> list[str]:
    if command == "rekey":  # many files: killed between them too
        return ["journal", "tmp", "written", "written#2", "commit", "committed"]
    if command == "event":  # a temp file beside the profile, not yet renamed over it
        return ["journal", "tmp", *STEPS[1:]]
    return STEPS


def current_text(stage: Stage, ref: str) -> str:
    done = run("-w", stage.root, "-i", stage.keys["P-01"], "cat", ref)
    assert done.exit_code == 0, done.stderr
    return done.stdout


def command_args(stage: Stage, command: str, tmp: Path) -> tuple[str, list[str], str]:
    """(who, arguments, clock) of each command under test."""
    edited = tmp / "edited.md"
    edited.write_text(current_text(stage, stage.cadre) + "\n补充一行。\n", encoding="utf-8")
    profile = tmp / "new.md"
    profile.write_text(PROFILE_ZH, encoding="utf-8")
    record = tmp / "record.md"
    record.write_text(RECORD, encoding="utf-8")
    c0 = stage.cadre
    return {
        "cadre new": ("P-01", ["cadre", "new", "--from", str(profile)], START),
        "event": ("P-01", ["event", c0, "reward", "--date", "2026-02-01", "--note", "嘉奖"], START),
        "edit": ("P-01", ["edit", c0, "--from", str(edited)], START),
        "approve": ("P-02", ["approve", stage.submitted, "--comment", "同意"], START),
        "record": ("P-03", ["record", stage.approved, "--from", str(record)], HELD),
        "rekey": ("P-01", ["rekey"], START),
        "person add": ("P-01", ["person", "add", "P-06", "--name", "孙八", "--role", "speaker",
                                "--key", stage.public["P-06"]], START),
    }[command]  # fmt: skip


@pytest.mark.parametrize(
    "command", ["cadre new", "event", "edit", "approve", "record", "rekey", "person add"]
)
def test_killed_at_every_step_is_rolled_back_or_finished(
    stage: Stage, command: str, tmp_path: Path
) -> None:
    who, args, now = command_args(stage, command, tmp_path)
    if command == "rekey":  # a new custodian: every file so far waits for `rekey`
        stage.ok("P-01", "person", "add", "P-05", "--name", "钱七", "--role", "custodian",
                 "--key", stage.public["P-05"])  # fmt: skip
    for step in steps_of(command):
        outcome = killed(stage, step, who, *args, now=now, rekey_pending=command == "rekey")
        assert outcome == ("after" if step == "committed" else "before"), step
    # done now: the command's change is there, in one commit
    assert git(stage, "log", "-1", "--format=%s").strip().split(":")[0]


def test_killed_at_random_moments(stage: Stage) -> None:
    rng = random.Random(7)
    c2 = stage.cadre
    outcomes = []
    for n in range(4):
        before = state(stage)
        args = ["event", c2, "reward", "--date", "2026-02-02", "--note", f"随机{n}"]
        process = subprocess.Popen(
            stage.argv("P-01", *args),
            env=stage.env(START),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.4, 1.4))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        outcomes.append(doctor_then_check(stage, before, process.pid))
    assert set(outcomes) <= {"before", "after"}


def test_a_write_refuses_while_work_is_half_done(stage: Stage) -> None:
    c2 = stage.cadre
    args = ["event", c2, "reward", "--date", "2026-02-03", "--note", "中断"]
    assert stage.talkbook("P-01", *args, kill_at="written").returncode == -signal.SIGKILL
    refused = stage.talkbook("P-01", *args)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "talkbook: an interrupted `talkbook event` left work half-done; run `talkbook doctor`"
    ]
    # reads go on
    assert stage.talkbook("P-01", "show", c2).returncode == 0
    doctor = stage.talkbook(None, "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stdout.startswith("rolled back the interrupted `talkbook event` (pid ")
    assert f"cadres/{c2}.md.age as HEAD has it" in doctor.stdout
    assert stage.talkbook(None, "doctor").stdout == (
        "nothing to recover: no write was left half-done\n"
    )
    assert stage.talkbook("P-01", *args).returncode == 0


def test_a_file_written_but_never_committed_is_not_stranded(stage: Stage, tmp_path: Path) -> None:
    """A retry of the same edit commits it, even without a journal (made by an older version)."""
    c2 = stage.cadre
    edited = tmp_path / "edited.md"
    edited.write_text(current_text(stage, c2) + "\n又补充一行。\n", encoding="utf-8")
    args = ["edit", c2, "--from", str(edited)]
    head = state(stage)[0]
    assert stage.talkbook("P-01", *args, kill_at="written").returncode == -signal.SIGKILL
    (stage.root / ".git" / "talkbook" / "journal.json").unlink()
    assert git(stage, "status", "--porcelain") == f" M cadres/{c2}.md.age\n"
    again = stage.talkbook("P-01", *args)
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"{c2}: saved\n"
    assert git(stage, "status", "--porcelain") == ""
    assert git(stage, "rev-parse", "HEAD^").strip() == head


def test_a_stray_copy_of_the_committed_text_goes_back_to_head(stage: Stage, tmp_path: Path) -> None:
    """Same text as HEAD, other ciphertext in the working tree: "unchanged", and clean."""
    from talkbook.crypto import Keyring, decrypt, encrypt

    c2 = stage.cadre
    path = stage.root / "cadres" / f"{c2}.md.age"
    text = decrypt(path.read_bytes(), Keyring.from_file(stage.keys["P-01"]))
    path.write_bytes(encrypt(text, [stage.public["P-01"]]))
    source = tmp_path / "same.md"
    source.write_bytes(text)
    again = stage.talkbook("P-01", "edit", c2, "--from", str(source))
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"{c2}: unchanged\n"
    assert git(stage, "status", "--porcelain") == ""


# -- private folders of dead processes -----------------------------------------------------------
def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_killed_editor_session_is_wiped_by_the_next_command(stage: Stage, tmp_path: Path) -> None:
    """The editor kills talkbook itself (as kill -9 would): the decrypted copy stays in memory
    until the next command of this user, whatever it is, wipes it."""
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\ncp "$1" "$1.seen"\nkill -9 "$PPID"\n', encoding="utf-8")
    editor.chmod(0o700)
    primary, replica = pty.openpty()  # a terminal, as a person editing has
    try:
        process = subprocess.Popen(
            stage.argv("P-01", "edit", stage.cadre),
            env=stage.env(START, EDITOR=str(editor)),
            stdin=replica,
            stdout=replica,
            stderr=replica,
        )
        process.wait(timeout=60)
    finally:
        os.close(replica)
        os.close(primary)
    assert process.returncode == -signal.SIGKILL
    left = list(stage.runtime.glob(f"talkbook-{process.pid}-*"))
    assert len(left) == 1 and any(left[0].iterdir()), "the copy was where the editor saw it"
    assert stage.talkbook("P-01", "list", "cadres").returncode == 0
    assert list(stage.runtime.glob("talkbook-*")) == []
    assert git(stage, "status", "--porcelain") == ""


def test_folders_of_dead_processes_are_swept_and_live_ones_kept(stage: Stage) -> None:
    dead = dead_pid()
    edit = stage.runtime / f"talkbook-{dead}-abcd1234"
    agent = stage.runtime / f"talkbook-agent-{dead}-efgh5678"
    alive = stage.runtime / f"talkbook-{os.getpid()}-live0000"
    other = stage.runtime / "talkbook-notapid"
    for folder in (edit, agent, alive, other):
        folder.mkdir(mode=0o700)
        (folder / "talkbook.md").write_text("张伟", encoding="utf-8")
    try:
        done = stage.talkbook(None, "doctor")
        assert done.returncode == 0, done.stderr
        assert "wiped 2 private folder(s)" in done.stdout
        assert not edit.exists() and not agent.exists()
        assert alive.exists() and other.exists()
    finally:
        for folder in (alive, other):
            subprocess.run(["rm", "-rf", str(folder)], check=False)
