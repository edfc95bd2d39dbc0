"""One writer at a time (issue 7): every command that writes holds the workspace's write lock
from before it reads what it changes until after its commit; reads never wait."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from conftest import Setup
from talkbook.app import App
from talkbook.lock import WorkspaceBusy
from talkbook.models import parse


def talkbook(ws: Setup, who: str, *args: str, wait: str = "60") -> subprocess.Popen:
    env = {**os.environ, "TALKBOOK_LOCK_WAIT": wait}
    return subprocess.Popen(
        [sys.executable, "-m", "talkbook", "-w", str(ws.root), "-i", str(ws.keys[who]), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def git(ws: Setup, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ws.root), *args], capture_output=True, text=True, check=True
    ).stdout


def test_five_concurrent_events_leave_five_events(workspace: Setup, cadre: str) -> None:
    head = git(workspace, "rev-parse", "HEAD").strip()
    notes = [f"第{n}次嘉奖" for n in range(5)]
    processes = [
        talkbook(workspace, "P-01", "event", cadre, "reward", "--date", "2026-01-05", "--note", n)
        for n in notes
    ]
    for process in processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert git(workspace, "status", "--porcelain") == ""
    assert git(workspace, "rev-list", "--count", f"{head}..HEAD").strip() == "5"
    shown = subprocess.run(
        [sys.executable, "-m", "talkbook", "-w", str(workspace.root), "-i",
         str(workspace.keys["P-01"]), "cat", cadre],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    events = parse(shown).meta["events"]
    assert sorted(e["note"] for e in events) == sorted(notes)


def test_a_busy_workspace_says_who_holds_it_and_reads_go_on(workspace: Setup, cadre: str) -> None:
    app = App(workspace.root, workspace.keys["P-01"])
    with app.writing("talkbook edit"):
        app.actor()  # the holder is known by person once its key is
        started = time.monotonic()
        writer = talkbook(workspace, "P-01", "event", cadre, "reward", "--note", "x", wait="0.5")
        _out, err = writer.communicate(timeout=60)
        assert writer.returncode == 2
        busy = rf"talkbook: workspace busy: `talkbook edit` by P-01 \(pid {os.getpid()}\) "
        assert re.fullmatch(busy + r"since \d\d:\d\d; try again\n", err), err
        assert time.monotonic() - started < 30
        for read in (["show", cadre], ["validate"], ["list", "cadres"], ["cat", cadre]):
            reader = talkbook(workspace, "P-01", *read, wait="0")
            _out, err = reader.communicate(timeout=60)
            assert reader.returncode == 0, (read, err)
    # let go: the next writer goes through
    writer = talkbook(workspace, "P-01", "event", cadre, "reward", "--note", "y", wait="0")
    _out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert git(workspace, "status", "--porcelain") == ""


def test_a_forked_child_cannot_let_the_lock_go(tmp_path) -> None:
    """flock belongs to the open file, which a forked child shares: only the process that
    took the lock releases it (a child's release would let a second writer in)."""
    from talkbook import lock

    git_dir = tmp_path / ".git"
    git_dir.mkdir()
    held = lock.WriteLock.acquire(git_dir, "talkbook test", wait=0)
    pid = os.fork()
    if pid == 0:
        try:
            held.release()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        with pytest.raises(WorkspaceBusy):
            lock.WriteLock.acquire(git_dir, "talkbook second", wait=0)
    finally:
        held.release()
    lock.WriteLock.acquire(git_dir, "talkbook third", wait=0).release()
