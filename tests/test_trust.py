"""Chain of custody and signed acts, tried as a hostile speaker with plain git would."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pyrage
import pytest
import tomlkit

from conftest import PROFILE_ZH, Setup, age_cli, git_log, make_key, ok, run
from talkbook.crypto import generate_identity_file


def git(root: Path, *args: str, env: dict | None = None) -> str:
    import os

    done = subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def commit_as(root: Path, message: str, *, key: Path | None = None, author: str = "李明") -> str:
    """A hand-made commit of everything changed, under any author name, maybe signed."""
    env = {"GIT_AUTHOR_NAME": author, "GIT_COMMITTER_NAME": author}
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"] if key else []
    git(root, "add", "-A")
    git(root, *signing, "commit", "--no-verify", "-q", *(["-S"] if key else []), "-m", message,
        env=env)  # fmt: skip
    return git(root, "rev-parse", "HEAD").strip()


def one_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def add_key(root: Path, pid: str, key: str) -> None:
    config = tomlkit.parse((root / "talkbook.toml").read_text(encoding="utf-8"))
    config["people"][pid]["keys"].append(key)
    (root / "talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")


def state(root: Path) -> tuple[str, str]:
    return git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain")


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.md"
    path.write_text(PROFILE_ZH, encoding="utf-8")
    return path


# -- signed acts ------------------------------------------------------------------------------
def test_every_commit_is_signed_and_age_reads_with_the_key(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30"))
    talk_id = talk.stdout.splitlines()[-1]
    ok(workspace.as_("P-03", "submit", talk_id))
    ok(workspace.as_("P-02", "approve", talk_id, "--comment", "同意"))
    statuses = git_log(workspace.root, "--format=%G?").split()
    assert statuses and set(statuses) == {"G"}, statuses
    shown = git_log(workspace.root, "-1", "--show-signature", "--format=%s")
    assert 'Good "git" signature for P-02' in shown

    age = age_cli()
    profile = workspace.path(f"cadres/{cadre}.md.age")
    out = subprocess.run([age, "-d", "-i", workspace.keys["P-01"], profile], capture_output=True)
    assert out.returncode == 0 and "张伟" in out.stdout.decode()


def test_a_read_only_identity_is_told_how_to_act(workspace: Setup, profile: Path, keydir) -> None:
    old = keydir / "old.txt"
    public = generate_identity_file(old)
    add_key(workspace.root, "P-01", public)  # the custodian's own, uncommitted edit
    message = one_error(run("-w", workspace.root, "-i", old, "cadre", "new", "--from", profile))
    assert "cannot sign" in message and "talkbook keygen" in message


# -- the law: talkbook.toml and templates --------------------------------------------------
def test_own_key_added_to_a_custodian_is_refused(
    workspace: Setup, cadre: str, profile: Path
) -> None:
    add_key(workspace.root, "P-01", workspace.public["P-03"])
    commit_as(workspace.root, "person P-01: updated", key=workspace.keys["P-03"])
    before = state(workspace.root)
    for args in (("rekey",), ("cadre", "new", "--from", profile), ("event", cadre, "reward")):
        assert one_error(workspace.as_("P-01", *args)).startswith("talkbook: ")
    assert state(workspace.root) == before
    assert workspace.as_("P-03", "cat", cadre).exit_code == 2  # still not a reader


def test_a_new_key_on_a_custodian_breaks_the_chain(
    workspace: Setup, cadre: str, keydir: Path, profile: Path
) -> None:
    spare, spare_public = make_key(keydir, "spare")
    add_key(workspace.root, "P-01", spare_public)
    sha = commit_as(workspace.root, "person P-01: updated", key=workspace.keys["P-03"])
    before = state(workspace.root)
    message = one_error(workspace.as_("P-01", "rekey"))
    assert message == (
        f"talkbook: chain of custody broken: commit {sha[:12]} changes talkbook.toml, "
        "signed by no custodian; nothing was written"
    )
    assert one_error(workspace.as_("P-01", "cadre", "new", "--from", profile)) == message
    assert state(workspace.root) == before
    assert run("-w", workspace.root, "-i", spare, "cat", cadre).exit_code == 2
    audit = workspace.as_("P-01", "audit")
    assert audit.exit_code == 1
    assert f"{sha[:7]} talkbook.toml: signed by P-03, who is not a custodian" in audit.stdout


def test_a_key_on_the_approver_does_not_let_the_speaker_approve(
    workspace: Setup, cadre: str, keydir: Path
) -> None:
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30"))
    talk_id = talk.stdout.splitlines()[-1]
    ok(workspace.as_("P-03", "submit", talk_id))
    spare, spare_public = make_key(keydir, "spare")
    add_key(workspace.root, "P-02", spare_public)
    commit_as(workspace.root, "person P-02: updated")  # unsigned
    before = state(workspace.root)
    message = one_error(run("-w", workspace.root, "-i", spare, "approve", talk_id))
    assert "chain of custody broken" in message and "without a good signature" in message
    assert state(workspace.root) == before


def test_an_outsider_added_as_custodian_receives_nothing(
    workspace: Setup, cadre: str, profile: Path
) -> None:
    config = tomlkit.parse(workspace.path("talkbook.toml").read_text(encoding="utf-8"))
    outsider = tomlkit.table()
    outsider.update({"name": "X", "roles": ["custodian"], "keys": [workspace.public["outsider"]]})
    config["people"]["X-1"] = outsider
    workspace.path("talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    commit_as(workspace.root, "person X-1: added", author="王芳")
    before = state(workspace.root)
    assert "chain of custody broken" in one_error(
        workspace.as_("P-01", "cadre", "new", "--from", profile)
    )
    assert "chain of custody broken" in one_error(workspace.as_("outsider", "rekey"))
    assert state(workspace.root) == before


def test_a_template_committed_by_a_speaker_is_not_rendered(workspace: Setup, cadre: str) -> None:
    template = workspace.path("templates/zh-CN/plan.md.j2")
    template.write_text(template.read_text(encoding="utf-8") + "\n注入的内容\n", encoding="utf-8")
    sha = commit_as(workspace.root, "templates: tweak", key=workspace.keys["P-03"])
    before = state(workspace.root)
    message = one_error(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30")
    )
    assert f"commit {sha[:12]} changes templates, signed by no custodian" in message
    assert state(workspace.root) == before


def test_a_custodian_may_change_the_law_with_a_signed_hand_commit(
    workspace: Setup, cadre: str
) -> None:
    config = tomlkit.parse(workspace.path("talkbook.toml").read_text(encoding="utf-8"))
    config["occasions"]["reward"]["days"] = 21
    workspace.path("talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    commit_as(workspace.root, "workspace: rules", key=workspace.keys["P-01"], author="王芳")
    ok(workspace.as_("P-01", "event", cadre, "reward", "--date", "2026-01-05"))


def test_a_key_listed_for_two_people_is_refused(workspace: Setup) -> None:
    result = workspace.as_(
        "P-01", "person", "add", "P-09", "--name", "周杰", "--role", "speaker",
        "--key", workspace.public["P-03"],
    )  # fmt: skip
    assert one_error(result) == "talkbook: that key is P-03's; a key belongs to one person"


# -- forged decisions -------------------------------------------------------------------------
def test_a_forged_approval_is_not_recorded(workspace: Setup, cadre: str) -> None:
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-01-10T09:30"))
    talk_id = talk.stdout.splitlines()[-1]
    ok(workspace.as_("P-03", "submit", talk_id))
    plan = next(workspace.root.glob(f"talks/*/{talk_id}/plan.md.age"))
    text = ok(workspace.as_("P-03", "cat", talk_id)).stdout
    forged = text.replace("status: submitted", "status: approved").replace(
        "decisions:\n",
        "decisions:\n- by: P-02\n  at: 2026-01-05T10:00\n  decision: approved\n  comment: 同意\n",
        1,
    )
    assert forged != text
    keys = [workspace.public[p] for p in ("P-01", "P-02", "P-03")]
    recipients = [pyrage.ssh.Recipient.from_str(k) for k in keys]
    plan.write_bytes(pyrage.encrypt(forged.encode("utf-8"), recipients))
    env = {"GIT_AUTHOR_EMAIL": "p-02@talkbook.invalid"}
    git(workspace.root, "add", "-A")
    git(workspace.root, "commit", "-q", "--no-verify", "-m", f"plan {talk_id}: approved",
        env={**env, "GIT_AUTHOR_NAME": "陈建国"})  # fmt: skip
    assert "status: approved" in ok(workspace.as_("P-03", "cat", talk_id)).stdout
    before = state(workspace.root)
    message = one_error(workspace.as_("P-03", "record", talk_id, "--from", "-", input="---\n---\n"))
    assert message == (
        f"talkbook: {talk_id}: its approval is not verified (no commit signed by its approver "
        "brought it, or the plan changed since); nothing was recorded"
    )
    assert state(workspace.root) == before
    story = ok(workspace.as_("P-01", "history", talk_id)).stdout.splitlines()
    assert f"陈建国  plan {talk_id}: approved  (UNVERIFIED: no signature of a person)" in story[-1]
    assert "UNVERIFIED" not in "".join(story[:-1])


# -- clones and the pinned root ---------------------------------------------------------------
def test_setup_pins_the_root_in_a_fresh_clone(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(workspace.root), str(clone)], check=True)
    root_sha = git_log(workspace.root, "--reverse", "--format=%H").split()[1]  # P-01's person add
    wrong = one_error(run("-w", clone, "setup", "--trust", "0123456789ab"))
    assert wrong == "talkbook: 0123456789ab is not a root of this workspace's history; not trusted"
    done = ok(run("-w", clone, "setup", "--trust", root_sha[:12]))
    assert done.stdout.splitlines()[-1] == f"root of trust: {root_sha}"
    assert set(git_log(clone, "--format=%G?").split()) == {"G"}
    assert ok(run("-w", clone, "-i", workspace.keys["P-01"], "cat", cadre)).stdout


def test_a_rewritten_history_is_refused_by_a_pinned_clone(
    workspace: Setup, cadre: str, tmp_path: Path, profile: Path
) -> None:
    ok(workspace.as_("P-01", "cadre", "new", "--from", profile))  # pins the root here
    git(workspace.root, "checkout", "-q", "--orphan", "forged")
    commit_as(workspace.root, "workspace: initialized", key=workspace.keys["P-03"])
    message = one_error(workspace.as_("P-01", "cadre", "new", "--from", profile))
    assert "HEAD does not descend from the pinned root" in message


# -- migration ----------------------------------------------------------------------------------
def test_migrate_a_workspace_from_before_signing(tmp_path: Path, keydir: Path, profile) -> None:
    root = tmp_path / "old"
    ok(run("init", root))
    old, old_public = keydir / "old.txt", generate_identity_file(keydir / "old.txt")
    config = tomlkit.parse((root / "talkbook.toml").read_text(encoding="utf-8"))
    person = tomlkit.table()
    person.update({"name": "王芳", "roles": ["custodian"], "keys": [old_public]})
    config.setdefault("people", tomlkit.table())["P-01"] = person
    (root / "talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    commit_as(root, "person P-01: added", author="王芳")  # as the old version did: unsigned

    new, new_public = make_key(keydir, "new")
    refused = one_error(run("-w", root, "-i", new, "cadre", "new", "--from", profile))
    assert "a custodian runs `talkbook migrate`" in refused
    assert "--from-identity" in one_error(run("-w", root, "-i", new, "migrate"))
    migrated = ok(run("-w", root, "-i", new, "migrate", "--from-identity", old))
    sha = git(root, "rev-parse", "HEAD").strip()
    assert migrated.stdout.splitlines()[-1] == f"root of trust: {sha}"
    people = tomllib.loads((root / "talkbook.toml").read_text(encoding="utf-8"))["people"]
    assert people["P-01"]["keys"] == [old_public, new_public]
    ok(run("-w", root, "-i", new, "cadre", "new", "--from", profile))
    assert git_log(root, "-2", "--format=%G?").split() == ["G", "G"]


def test_signature_verdicts_are_kept_per_commit(workspace: Setup, monkeypatch) -> None:
    """A commit never changes: git is asked once about each, then the kept verdict is used."""
    from talkbook import trust

    shas = git_log(workspace.root, "--format=%H").split()
    first = trust.signatures(workspace.root, shas)
    assert all(sig.good for sig in first.values())

    def never(root, missing):
        raise AssertionError(f"asked git again about {missing}")

    monkeypatch.setattr(trust, "_ask_git", never)
    assert trust.signatures(workspace.root, shas) == first
    assert set(trust.signers(workspace.root, shas[:1]).values()) == {"P-01"}


# -- found by an attacker's pass: merges, fresh clones, readers, rekey ------------------------
def merge_as_speaker(ws: Setup, *parents: str) -> str:
    """A merge commit made with plain git: the index's tree, these parents, the speaker's key."""
    import os

    tree = git(ws.root, "write-tree").strip()
    env = {**os.environ, "GIT_AUTHOR_NAME": "李明", "GIT_AUTHOR_EMAIL": "p-03@talkbook.invalid"}
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={ws.keys['P-03']}"]
    args = [a for p in parents for a in ("-p", p)]
    done = subprocess.run(
        ["git", "-C", str(ws.root), *signing, "commit-tree", "-S", tree, *args, "-m", "Merge"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    sha = done.stdout.strip()
    git(ws.root, "reset", "-q", "--hard", sha)
    return sha


def test_a_merge_cannot_bring_an_old_law_back(workspace: Setup, cadre: str, profile) -> None:
    roles = ["--role", "speaker", "--role", "recorder"]
    add = ["person", "add", "P-03", "--name", "李明", "--key", workspace.public["P-03"]]
    ok(workspace.as_("P-01", *add, *roles, "--role", "custodian"))
    old = git(workspace.root, "rev-parse", "HEAD").strip()
    ok(workspace.as_("P-01", *add, *roles))
    head = git(workspace.root, "rev-parse", "HEAD").strip()
    git(workspace.root, "checkout", old, "--", "talkbook.toml")
    for parents in ((old, head), (head, old)):
        sha = merge_as_speaker(workspace, *parents)
        message = one_error(workspace.as_("P-01", "cadre", "new", "--from", profile))
        assert f"commit {sha[:12]} changes talkbook.toml" in message
        git(workspace.root, "reset", "-q", "--hard", head)
        git(workspace.root, "checkout", old, "--", "talkbook.toml")


def test_a_second_founding_is_not_pinned_by_a_fresh_clone(
    workspace: Setup, cadre: str, tmp_path: Path, profile
) -> None:
    first = git(workspace.root, "rev-list", "--max-parents=0", "HEAD").strip()
    head = git(workspace.root, "rev-parse", "HEAD").strip()
    real = workspace.path("talkbook.toml").read_text(encoding="utf-8")
    git(workspace.root, "checkout", first, "--", "talkbook.toml")
    merge_as_speaker(workspace, head, first)
    config = tomlkit.parse(real)
    config["people"]["P-03"]["roles"].append("custodian")
    workspace.path("talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    commit_as(workspace.root, "person P-03: updated", key=workspace.keys["P-03"])
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(workspace.root), str(clone))
    message = one_error(
        run("-w", clone, "-i", workspace.keys["P-01"], "cadre", "new", "--from", profile)
    )
    assert "possible roots" in message and "setup --trust" in message
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{workspace.root}", str(shallow))
    refused = one_error(run("-w", shallow, "-i", workspace.keys["P-01"], "due"))
    assert "shallow clone" in refused


def test_readers_use_verified_settings_only(workspace: Setup, cadre: str) -> None:
    ok(workspace.as_("P-01", "event", cadre, "post_change", "--date", "2025-01-05"))
    config = tomlkit.parse(workspace.path("talkbook.toml").read_text(encoding="utf-8"))
    config["occasions"]["post_change"]["deadline_days"] = 3000
    workspace.path("talkbook.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    sha = commit_as(workspace.root, "settings", key=workspace.keys["P-03"])
    for args in (("due",), ("list", "talks"), ("person", "list")):
        assert f"commit {sha[:12]}" in one_error(workspace.as_("P-01", *args))


def test_rekey_is_signed_and_audit_stays_clean(workspace: Setup, cadre: str, keydir) -> None:
    _, public = make_key(keydir, "P-05")
    ok(workspace.as_("P-01", "person", "add", "P-05", "--name", "孙丽华", "--role", "custodian",
                     "--key", public))  # fmt: skip
    ok(workspace.as_("P-01", "rekey"))
    assert git_log(workspace.root, "-1", "--format=%G? %s").startswith("G rekey: ")
    assert ok(workspace.as_("P-01", "audit")).exit_code == 0


@pytest.mark.parametrize("change", ["edited after approval", "cancelled, status typed back"])
def test_record_needs_the_plan_that_was_approved(workspace: Setup, cadre: str, change) -> None:
    talk = ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-01-10T09:30"))
    talk_id = talk.stdout.splitlines()[-1]
    ok(workspace.as_("P-03", "submit", talk_id))
    ok(workspace.as_("P-02", "approve", talk_id, "--comment", "同意"))
    if change == "cancelled, status typed back":
        ok(workspace.as_("P-01", "cancel", talk_id))
    plan = next(workspace.root.glob(f"talks/*/{talk_id}/plan.md.age"))
    text = ok(workspace.as_("P-03", "cat", talk_id)).stdout
    if change == "edited after approval":
        forged = text.replace("talk_type: occasion", "talk_type: routine").replace(
            "at: 2026-01-10T09:30", "at: 2026-01-09T09:30"
        )
    else:
        forged = text.replace("status: cancelled", "status: approved")
    assert forged != text
    keys = [workspace.public[p] for p in ("P-01", "P-02", "P-03")]
    recipients = [pyrage.ssh.Recipient.from_str(k) for k in keys]
    plan.write_bytes(pyrage.encrypt(forged.encode("utf-8"), recipients))
    commit_as(workspace.root, f"plan {talk_id}: edited", key=workspace.keys["P-03"])
    before = state(workspace.root)
    message = one_error(workspace.as_("P-03", "record", talk_id, "--from", "-", input="---\n---\n"))
    assert "its approval is not verified" in message
    assert state(workspace.root) == before


def test_gitattributes_and_nested_settings_are_not_the_speakers_to_change(
    workspace: Setup, cadre: str, profile, monkeypatch
) -> None:
    nested = workspace.path("notes/talkbook.toml")
    nested.parent.mkdir()
    nested.write_bytes(workspace.path("talkbook.toml").read_bytes())
    attributes = workspace.path(".gitattributes")
    attributes.write_text(attributes.read_text() + "*.toml merge=union\n")
    sha = commit_as(workspace.root, "docs", key=workspace.keys["P-03"])
    monkeypatch.chdir(nested.parent)
    message = one_error(run("-i", workspace.keys["P-01"], "cadre", "new", "--from", profile))
    assert message.startswith(f"talkbook: chain of custody broken: commit {sha[:12]} changes ")
    assert ".gitattributes" in message


# -- the tool's own commits ------------------------------------------------------------------
def test_the_tools_own_commit_is_verified_as_it_is_made(
    workspace: Setup, cadre: str, monkeypatch
) -> None:
    """A plan committed on the verified HEAD brings no law: the next command walks nothing."""
    from talkbook import trust

    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-01T09:30"))
    head = git(workspace.root, "rev-parse", "HEAD").strip()
    assert trust.pinned(workspace.root)["verified"] == head

    def never(root, since):
        raise AssertionError(f"walked the chain from {since}")

    monkeypatch.setattr(trust, "check_chain", never)
    ok(workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-12-02T09:30"))


def test_the_tools_commit_of_the_law_is_walked_as_any_other(workspace: Setup, keydir) -> None:
    """A commit that changes talkbook.toml is verified by the next command's walk, not as made."""
    from talkbook import trust

    _key, public = make_key(keydir, "P-09")
    ok(workspace.as_("P-01", "person", "add", "P-09", "--name", "周杰", "--role", "speaker",
                     "--key", public))  # fmt: skip
    head, parent = git(workspace.root, "rev-parse", "HEAD", "HEAD~1").split()
    assert trust.pinned(workspace.root)["verified"] == parent
    ok(workspace.as_("P-01", "list", "cadres"))
    assert trust.pinned(workspace.root)["verified"] == head


def test_a_commit_on_another_than_the_verified_one_is_not_marked(workspace: Setup) -> None:
    from talkbook import trust

    state = trust.pinned(workspace.root)
    trust.own_commit(workspace.root, "0" * 40, "1" * 40, ["talks/2026/T-aaaaaa/plan.md.age"])
    trust.own_commit(workspace.root, state["verified"], "1" * 40, ["templates/zh-CN/plan.md.j2"])
    assert trust.pinned(workspace.root) == state
