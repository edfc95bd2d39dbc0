"""`talkbook audit`: the history checked commit by commit."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pyrage
import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import Clock, Setup, last_line, ok
from talkbook.crypto import Keyring, decrypt, encrypt
from talkbook.models import Document, parse

PLAN_READERS = ("P-01", "P-02", "P-03")


@pytest.fixture(autouse=True)
def dated(clock: Clock) -> None:
    clock.set("2026-03-01T08:00")


def git(ws: Setup, *args: str, person: str | None = None) -> None:
    """A hand-made commit, as someone with a text editor and git would make it: signed with
    `person`'s own key (their key, their act) when one is named."""
    env = None
    if person and args[0] in ("commit", "revert"):
        args = ("-c", "gpg.format=ssh", "-c", f"user.signingkey={ws.keys[person]}", *args, "-S")
    if person:
        address = f"{person.lower()}@talkbook.invalid"
        env = {
            "GIT_AUTHOR_NAME": person, "GIT_AUTHOR_EMAIL": address,
            "GIT_COMMITTER_NAME": person, "GIT_COMMITTER_EMAIL": address,
        }  # fmt: skip
    subprocess.run(["git", "-C", str(ws.root), *args], check=True, capture_output=True,
                   env={**os.environ, **(env or {})})  # fmt: skip


def rewrite_plan(ws: Setup, talk: str, change, keys: list[str] | None = None) -> str:
    """The plan re-encrypted by hand: its front matter changed, to the readers' keys or `keys`."""
    rel = f"talks/2026/{talk}/plan.md.age"
    rewrite(ws, rel, lambda doc: Document(change(dict(doc.meta)), doc.body), PLAN_READERS, keys)
    return rel


def rewrite(ws: Setup, rel: str, change, readers, keys: list[str] | None = None) -> None:
    path = ws.path(rel)
    doc = parse(decrypt(path.read_bytes(), Keyring.from_file(ws.keys["P-01"])).decode())
    keys = keys if keys is not None else [ws.public[p] for p in readers]
    path.write_bytes(encrypt(change(doc).text().encode(), keys))


def blob_of(ws: Setup, sha: str, rel: str) -> str:
    """The id of the blob a commit holds at a path, as a withheld path shows it."""
    found = subprocess.run(["git", "-C", str(ws.root), "rev-parse", f"{sha}:{rel}"],
                           check=True, capture_output=True, text=True)  # fmt: skip
    return found.stdout.strip()[:12]


def stranger_like(key: str) -> str:
    """A fresh public key of the same type as `key`, held by nobody in the workspace."""
    if key.startswith("age1"):
        return str(pyrage.x25519.Identity.generate().to_public())
    private = Ed25519PrivateKey.generate()
    return private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def ssh_public_key() -> str:
    private = Ed25519PrivateKey.generate()
    return private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def audited(ws: Setup, pid: str = "P-01") -> tuple[Result, list[str]]:
    result = ws.as_(pid, "audit")
    assert result.exit_code in (0, 1), result.stderr
    return result, result.stdout.splitlines()


def submitted_plan(ws: Setup, cadre: str) -> str:
    talk = last_line(ws.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30"))
    ok(ws.as_("P-03", "submit", talk))
    return talk


def test_a_history_made_by_talkbook_is_clean(workspace: Setup, cadre: str) -> None:
    talk = submitted_plan(workspace, cadre)
    ok(workspace.as_("P-02", "approve", talk, "--comment", "同意"))
    result, lines = audited(workspace)
    assert result.exit_code == 0 and lines == []
    assert result.stderr == "9 commit(s) audited, 0 finding(s)\n"


def test_a_forged_approval_is_found(workspace: Setup, cadre: str) -> None:
    """The speaker types the leader's approval into the plan and commits it by hand."""
    talk = submitted_plan(workspace, cadre)
    approval = {"by": "P-02", "at": "2026-03-02T09:00", "decision": "approved", "comment": "同意"}
    rel = rewrite_plan(
        workspace,
        talk,
        lambda m: {**m, "status": "approved", "decisions": [*m["decisions"], approval]},
    )
    git(workspace, "add", rel)
    git(workspace, "commit", "--no-verify", "-m", f"plan {talk}: approved", person="P-03")
    assert ok(workspace.as_("P-01", "validate")).exit_code == 0  # the file itself looks fine
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines == [
        f"{lines[0][:7]} {rel}: decisions: approved by P-02 was not signed by them "
        "(p-03@talkbook.invalid)"
    ]


def test_rewritten_decisions_are_found(workspace: Setup, cadre: str) -> None:
    talk = submitted_plan(workspace, cadre)
    rel = rewrite_plan(workspace, talk, lambda m: {**m, "status": "draft", "decisions": []})
    git(workspace, "add", rel)
    git(workspace, "commit", "--no-verify", "-m", f"plan {talk}: edited", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert [line.split(" ", 1)[1] for line in lines] == [
        f"{rel}: decisions: earlier entries were rewritten"
    ]


def test_plaintext_that_was_ever_committed_is_found(workspace: Setup, cadre: str) -> None:
    """Removed again, it is gone from the tree (validate is clean) but not from history."""
    leak = workspace.path("cadres/张伟-谈话要点.md")
    rel = "cadres/张伟-谈话要点.md"
    leak.write_text("张伟：思想波动较大。\n", encoding="utf-8")
    git(workspace, "add", "cadres")
    git(workspace, "commit", "--no-verify", "-m", "notes", person="P-01")
    git(workspace, "rm", "-q", "cadres/张伟-谈话要点.md")
    git(workspace, "commit", "--no-verify", "-m", "oops", person="P-01")
    assert ok(workspace.as_("P-01", "validate")).exit_code == 0
    result, lines = audited(workspace)
    assert result.exit_code == 1
    hidden = f"(path withheld, blob {blob_of(workspace, lines[0][:7], rel)})"
    assert [line.split(" ", 1)[1] for line in lines] == [
        f"{hidden}: a cadre's name ({cadre}) in the path",
        f"{hidden}: a cadre's name ({cadre}) in the content",
        f"{hidden}: plaintext file: only .age ciphertext belongs here",
    ]
    assert "张伟" not in result.stdout + result.stderr


def test_changes_by_someone_who_is_not_a_person_are_found(workspace: Setup, cadre: str) -> None:
    readme = workspace.path("talks/README.md")
    readme.write_text(readme.read_text(encoding="utf-8") + "\n说明。\n", encoding="utf-8")
    git(workspace, "commit", "--no-verify", "-am", "docs")  # the tests' git identity: tester
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert [line.split(" ", 1)[1] for line in lines] == [
        "talks/README.md: changed by tester@example.invalid, not signed by a person of the "
        "workspace"
    ]


def test_an_author_name_does_not_make_a_signature(workspace: Setup, cadre: str) -> None:
    """The speaker commits under the approver's name and address, signed with their own key."""
    readme = workspace.path("talks/README.md")
    readme.write_text(readme.read_text(encoding="utf-8") + "\n说明。\n", encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "陈建国", "GIT_AUTHOR_EMAIL": "p-02@talkbook.invalid"}
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={workspace.keys['P-03']}"]
    subprocess.run(
        ["git", "-C", str(workspace.root), *signing, "commit", "-S", "--no-verify", "-qam", "x"],
        check=True, capture_output=True, env={**os.environ, **env},
    )  # fmt: skip
    unsigned = workspace.path("cadres/README.md")
    unsigned.write_text(unsigned.read_text(encoding="utf-8") + "\n说明。\n", encoding="utf-8")
    git(workspace, "commit", "--no-verify", "-qam", "y")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert [line.split(" ", 1)[1] for line in lines] == [
        "(commit): signed by P-03 but authored as p-02@talkbook.invalid",
        "cadres/README.md: changed by tester@example.invalid, not signed by a person of the "
        "workspace",
    ]


def test_the_speaker_audits_what_they_can_read(workspace: Setup, cadre: str) -> None:
    submitted_plan(workspace, cadre)
    result, lines = audited(workspace, "P-03")
    assert result.exit_code == 0 and lines == []
    assert "0 finding(s)" in result.stderr


def test_outsider_key_reads_no_trail(workspace: Setup, cadre: str, tmp_path: Path) -> None:
    submitted_plan(workspace, cadre)
    result, lines = audited(workspace, "outsider")
    assert lines == [] and "3 revision(s) not readable with your identity" in result.stderr


# -- what plain git could hide from an audit (issue 6, item 7) ---------------------------------
RECORD_ZH = """---
held_at: 2026-03-10T09:30
place: 市委组织部三楼谈话室
---

谈话对象表示服从组织安排。
"""


def lines_after(lines: list[str]) -> list[str]:
    """The findings without their commit: `path: message`."""
    return [line.split(" ", 1)[1] for line in lines]


def test_plaintext_behind_an_age_first_line_is_found(workspace: Setup, cadre: str) -> None:
    """The first line passes a magic-number check; the header does not parse. Undone later:
    only history holds it."""
    rel = f"cadres/{cadre}.md.age"
    profile = workspace.path(rel)
    original = profile.read_bytes()
    profile.write_bytes("age-encryption.org/v1\n谈话要点：思想波动较大。\n".encode())
    git(workspace, "commit", "--no-verify", "-qam", f"cadre {cadre}: edited", person="P-01")
    profile.write_bytes(original)
    git(workspace, "commit", "--no-verify", "-qam", f"cadre {cadre}: edited", person="P-01")
    assert ok(workspace.as_("P-01", "validate")).exit_code == 0
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [
        f"{rel}: corrupt age file: header is malformed (a header line is neither a stanza nor "
        "the MAC): refused as plaintext"
    ]
    assert "谈话" not in result.stdout + result.stderr


def test_a_cadres_name_anywhere_is_found_and_never_said(workspace: Setup, cadre: str) -> None:
    """A note outside cadres/ and talks/ named after the cadre, the name in another file's
    content and in a commit message: each a finding naming the cadre's id, never the name."""
    notes = workspace.path("notes")
    notes.mkdir()
    (notes / "张伟.md").write_text("谈话要点：思想波动较大。\n", encoding="utf-8")
    (notes / "todo.txt").write_text("下周约张伟谈话\n", encoding="utf-8")
    git(workspace, "add", "notes")
    git(workspace, "commit", "--no-verify", "-qm", "张伟 notes", person="P-01")
    git(workspace, "rm", "-rq", "notes")
    git(workspace, "commit", "--no-verify", "-qm", "notes removed", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    hidden = f"(path withheld, blob {blob_of(workspace, lines[0][:7], 'notes/张伟.md')})"
    assert lines_after(lines) == [
        f"(commit): a cadre's name ({cadre}) in the commit message",
        f"notes/todo.txt: a cadre's name ({cadre}) in the content",
        f"{hidden}: a cadre's name ({cadre}) in the path",
        f"{hidden}: a Markdown file outside cadres/ and talks/: records belong encrypted",
    ]
    assert "张伟" not in result.stdout + result.stderr


def test_markdown_or_age_files_outside_the_folders_are_found(workspace: Setup, cadre: str):
    """No name to recognize: a Markdown file outside the known plaintext still is a finding,
    and so is an age file that no access rule covers (sealed to anyone at all)."""
    notes = workspace.path("notes")
    notes.mkdir()
    (notes / "谈话要点.md").write_text("谈话对象情绪低落，需重点关注。\n", encoding="utf-8")
    (notes / "copy.md.age").write_bytes(
        encrypt("机密".encode(), [stranger_like(workspace.public["P-01"])])
    )
    readme = workspace.path("notes/README.md")
    readme.write_text("# notes\n", encoding="utf-8")
    git(workspace, "add", "notes")
    git(workspace, "commit", "--no-verify", "-qm", "notes", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert sorted(lines_after(lines)) == [
        "notes/copy.md.age: an age file outside cadres/ and talks/: no access rule",
        "notes/谈话要点.md: a Markdown file outside cadres/ and talks/: records belong encrypted",
    ]


def test_a_plan_sealed_to_fewer_readers_is_found(workspace: Setup, cadre: str) -> None:
    talk = submitted_plan(workspace, cadre)
    rel = rewrite_plan(workspace, talk, dict, [workspace.public[p] for p in ("P-01", "P-03")])
    git(workspace, "commit", "--no-verify", "-qam", f"plan {talk}: edited", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    kind = "X25519" if workspace.public["P-01"].startswith("age1") else "ssh-ed25519"
    assert lines_after(lines) == [
        f"{rel}: (recipients) encrypted to 2 key(s) ({kind} ×2) but the access rule at this "
        f"commit gives 3 ({kind} ×3); run `talkbook rekey`"
    ]


def test_an_ssh_key_swapped_for_a_strangers_is_found(workspace: Setup, cadre: str) -> None:
    """Same number and type of stanzas; the ssh key tag (SHA-256 of the key) tells them apart."""
    ok(workspace.as_("P-01", "person", "add", "P-05", "--name", "周强", "--role", "speaker",
                     "--key", ssh_public_key()))  # fmt: skip
    made = workspace.as_("P-01", "plan", cadre, "--speaker", "P-05", "--at", "2026-03-10T09:30")
    talk = last_line(made)
    keys = [workspace.public["P-01"], workspace.public["P-02"], ssh_public_key()]
    rel = rewrite_plan(workspace, talk, dict, keys)
    git(workspace, "commit", "--no-verify", "-qam", f"plan {talk}: edited", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [
        f"{rel}: (recipients) an ssh recipient is not a key the access rule gives"
    ]


def test_a_plan_sealed_past_the_auditor_is_found(workspace: Setup, cadre: str) -> None:
    """The custodian's key swapped for a stranger's of the same type: the custodian's audit
    cannot open it, though the rule gives their key."""
    talk = submitted_plan(workspace, cadre)
    stranger = stranger_like(workspace.public["P-01"])
    keys = [stranger, workspace.public["P-02"], workspace.public["P-03"]]
    rel = rewrite_plan(workspace, talk, dict, keys)
    git(workspace, "commit", "--no-verify", "-qam", f"plan {talk}: edited", person="P-03")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [
        f"{rel}: (recipients) not encrypted to your key, which the access rule gives"
    ]


def test_a_symlink_ever_committed_is_found(workspace: Setup, cadre: str) -> None:
    """Anywhere, even outside cadres/ and talks/, and even if removed again."""
    os.symlink("/etc", workspace.path("archive"))
    git(workspace, "add", "archive")
    git(workspace, "commit", "--no-verify", "-qm", "archive", person="P-01")
    git(workspace, "rm", "-q", "archive")
    git(workspace, "commit", "--no-verify", "-qm", "archive removed", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == ["archive: a symlink (git mode 120000): only regular files belong"]


def confirmed_record(ws: Setup, cadre: str, clock: Clock, tmp_path: Path) -> tuple[str, str]:
    """A talk planned, approved, recorded and confirmed by the tool: (talk id, record path)."""
    talk = submitted_plan(ws, cadre)
    ok(ws.as_("P-02", "approve", talk))
    clock.set("2026-03-10T12:00")
    source = tmp_path / "record.md"
    source.write_text(RECORD_ZH, encoding="utf-8")
    ok(ws.as_("P-03", "record", talk, "--from", source))
    clock.set("2026-03-11T09:00")
    ok(ws.as_("P-03", "confirm", talk))
    return talk, f"talks/2026/{talk}/record.md.age"


def test_an_unconfirmed_confirmed_record_is_found(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
) -> None:
    """A hand edit sets `confirmed_on: null` and rewrites the body: audit and validate see it."""
    talk, rel = confirmed_record(workspace, cadre, clock, tmp_path)

    def unconfirm(doc: Document) -> Document:
        return Document({**doc.meta, "confirmed_on": None}, doc.body.replace("服从", "不服从"))

    rewrite(workspace, rel, unconfirm, ("P-01", "P-03"))
    git(workspace, "commit", "--no-verify", "-qam", f"record {talk}: edited", person="P-03")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [
        f"{rel}: confirmed_on: removed after the record was confirmed",
        f"{rel}: body: the record was confirmed; change it only by an addendum",
    ]
    checked = workspace.as_("P-01", "validate")
    assert checked.exit_code == 1
    assert re.match(rf"{rel}:\d+: confirmed_on: the record was confirmed", checked.stdout)


def test_a_reverted_confirmation_is_found(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
) -> None:
    """`git revert` of the confirming commit brings back the very bytes of before."""
    talk, rel = confirmed_record(workspace, cadre, clock, tmp_path)
    git(workspace, "revert", "--no-edit", "HEAD", person="P-03")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [f"{rel}: confirmed_on: removed after the record was confirmed"]
    checked = workspace.as_("P-01", "validate")
    assert checked.exit_code == 1 and re.match(rf"{rel}:\d+: confirmed_on: ", checked.stdout)


def test_a_deleted_confirmed_record_is_found(
    workspace: Setup, cadre: str, clock: Clock, tmp_path: Path
) -> None:
    talk, rel = confirmed_record(workspace, cadre, clock, tmp_path)
    git(workspace, "rm", "-q", rel)
    git(workspace, "commit", "--no-verify", "-qm", f"record {talk}: removed", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [f"{rel}: a confirmed record was deleted"]


def test_settings_broken_by_hand_are_a_finding_not_a_crash(workspace: Setup, cadre: str):
    """While they are broken nobody counts as a person."""
    config = workspace.path("talkbook.toml")
    original = config.read_bytes()
    config.write_bytes(original + b"\n[[[\n")
    git(workspace, "commit", "--no-verify", "-qam", "settings", person="P-01")
    config.write_bytes(original)
    git(workspace, "commit", "--no-verify", "-qam", "settings", person="P-01")
    result, lines = audited(workspace)
    assert result.exit_code == 1
    assert lines_after(lines) == [
        "talkbook.toml: not readable settings (malformed TOML?): nobody counts as a person",
        "talkbook.toml: changed by p-01@talkbook.invalid, not signed by a person of the workspace",
    ]
