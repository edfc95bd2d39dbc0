"""Attacks on the features of the last hour: reports, index, agent, names, retire, remove."""

from __future__ import annotations

from pathlib import Path

from conftest import Setup, last_line, ok


def test_report_out_through_a_committed_build_symlink_is_refused(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    """Someone with push access commits `build -> /tmp/…`: `--out build/x.html` must not
    write the plaintext report through it, outside the workspace."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace.root / "build").symlink_to(elsewhere)
    result = workspace.as_(
        "P-01", "report", "coverage", "--out", workspace.root / "build" / "cov.html"
    )
    assert result.exit_code != 0
    assert list(elsewhere.iterdir()) == []


def test_a_speaker_cannot_skip_approval_by_marking_a_plan_held_by_hand(
    workspace: Setup, cadre: str, clock, tmp_path: Path
) -> None:
    """A speaker, with plain git: their submitted plan set `held` by a `held` decision of
    their own, and a record beside it. No approver ever saw the plan; validate must say so."""
    from talkbook.crypto import Keyring, decrypt
    from talkbook.models import parse
    from test_workflow import hold_talk, plant, record_path

    done = hold_talk(workspace, cadre, clock, tmp_path)
    talk = last_line(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-12T09:30")
    )
    ok(workspace.as_("P-03", "submit", talk))
    keyring = Keyring.from_file(workspace.keys["P-03"])
    plan_rel = f"talks/2026/{talk}/plan.md.age"
    plan = parse(decrypt(workspace.path(plan_rel).read_bytes(), keyring).decode())
    held = {"by": "P-03", "at": "2026-03-12T10:00", "decision": "held", "comment": None}
    plan = plan.with_meta(status="held", decisions=[*plan.meta["decisions"], held])
    record = decrypt(record_path(workspace, done).read_bytes(), keyring).decode()
    record = record.replace(done, talk)
    plant(workspace, plan_rel, plan.text(), ["P-01", "P-02", "P-03"])  # as the rule gives
    plant(workspace, f"talks/2026/{talk}/record.md.age", record, ["P-01", "P-03"])
    result = workspace.as_("P-01", "validate")
    assert result.exit_code != 0, result.stdout
    assert "recipients" not in result.stdout  # nothing else to notice
    assert (
        f"{talk}/plan.md.age" in result.stdout and "held cannot follow submitted" in result.stdout
    )


def test_show_and_list_never_send_a_terminal_escape(
    workspace: Setup, cadre: str, tmp_path: Path
) -> None:
    """Anyone who can write a plan (or push one) may put ESC sequences in its fields and body:
    OSC 52 writes the reader's clipboard, CSI 2J clears the screen. Shown, never sent."""
    source = tmp_path / "plan.md"
    source.write_text(
        '---\nplace: "三楼\\e[2J谈话室"\nfocus: ["思想\\u202e状况"]\n---\n\n'
        "正文\x1b]52;c;cm0gLXJmIH4=\x07结束\n",
        encoding="utf-8",
    )
    talk = last_line(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-12T09:30",
                      "--from", source)
    )  # fmt: skip
    shown = ok(workspace.as_("P-01", "show", talk)).stdout
    listed = ok(workspace.as_("P-01", "list", "talks")).stdout
    for text in (shown, listed):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "正文\ufffd]52;c;cm0gLXJmIH4=\ufffd结束" in shown and "三楼\ufffd[2J谈话室" in shown


def test_history_never_sends_a_commit_authors_terminal_escape(workspace: Setup, cadre: str) -> None:
    """A commit's author and message are whatever the pusher typed."""
    import os
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "x\x1b]52;c;cm0=\x07"}
    subprocess.run(
        ["git", "-C", str(workspace.root), "commit", "-q", "--amend", "--no-verify",
         "-m", "cadre\x1b[2J"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    out = ok(workspace.as_("P-01", "history", cadre)).stdout
    assert "\x1b" not in out and "\x07" not in out and "cadre\ufffd[2J" in out


IMAGE = "![看](http://evil.invalid/beacon.png)"


def test_markdown_reports_load_no_image_from_a_record(
    workspace: Setup, cadre: str, clock, tmp_path: Path
) -> None:
    """A recorder writes Markdown image syntax into a follow-up, a topic and the body: a
    Markdown viewer of the report would fetch the URL when opened (a beacon). Text, not image."""
    from test_workflow import RECORD_ZH

    clock.set("2026-03-02T09:00")
    talk = last_line(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-10T09:30")
    )
    ok(workspace.as_("P-03", "submit", talk))
    ok(workspace.as_("P-02", "approve", talk, "--comment", "同意"))
    clock.set("2026-03-10T11:30")
    source = tmp_path / "record.md"
    text = RECORD_ZH.replace("协调市人民医院专家会诊", f"会诊{IMAGE}")
    text = text.replace("  - 对岗位调整的认识", f"  - '{IMAGE}'") + f"\n{IMAGE}\n"
    source.write_text(text, encoding="utf-8")
    ok(workspace.as_("P-03", "record", talk, "--from", source))
    for args in (("followups",), ("form", talk), ("due",)):
        out = ok(workspace.as_("P-01", "report", *args, "--as-of", "2026-03-20", "--out", "-"))
        assert "![" not in out.stdout, args
    form = ok(workspace.as_("P-01", "report", "form", talk, "--out", "-")).stdout
    assert "evil.invalid" in form  # the text is kept, as text


def test_a_report_killed_while_written_leaves_no_plaintext_for_long(
    workspace: Setup, cadre: str
) -> None:
    """Killed between its temp file and the rename, a report leaves a half-made plaintext
    file in build/reports/; the next report run takes it away."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "talkbook", "-w", str(workspace.root)]
    command += ["-i", str(workspace.keys["P-01"]), "report", "coverage"]
    env = {**os.environ, "TALKBOOK_KILL_AT": "tmp"}
    killed = subprocess.run(command, env=env, capture_output=True)
    assert killed.returncode == -9
    folder = workspace.root / "build" / "reports"
    assert [p.name for p in folder.iterdir() if ".tmp-" in p.name]
    ok(workspace.as_("P-01", "report", "due"))
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def test_a_dropped_record_file_does_not_take_a_plan_out_of_the_approvers_queue(
    workspace: Setup, cadre: str
) -> None:
    """Anyone who can push may drop a `record.md.age` (encrypted to anyone) beside a submitted
    plan; the approver, who never reads records, must still see the plan as submitted."""
    from test_workflow import plant

    talk = last_line(
        workspace.as_("P-01", "plan", cadre, "--speaker", "P-03", "--at", "2026-03-12T09:30")
    )
    ok(workspace.as_("P-03", "submit", talk))
    plant(workspace, f"talks/2026/{talk}/record.md.age", "---\nid: x\n---\n", ["outsider"])
    queue = ok(workspace.as_("P-02", "list", "talks", "--status", "submitted")).stdout
    assert talk in queue


def test_no_report_over_a_file_someone_made_tracked(workspace: Setup, cadre: str) -> None:
    """Someone pushes build/reports/coverage.md (git add -f): a report written over it would
    be a modified tracked file, committed in plaintext by the next `git commit -a`."""
    import subprocess

    planted = workspace.root / "build" / "reports" / "coverage.md"
    planted.parent.mkdir(parents=True)
    planted.write_text("占位\n", encoding="utf-8")
    for args in (["add", "-f", "build/reports/coverage.md"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(workspace.root), *args], check=True)
    result = workspace.as_("P-01", "report", "coverage")
    assert result.exit_code != 0 and "build/reports/coverage.md" in result.stderr
    assert planted.read_text(encoding="utf-8") == "占位\n"
    ok(workspace.as_("P-01", "report", "due"))  # an ignored file is written as before
