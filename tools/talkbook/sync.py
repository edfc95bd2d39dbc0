"""Several officers on one remote: the merge driver's work, `resolve` and `sync`.

`sync` fetches, merges (through the merge driver in merge.py, which plain `git pull` uses too),
checks the chain of custody and validates, then pushes, retrying when the remote moved. A true
conflict leaves the file unmerged; `resolve ID` finishes it on a private decrypted copy.

Security invariant: merged files are encrypted to the readers the verified talkbook.toml of HEAD
gives, never to keys only the incoming side lists; the merge commit is signed by the actor; no
file with conflict markers is staged.
"""

from __future__ import annotations

from pathlib import Path

from talkbook import gittrail, merge
from talkbook.app import App
from talkbook.errors import Findings, TalkbookError
from talkbook.fsutil import checkpoint
from talkbook.i18n import _
from talkbook.models import Document
from talkbook.workspace import Workspace, id_of_rel, kind_of_rel

ATTEMPTS = 3


def verified_workspace(app: App) -> Workspace:
    """The settings of HEAD (verified by the chain), not a half-merged working tree's."""
    from talkbook import trust

    app.ensure_trust()
    return app.workspace.with_config(trust.head_config(app.workspace.root) or app.workspace.config)


def _open(app: App, data: bytes, rel: str) -> Document | None:
    from talkbook.crypto import decrypt

    return merge.decode(decrypt(data, app.keyring), rel) if data else None


def run_driver(app: App, base: Path, ours: Path, theirs: Path, rel: str) -> bool:
    """git's merge driver: True when merged (written to `ours`), False to leave a conflict."""
    from talkbook.crypto import encrypt

    app.prompts.passphrase = None  # git runs drivers unattended
    try:
        kind = kind_of_rel(rel)
        docs = [_open(app, path.read_bytes(), rel) for path in (base, ours, theirs)]
        if docs[1] is None or docs[2] is None:
            return False
        merged = merge.merge_documents(docs[0], docs[1], docs[2])
        if merged.conflicts:
            return False
        text = Document(merged.meta, merged.body).text()
        doc = app.check(kind, app.workspace.root / rel, text)
        recipients = verified_workspace(app).recipients(kind, doc.meta)
        ours.write_bytes(encrypt(text.encode("utf-8"), recipients))
    except (TalkbookError, OSError, UnicodeDecodeError):
        return False  # unreadable to this key, invalid once merged: resolve it by hand
    return True


def resolve(app: App, ref: str, text: str | None = None) -> str:
    """`talkbook resolve ID`: merge what git could not, in the editor (or from `text`)."""
    ws = app.workspace
    path = ws.resolve(ref)
    rel = app.rel(path)
    kind = kind_of_rel(rel)
    stages = gittrail.unmerged_stages(ws.root, rel)
    if 2 not in stages or 3 not in stages:
        raise TalkbookError(
            _("{document} has no conflict to resolve").format(document=id_of_rel(rel))
        )
    docs = {n: _open(app, gittrail.read_blob(ws.root, blob), rel) for n, blob in stages.items()}
    ours, theirs = docs[2], docs[3]
    if ours is None or theirs is None:
        raise TalkbookError(
            _("{document}: one side was deleted; use git to keep or remove it").format(
                document=id_of_rel(rel)
            )
        )
    merged = merge.merge_documents(docs.get(1), ours, theirs)
    if text is None:
        text = _edit(app, merge.with_conflicts_shown(merged), kind, path)
    merge.check_resolved(text, rel)
    doc = app.check(kind, path, text)
    recipients = verified_workspace(app).recipients(kind, doc.meta)
    app.vault.write(path, text, recipients, force=True)
    gittrail.stage(ws.root, [rel])
    return id_of_rel(rel)


def _edit(app: App, initial: str, kind: str, path: Path) -> str:
    from talkbook.editor import edit_privately
    from talkbook.errors import EditAborted

    def problem(text: str) -> str | None:
        return merge.unresolved(text) or app.problem(kind, path, text)

    edited = edit_privately(
        initial, problem, ask_reopen=app.prompts.reopen_editor, allow_disk=app.prompts.allow_disk
    )
    if edited is None:
        raise EditAborted(_("left unresolved; nothing was changed"))
    return edited


def sync(app: App, remote: str = "origin") -> str:
    """Fetch, merge, check, validate, push; again when the remote moved meanwhile."""
    from talkbook.crypto.signing import signer_for

    ws = app.workspace
    actor = app.actor()
    signer = signer_for(app.keyring.signing_key)
    author = app.author(actor)
    for _attempt in range(ATTEMPTS):
        if gittrail.unfinished(ws.root) == "merge":
            _finish_merge(app, signer, author)
        elif gittrail.unfinished(ws.root):
            raise TalkbookError(
                _("a rebase or cherry-pick is unfinished: finish it with git first")
            )
        else:
            upstream = gittrail.fetch(ws.root, remote)
            checkpoint("sync-fetched")
            if upstream and not gittrail.merge(ws.root, upstream, author, signer):
                _finish_merge(app, signer, author)  # names what is left to resolve
        checkpoint("sync-merged")
        app.ensure_trust()
        _validate(app)
        checkpoint("sync-push")
        if gittrail.push(ws.root, remote):
            return "pushed"
    raise TalkbookError(
        _("{remote} keeps moving; nothing more was pushed, run sync again").format(remote=remote)
    )


def _finish_merge(app: App, signer, author) -> None:
    root = app.workspace.root
    if left := gittrail.unmerged_paths(root):
        ids = ", ".join(sorted({id_of_rel(p) if p.endswith(".age") else p for p in left}))
        raise TalkbookError(
            _(
                "conflicts to resolve: {ids}; run `talkbook resolve ID` for each, then sync again"
            ).format(ids=ids)
        )
    gittrail.commit_merge(root, author, signer)


def _validate(app: App) -> None:
    from talkbook.crosscheck import validate

    findings = validate(app).findings
    if findings:
        raise Findings(
            _(
                "validate found {count} problem(s) after the merge; nothing was pushed "
                "(run `talkbook validate`)"
            ).format(count=len(findings))
        )
