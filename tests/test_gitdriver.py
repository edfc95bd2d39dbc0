"""Git as the audit trail: the decrypting diff driver, the pre-commit hook, and rekey."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import PROFILE_ZH, Setup, git_log, make_key

PLACEHOLDER = "[talkbook: encrypted; not readable with your identity]"


def git(root: Path, *args: str, identity: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TALKBOOK_IDENTITY", None)
    if identity is not None:
        env["TALKBOOK_IDENTITY"] = str(identity)
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=env)


def commits(root: Path) -> int:
    return len(git_log(root, "--format=%H").splitlines())


@pytest.fixture
def edited(workspace: Setup, cadre: str) -> str:
    """The cadre's profile in two commits: created, then an event logged on it."""
    result = workspace.as_(
        "P-01",
        "event",
        cadre,
        "post_change",
        "--date",
        "2026-02-01",
        "--note",
        "调任市财政局副局长",
    )
    assert result.exit_code == 0, result.stderr
    return cadre


# -- the diff driver ------------------------------------------------------------------------
def test_key_holder_sees_decrypted_history(workspace: Setup, edited: str) -> None:
    key = workspace.keys["P-01"]
    log = git(workspace.root, "log", "-p", identity=key)
    assert log.returncode == 0, log.stderr
    assert "+name: 张伟" in log.stdout
    assert "+family: 爱人在市人民医院住院治疗" in log.stdout
    assert "+  note: 调任市财政局副局长" in log.stdout
    assert PLACEHOLDER not in log.stdout

    diff = git(workspace.root, "diff", "HEAD~1", identity=key)
    assert diff.returncode == 0, diff.stderr
    assert f"cadres/{edited}.md.age" in diff.stdout
    changed = [line for line in diff.stdout.splitlines() if line.startswith(("+", "-"))]
    assert "+  note: 调任市财政局副局长" in changed
    assert "+  occasion: post_change" in changed
    assert not [line for line in changed if "张伟" in line]  # the name did not change


@pytest.mark.parametrize("who", ["outsider", "P-03", None])
def test_others_see_the_placeholder(workspace: Setup, edited: str, who: str | None) -> None:
    key = workspace.keys[who] if who else None
    for args in (("log", "-p"), ("show", "HEAD~1"), ("diff", "HEAD~2")):
        shown = git(workspace.root, *args, identity=key)
        assert shown.returncode == 0, shown.stderr
        assert f"+{PLACEHOLDER}" in shown.stdout
        for secret in ("张伟", "市发展和改革委员会", "调任市财政局副局长", "爱人"):
            assert secret not in shown.stdout + shown.stderr
    # Placeholder against placeholder: an edit shows as no textual change at all.
    assert git(workspace.root, "diff", "HEAD~1", identity=key).stdout == ""


def test_decrypted_text_is_never_cached(workspace: Setup, edited: str) -> None:
    assert git(workspace.root, "log", "-p", identity=workspace.keys["P-01"]).returncode == 0
    config = git(workspace.root, "config", "--get-regexp", r"^diff\.talkbook\.")
    assert "textconv" in config.stdout
    assert "cachetextconv" not in config.stdout
    refs = git(workspace.root, "for-each-ref", "--format=%(refname)").stdout.splitlines()
    assert refs == ["refs/heads/main"]
    assert not (workspace.root / ".git" / "refs" / "notes").exists()
    packed = workspace.root / ".git" / "packed-refs"
    assert not packed.exists() or "notes" not in packed.read_text()


# -- the pre-commit hook --------------------------------------------------------------------
def _hand_commit(root: Path, rel: str, content: bytes) -> subprocess.CompletedProcess:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert git(root, "add", rel).returncode == 0
    return git(root, "commit", "-m", "hand-made")


@pytest.mark.parametrize(
    "rel",
    [
        "cadres/C-k3x9p2.md",
        "cadres/C-k3x9p2.md.age",
        "talks/2026/T-k3x9p2/plan.md.age",
        "talks/2026/T-k3x9p2/记录.txt",
    ],
)
def test_hook_refuses_plaintext(workspace: Setup, rel: str) -> None:
    before = commits(workspace.root)
    result = _hand_commit(workspace.root, rel, PROFILE_ZH.encode("utf-8"))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert rel in output, output
    assert "plaintext" in output
    assert "张伟" not in output and "Traceback" not in output
    assert commits(workspace.root) == before


def test_hook_lets_ordinary_commits_through(workspace: Setup, cadre: str) -> None:
    before = commits(workspace.root)
    readme = workspace.path("cadres/README.md")
    readme.write_text(readme.read_text(encoding="utf-8") + "\n档案由组织部干部科保管。\n")
    assert git(workspace.root, "add", "cadres/README.md").returncode == 0
    result = git(workspace.root, "commit", "-m", "docs: who keeps the files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert commits(workspace.root) == before + 1


def test_hook_accepts_talkbooks_own_ciphertext(workspace: Setup, cadre: str) -> None:
    """A file talkbook wrote, committed by hand (say after a merge), passes the hook."""
    path = workspace.path(f"cadres/{cadre}.md.age")
    copy = workspace.path("cadres/C-k3x9p2.md.age")
    text = workspace.as_("P-01", "cat", cadre).stdout.replace(cadre, "C-k3x9p2")
    created = workspace.as_("P-01", "cadre", "new", "--from", "-", input=text)
    assert created.exit_code == 0, created.stderr
    # undo the tool's commit, keep the file, and commit it by hand
    assert git(workspace.root, "reset", "--soft", "HEAD~1").returncode == 0
    result = git(workspace.root, "commit", "-m", "hand-made", identity=workspace.keys["P-01"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert path.exists() and copy.exists()


# -- rekey ----------------------------------------------------------------------------------
def test_rekey_after_a_new_custodian(workspace: Setup, cadre: str, keydir: Path) -> None:
    second = workspace.as_("P-01", "cadre", "new", "--from", "-",
                           input=PROFILE_ZH.replace("张伟", "黄晓明"))  # fmt: skip
    assert second.exit_code == 0, second.stderr
    profiles = [cadre, second.stdout.splitlines()[-1]]
    workspace.keys["P-05"], workspace.public["P-05"] = make_key(keydir, "P-05")
    added = workspace.as_("P-01", "person", "add", "P-05", "--name", "何静",
                          "--role", "custodian", "--key", workspace.public["P-05"])  # fmt: skip
    assert added.exit_code == 0, added.stderr
    for cadre_id in profiles:
        refused = workspace.as_("P-05", "cat", cadre_id)
        assert refused.exit_code == 2 and "none of your keys" in refused.stderr

    before = commits(workspace.root)
    result = workspace.as_("P-01", "rekey")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "rekeyed 2 file(s)\n"
    assert commits(workspace.root) == before + 1
    assert git_log(workspace.root, "-1", "--format=%an|%s") == "王芳|rekey: 2 files\n"
    changed = git_log(workspace.root, "-1", "--name-only", "--format=").split()
    assert sorted(changed) == sorted(f"cadres/{c}.md.age" for c in profiles)
    for cadre_id, name in zip(profiles, ["张伟", "黄晓明"], strict=True):
        for reader in ("P-05", "P-01"):
            shown = workspace.as_(reader, "cat", cadre_id)
            assert shown.exit_code == 0 and f"name: {name}\n" in shown.stdout

    files = {p: p.read_bytes() for p in workspace.path("cadres").glob("*.age")}
    again = workspace.as_("P-01", "rekey")
    assert again.exit_code == 0, again.stderr
    assert again.stdout == "rekeyed 0 file(s)\n"
    assert commits(workspace.root) == before + 1
    assert {p: p.read_bytes() for p in files} == files


def test_rekey_touches_only_files_whose_readers_changed(
    workspace: Setup, cadre: str, keydir: Path
) -> None:
    planned = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30")
    assert planned.exit_code == 0, planned.stderr
    talk = planned.stdout.splitlines()[-1]
    plan = workspace.path(f"talks/2026/{talk}/plan.md.age")
    profile = workspace.path(f"cadres/{cadre}.md.age")
    profile_bytes, plan_bytes = profile.read_bytes(), plan.read_bytes()

    # A second approver reads plans, not profiles.
    workspace.keys["P-06"], workspace.public["P-06"] = make_key(keydir, "P-06")
    added = workspace.as_("P-01", "person", "add", "P-06", "--name", "郑国强",
                          "--role", "approver", "--key", workspace.public["P-06"])  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert workspace.as_("P-06", "cat", talk).exit_code == 2

    result = workspace.as_("P-01", "rekey")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "rekeyed 1 file(s)\n"
    assert git_log(workspace.root, "-1", "--format=%s") == "rekey: 1 file\n"
    assert profile.read_bytes() == profile_bytes
    assert plan.read_bytes() != plan_bytes
    assert workspace.as_("P-06", "cat", talk).exit_code == 0
    assert workspace.as_("P-06", "cat", cadre).exit_code == 2


def test_rekey_is_for_custodians(workspace: Setup, cadre: str) -> None:
    before = commits(workspace.root)
    result = workspace.as_("P-02", "rekey")
    assert result.exit_code == 2
    assert result.stderr == "talkbook: P-02 is not a custodian\n"
    assert commits(workspace.root) == before


def test_tool_commits_leave_what_the_user_staged_alone(workspace, cadre) -> None:
    """A command commits exactly its own file, even when the user has something staged."""

    readme = workspace.path("cadres/README.md")
    readme.write_text(readme.read_text(encoding="utf-8") + "\n本地说明。\n", encoding="utf-8")
    subprocess.run(["git", "-C", str(workspace.root), "add", "cadres/README.md"], check=True)
    result = workspace.as_("P-01", "event", cadre, "reward", "--date", "2026-11-01")
    assert result.exit_code == 0, result.stderr
    changed = git_log(workspace.root, "-1", "--name-only", "--format=")
    assert changed == f"cadres/{cadre}.md.age\n"
    staged = subprocess.run(
        ["git", "-C", str(workspace.root), "diff", "--cached", "--name-only"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert staged == "cadres/README.md\n"


def test_person_remove_then_rekey_takes_them_off(workspace: Setup, cadre: str) -> None:
    """The approver leaves: after remove + rekey the plan is no longer encrypted to them."""
    planned = workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30")
    assert planned.exit_code == 0, planned.stderr
    talk = planned.stdout.splitlines()[-1]
    assert workspace.as_("P-02", "cat", talk).exit_code == 0

    refused = workspace.as_("P-03", "person", "remove", "P-02")
    assert refused.exit_code == 2 and refused.stderr == "talkbook: P-03 is not a custodian\n"
    last = workspace.as_("P-01", "person", "remove", "P-01")
    assert last.exit_code == 2 and "last custodian" in last.stderr

    removed = workspace.as_("P-01", "person", "remove", "P-02")
    assert removed.exit_code == 0, removed.stderr
    assert git_log(workspace.root, "-1", "--format=%an|%s") == "王芳|person P-02: removed\n"
    assert workspace.path("talkbook.toml").read_text(encoding="utf-8").count("left = ") == 1
    assert workspace.as_("P-02", "submit", talk).stderr.startswith("talkbook: your identity")
    rekeyed = workspace.as_("P-01", "rekey")
    assert rekeyed.stdout == "rekeyed 1 file(s)\n"
    gone = workspace.as_("P-02", "cat", talk)
    assert gone.exit_code == 2 and "none of your keys" in gone.stderr
    assert workspace.as_("P-03", "cat", talk).exit_code == 0
    assert workspace.as_("P-01", "validate").exit_code == 0
