"""The application context: one workspace, one identity, one acting person.

Commands (cli.py) build an App and call its methods; everything here raises TalkbookError
subclasses and never prints. What needs the user (a passphrase, "open the editor again?", "no
tmpfs, use disk?", progress) comes in through Prompts, so the core never imports click.

The write path: one writer at a time, and nothing half-done. Every write happens inside
`App.writing(command)` (the workspace's write lock, lock.py; re-entrant): a command that reads
and then saves enters it before it reads, so nothing it read changes under it; App.save and
App.commit_config enter it themselves. Within it, `App.changing(paths)` journals the paths before
the working tree is touched, puts the files back if the block fails, and clears the journal
after the commit; a write killed halfway leaves the journal for `talkbook doctor`. Security
invariant: the lock and journal name only opaque paths, ids and pids, never content; plaintext
reaches the workspace only encrypted (vault.py), and an editor's decrypted copy only a private
tmpfs folder (editor.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from talkbook import gittrail, workflow
from talkbook.errors import (
    IdentityError,
    InvalidDocument,
    PermissionDenied,
    TalkbookError,
    UnfinishedMerge,
    WorkflowError,
    WorkspaceNotFound,
)
from talkbook.fsutil import checkpoint, read_regular, restore, snapshot
from talkbook.i18n import _, label
from talkbook.models import Document, field_lines, line_of, parse
from talkbook.validation import Finding, Subject, check_document, summary
from talkbook.vault import Vault
from talkbook.workspace import Person, Workspace, find_root, id_of_rel, kind_of_rel

TOOL_AUTHOR = gittrail.Author("talkbook", "talkbook@talkbook.invalid")


def _refuse(_: Any) -> bool:
    return False


_NOT_ASKED = object()


# The value types here are NamedTuples and Prompts a plain class, not dataclasses: every command
# defines them at import, and a dataclass costs about a millisecond each to define.
class Origin(NamedTuple):
    """Where a document's text came from when the user gave it (--from FILE or stdin).

    `text` is None when what is saved is that text itself (its lines are the user's lines);
    otherwise it is the user's text, merged with suggestions before saving.
    """

    name: str
    text: str | None = None

    def relocate(self, findings: list[Finding]) -> list[Finding]:
        lines = field_lines(self.text or "")
        return sorted(
            Finding(self.name, line_of(lines, f.field), f.field, f.message)
            if f.field.split(".")[0] in lines
            else f
            for f in findings
        )


class Pending(NamedTuple):
    """One document of a write that commits several (App.save_together)."""

    kind: str
    path: Path
    text: str
    origin: Origin | None = None


class Committed(NamedTuple):
    """What commit `head` holds at some paths (None: nothing there), as App.save read it: the
    journal takes their blob ids from it instead of asking git again."""

    head: str
    data: dict[str, bytes | None]

    def blobs(self) -> dict[str, str]:
        return {
            rel: gittrail.blob_id(data, self.head)
            for rel, data in self.data.items()
            if data is not None
        }


def _as_they_come(items: Iterable[Any], total: int) -> Iterable[Any]:
    return items


def _say_nothing(text: str) -> None:
    return None


class Prompts:
    """How the core asks the user. The defaults suit scripts: never ask, always refuse."""

    __slots__ = ("passphrase", "reopen_editor", "allow_disk", "progress", "notice")

    def __init__(
        self,
        passphrase: Callable[[], str] | None = None,
        reopen_editor: Callable[[str], bool] = _refuse,
        allow_disk: Callable[[Path], bool] = _refuse,
        progress: Callable[[Iterable[Any], int], Iterable[Any]] = _as_they_come,
        notice: Callable[[str], None] = _say_nothing,
    ) -> None:
        self.passphrase = passphrase
        self.reopen_editor = reopen_editor
        self.allow_disk = allow_disk
        self.progress = progress
        self.notice = notice


class App:
    def __init__(
        self,
        workspace_dir: Path | None = None,
        identity: Path | None = None,
        prompts: Prompts | None = None,
    ):
        self._workspace_dir = workspace_dir
        self._identity = identity
        self.prompts = prompts or Prompts()
        self._workspace: Workspace | None = None
        self._vault: Vault | None = None
        self._trusted = False
        self._signer: Any = None
        self._lock: Any = None  # lock.WriteLock while this App writes
        self.index_seen: Any = None  # index.Seen: the encrypted index as last refreshed here
        self.index_begun: Any = None  # (index.Store, its sweep) started early: index.begin
        self._compiled: Any = _NOT_ASKED  # template_cache.Compiled, or None: see compiled_templates

    # -- context, loaded on first use --------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace(find_root(self._workspace_dir))
        return self._workspace

    @property
    def keyring(self):
        return self.vault.keyring

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            from talkbook.crypto.identity import load_keyring
            from talkbook.errors import WorkspaceNotFound

            keyring = load_keyring(self._identity, self.prompts.passphrase)
            try:  # its files only through fsutil.regular_file; cat of an outside file needs none
                root = self._workspace.root if self._workspace else find_root(self._workspace_dir)
            except WorkspaceNotFound:
                root = None
            self._vault = Vault(keyring, root)
        return self._vault

    @property
    def compiled_templates(self) -> Any:
        """Where compiled templates are kept between commands (template_cache.Compiled; None
        without a key to sign them): asked once, a bulk write renders many documents."""
        if self._compiled is _NOT_ASKED:
            from talkbook.template_cache import for_app

            self._compiled = for_app(self)
        return self._compiled

    @staticmethod
    def now() -> dt.datetime:
        """The clock; TALKBOOK_NOW (ISO datetime) sets it for the demo's fictional history."""
        if fixed := os.environ.get("TALKBOOK_NOW"):
            try:
                return dt.datetime.fromisoformat(fixed).replace(tzinfo=None)
            except ValueError:
                raise TalkbookError(
                    _("TALKBOOK_NOW={value} is not an ISO datetime").format(value=repr(fixed))
                ) from None
        return dt.datetime.now().replace(second=0, microsecond=0)

    def today(self) -> dt.date:
        return self.now().date()

    def ensure_trust(self) -> None:
        """The chain of custody up to HEAD holds (or TrustError): before encrypting to anyone,
        rendering a template or accepting an actor."""
        if not self._trusted:
            from talkbook import trust

            trust.ensure(self.workspace.root, self.prompts.notice)
            self._trusted = True

    def signer(self):
        """How this command's commits are signed: the identity's OpenSSH key."""
        from talkbook.crypto.identity import identity_path
        from talkbook.crypto.signing import signer_for

        with contextlib.suppress(WorkspaceNotFound):  # `init` signs before there is one
            self.refuse_mid_merge()
        if self._signer is None:
            self._signer = signer_for(self.keyring.signing_key, identity_path(self._identity))
        return self._signer

    def prepare_save(self, kind: str, folder: Path | None = None) -> None:
        """What `save` of a `kind` document into `folder` imports, compiles and asks git on its
        way (the schema's validator, the rules across files, the signer; HEAD's trees along the
        folder: gittrail.read_ahead), done ahead: `plan` does it while the index's child sweeps
        the tree, a wait that is then not idle. Nothing is checked here, nor read from the
        working tree; `save` checks everything itself."""
        from talkbook import crosscheck  # noqa: F401  # its rules run in check
        from talkbook.crypto import signing  # noqa: F401  # it signs the commit
        from talkbook.validation import fast_validator

        fast_validator(kind)
        if folder is not None:
            gittrail.read_ahead(self.workspace.root, self.rel(folder))

    def refuse_mid_merge(self) -> None:
        """Writes wait until a merge (or rebase) is finished: the index and tree are git's."""
        if what := gittrail.unfinished(self.workspace.root):
            raise UnfinishedMerge(
                _(
                    "a {what} is unfinished: run `talkbook resolve ID` for each conflicted file "
                    "and `talkbook sync` (or finish the {what} with git); nothing was written"
                ).format(what=what)
            )

    def actor(self) -> Person:
        self.ensure_trust()
        person = self.workspace.person_by_key(self.keyring.public_keys)
        if person is not None and self._lock is not None:
            self._lock.note_person(person.id)
        if person is None:
            key = self.keyring.public_keys[0] if self.keyring.public_keys else "?"
            key = key if len(key) <= 72 else f"{key[:40]}…{key[-12:]}"  # age1pq1 keys are long
            raise IdentityError(
                _(
                    "your identity ({key}) is not a person of this workspace; ask a custodian "
                    "to run `talkbook person add`"
                ).format(key=key)
            )
        return person

    def require_role(self, role: str) -> Person:
        person = self.actor()
        if not person.has_role(role):
            raise PermissionDenied(
                _("{person} is not a {role}").format(person=person.id, role=label("role", role))
            )
        return person

    def author(self, person: Person | None) -> gittrail.Author:
        return gittrail.Author(person.name, person.address) if person else TOOL_AUTHOR

    # -- the write path: one writer, journaled -------------------------------------------------
    @contextlib.contextmanager
    def writing(self, command: str = "talkbook") -> Iterator[None]:
        """Hold the workspace's write lock for the block (re-entrant within this App).

        Enter it before reading what will be changed. Once held, a journal left by a killed
        write makes it refuse (InterruptedWork: run `talkbook doctor`), except for doctor.
        """
        if self._lock is not None:
            yield
            return
        from talkbook import lock

        root = self._workspace.root if self._workspace else find_root(self._workspace_dir)
        git_dir = gittrail.git_dir(root)
        held = lock.WriteLock.acquire(git_dir, command)
        self._lock = held
        try:
            if command != "talkbook doctor":
                lock.refuse_if_interrupted(git_dir)
            yield
        finally:
            self._lock = None
            held.release()

    @contextlib.contextmanager
    def changing(self, paths: list[Path], known: Committed | None = None) -> Iterator[None]:
        """The one way the write path touches the working tree; the block ends with the commit.

        Under the lock: the journal records the paths (and what HEAD holds there) before
        anything is written; if the block fails the files are put back, their index entries too,
        and the journal goes; once the block is through (committed), the journal goes. A process
        killed inside leaves the journal: `talkbook doctor` finishes or rolls back. What HEAD
        holds is asked of git unless `known` says it, for these paths and this very HEAD.
        """
        from talkbook import lock

        with self.writing():
            root = self.workspace.root
            git_dir = gittrail.git_dir(root)
            rels = [self.rel(path) for path in paths]
            start = gittrail.head(root)
            if known is not None and known.head == start and set(known.data) == set(rels):
                blobs = known.blobs()
            else:
                blobs = gittrail.blobs_at(root, start, rels) if start else {}
            journal = lock.Journal(
                operation=self._lock.command,
                pid=os.getpid(),
                person=self._lock.person,
                started=dt.datetime.now().replace(microsecond=0).isoformat(),
                head=start,
                paths={rel: blobs.get(rel, lock.ABSENT) for rel in rels},
            )
            saved = snapshot(paths, root)  # UnsafePath for a symlink, before anything is written
            lock.begin(git_dir, journal)
            checkpoint("journal")
            try:
                yield
            except BaseException:
                restore(saved)  # if this fails, the journal stays for `talkbook doctor`
                settled = True
                if gittrail.head(root) == start:  # not committed: unstage what git add staged
                    try:
                        gittrail.restore_index(root, rels)
                    except Exception:  # git busy: the journal stays for `talkbook doctor`
                        settled = False
                if settled:
                    lock.clear(git_dir)
                raise
            checkpoint("committed")
            lock.clear(git_dir)
        if self.index_seen is not None:  # the index learns what was written (a cache)
            from talkbook.index import note_written

            note_written(self, paths)

    # -- documents ----------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        return self.workspace.relative(path)

    def check(self, kind: str, path: Path, text: str, origin: Origin | None = None) -> Document:
        """Parse and validate; raise InvalidDocument carrying every finding.

        The rules are `validate`'s, for this one file: its own checks, then (once its shape is
        sound) the rules across files against the workspace. With an `origin`, findings point
        at the user's own file (--from) where they can.
        """
        rel = origin.name if origin and origin.text is None else self.rel(path)
        doc = parse(text, rel)
        findings = check_document(Subject(kind, rel, doc, text), self.workspace)
        if not findings:
            from talkbook.crosscheck import document_findings

            here = self.rel(path)
            findings = [
                Finding(rel, f.line, f.field, f.message) if f.path == here else f
                for f in document_findings(self, Subject(kind, here, doc, text))
            ]
        if findings and origin and origin.text is not None:
            findings = origin.relocate(findings)
        if findings:
            raise InvalidDocument(summary(findings), findings)
        return doc

    def problem(self, kind: str, path: Path, text: str) -> str | None:
        try:
            self.check(kind, path, text)
        except InvalidDocument as exc:
            return str(exc)
        return None

    def save(
        self,
        kind: str,
        path: Path,
        text: str,
        message: str,
        actor: Person | None = None,
        origin: Origin | None = None,
    ) -> bool:
        """Validate, encrypt to the access rule's readers, write atomically, commit once.

        Returns False, writing and committing nothing, when the plaintext is what HEAD holds.
        "Unchanged" is judged against the commit, not only the working file: a file written
        but never committed (a write killed before its commit) is committed now, or put back
        to HEAD's version when that is the text wanted; it is never stranded.
        """
        with self.writing():
            doc = self.check(kind, path, text, origin)
            self.ensure_trust()
            recipients = self.workspace.recipients(kind, doc.meta)
            author = self.author(actor or self.actor())
            signer = self.signer()
            root, rel, plaintext = self.workspace.root, self.rel(path), text.encode("utf-8")
            try:
                current: bytes | None = read_regular(root, path)
            except FileNotFoundError:
                current = None
            start = gittrail.head(root)
            committed = gittrail.committed(root, rel, start) if start else None
            known = Committed(start, {rel: committed}) if start else None
            if current is not None and current == committed:
                if self.vault.read_plaintext(path) == plaintext:
                    return False
            elif committed is not None and self._plaintext_of(committed) == plaintext:
                with self.changing([path], known):  # the stray working file goes; HEAD has it
                    gittrail.restore_to_head(root, [rel])
                return False
            with self.changing([path], known):
                # a stray working file (not HEAD's) is re-encrypted even if its text is this
                self.vault.write(path, text, recipients, force=current != committed)
                checkpoint("commit")
                gittrail.commit(root, [path], message, author, signer)
        return True

    def save_together(self, documents: list[Pending], message: str, actor: Person) -> None:
        """Several documents in one commit (a record and its plan, now held): each checked with
        the ones before it already in place, each encrypted to its own kind's readers; all or
        nothing (a failed check puts every file back)."""
        with self.writing():
            self.ensure_trust()
            author, signer = self.author(actor), self.signer()
            paths = [document.path for document in documents]
            with self.changing(paths):
                for document in documents:
                    kind, path, text = document.kind, document.path, document.text
                    doc = self.check(kind, path, text, document.origin)
                    self.vault.write(path, text, self.workspace.recipients(kind, doc.meta))
                checkpoint("commit")
                gittrail.commit(self.workspace.root, paths, message, author, signer)

    def _committed_text(self, path: Path, working: str) -> tuple[str, bool]:
        """(the text HEAD holds for `path`, whether the working file strays from HEAD's).

        The text is `working` when the file is HEAD's own, or HEAD has none, or HEAD's cannot
        be read with this key."""
        committed = gittrail.committed(self.workspace.root, self.rel(path))
        if committed is None or committed == read_regular(self.workspace.root, path):
            return working, False
        plaintext = self._plaintext_of(committed)
        try:
            return (working if plaintext is None else plaintext.decode("utf-8")), True
        except UnicodeDecodeError:
            return working, True

    def _plaintext_of(self, ciphertext: bytes) -> bytes | None:
        from talkbook.crypto import decrypt
        from talkbook.errors import DecryptionError

        try:
            return decrypt(ciphertext, self.keyring)
        except DecryptionError:
            return None

    def commit_config(self, change: Callable[[], None], message: str, actor: Person) -> None:
        """Change talkbook.toml and commit it, or leave it as it was."""
        with self.writing():
            ws = self.workspace
            self.ensure_trust()
            signer = self.signer()
            with self.changing([ws.config_path]):
                change()
                checkpoint("commit")
                gittrail.commit(ws.root, [ws.config_path], message, self.author(actor), signer)
            from talkbook import trust

            trust.write_allowed_signers(ws.root, ws.config)

    def read(self, path: Path) -> Document:
        """A document past its kind's schema (catalog.checked): logic reads well-typed fields."""
        from talkbook.catalog import checked

        rel = self.rel(path)
        return checked(kind_of_rel(rel), rel, self.vault.read_text(path))

    def edit_text(self, initial: str, kind: str, path: Path) -> str | None:
        """The user's editor on a private copy; validation on save with re-open or abort.

        The file's own checks come first, then the rules of an edit against `initial` (so a
        forged workflow step is named as such), then the rules across files: all of `check`."""
        from talkbook.editor import edit_privately

        def problem(text: str) -> str | None:
            try:
                after = parse(text)
            except InvalidDocument:
                return self.problem(kind, path, text)  # malformed: check() says where
            if not check_document(Subject(kind, self.rel(path), after, text), self.workspace):
                try:
                    self.guard_edit(kind, path, parse(initial), after)
                except InvalidDocument as exc:
                    return str(exc)
            return self.problem(kind, path, text)

        return edit_privately(
            initial,
            problem,
            ask_reopen=self.prompts.reopen_editor,
            allow_disk=self.prompts.allow_disk,
        )

    def edit(self, ref: str, replacement: str | None = None) -> tuple[str, bool, str | None]:
        """`talkbook edit ID [--from]`: returns (id, changed, what else changed: a sentence for
        the user, or None). Editor unless a replacement. A held talk's plan is refused."""
        path = self.workspace.resolve(ref)
        rel = self.rel(path)
        kind, doc_id = kind_of_rel(rel), id_of_rel(rel)
        actor = self.actor()
        original = self.vault.read_text(path)
        if kind == "plan" and _held(path, original):
            raise WorkflowError(
                _("{talk}: held; its plan no longer changes (add to the record with "
                  "`talkbook addendum`)").format(talk=doc_id)
            )  # fmt: skip
        edited = replacement if replacement is not None else self.edit_text(original, kind, path)
        if edited is None:
            edited = original
        # The edit is measured against what HEAD holds: a working file written but never
        # committed (a write killed before its commit) is not the base, and never stranded.
        base, stray = self._committed_text(path, original)
        if edited == base:
            if stray:  # the stray file goes back to HEAD's, which has this text
                self.save(kind, path, edited, f"{_noun(kind)} {doc_id}: edited", actor)
            return doc_id, False, None
        before, after = parse(base, rel), parse(edited)
        self.guard_edit(kind, path, before, after)
        action, turn = "edited", None
        if kind == "plan" and (
            reopened := workflow.reopen_after_edit(before, after, actor, self.now())
        ):
            edited, action = reopened.text(), "edited, back to draft"
            turn = workflow.reopen_notice(doc_id, before.meta.get("status"))
        changed = self.save(kind, path, edited, f"{_noun(kind)} {doc_id}: {action}", actor)
        return doc_id, changed, turn if changed else None

    def guard_edit(self, kind: str, path: Path, before: Document, after: Document) -> None:
        """Rules that compare an edit with what it replaces."""
        if before.meta.get("id") != after.meta.get("id"):
            raise InvalidDocument(
                _("{path}: id: an id cannot be changed").format(path=self.rel(path))
            )
        for field_name, commands in workflow.WORKFLOW_FIELDS.get(kind, {}).items():
            if before.meta.get(field_name) != after.meta.get(field_name):
                raise InvalidDocument(
                    _("{path}: {field}: changes only through {commands}").format(
                        path=self.rel(path), field=field_name, commands=commands
                    )
                )
        if kind == "record" and (problem := workflow.confirmed_rewrite(before, after)):
            raise InvalidDocument(f"{self.rel(path)}: {problem}")

    def cat(self, ref: str) -> bytes:
        """Decrypted bytes of an id or a path; a path outside any workspace needs no workspace."""
        path = Path(ref)
        if not path.is_file():
            path = self.workspace.resolve(ref)
        return self.vault.read_plaintext(path)

    # -- people ---------------------------------------------------------------------------------
    def add_person(
        self,
        pid: str,
        name: str,
        roles: list[str],
        keys: list[str],
        email: str = "",
        cadre: str | None = None,
    ) -> Person:
        """The first person may be added by anyone (bootstrap); after that, by a custodian."""
        from talkbook.crypto import parse_recipient
        from talkbook.workspace import ROLES

        ws = self.workspace
        for role in roles:
            if role not in ROLES:
                raise TalkbookError(
                    _("unknown role {role}: choose from {roles}").format(
                        role=repr(role), roles=", ".join(ROLES)
                    )
                )
        for key in keys:
            parse_recipient(key)
        if ws.people:
            actor: Person | None = self.require_role("custodian")
        else:
            self._founder(roles, keys)
            actor = None
        existing = ws.people.get(pid)
        owner = ws.person_by_key(list(keys))
        if owner is not None and owner.id != pid:
            raise TalkbookError(
                _("that key is {person}'s; a key belongs to one person").format(person=owner.id)
            )
        person = Person(pid, name, tuple(roles), tuple(keys), email, cadre)
        action = "updated" if existing else "added"
        self.commit_config(
            lambda: ws.add_person(person), f"person {pid}: {action}", actor or person
        )
        return person

    def _founder(self, roles: list[str], keys: list[str]) -> None:
        """The first person is the custodian who adds themselves: their signed commit is the
        root every clone pins (see trust.py)."""
        from talkbook.workspace import key_core

        mine = {key_core(k) for k in self.keyring.public_keys}
        if "custodian" not in roles or not mine & {key_core(k) for k in keys}:
            raise PermissionDenied(
                _(
                    "the first person must be you, as a custodian, with your own key "
                    "(--role custodian --key <your public line>)"
                )
            )
        self.signer()  # the founding commit must be signed: say so before writing anything

    def migrate(self, old_identity: Path | None) -> str:
        """`talkbook migrate`: a custodian's signed commit becomes the root of a workspace made
        before signing; with `old_identity`, their new key joins their entry first."""
        from talkbook import trust
        from talkbook.crypto import Keyring

        with self.writing():
            ws = self.workspace
            if trust.pinned(ws.root).get("root") or trust.find_root(ws.root):
                raise TalkbookError(
                    _("this workspace has a root of trust already; nothing to migrate")
                )
            signer = self.signer()
            person = ws.person_by_key(self.keyring.public_keys)
            joined = None
            if person is None and old_identity is not None:
                old = Keyring.from_file(old_identity, self.prompts.passphrase)
                person = ws.person_by_key(old.public_keys)
                if person is not None and person.has_role("custodian"):
                    keys = (*person.keys, signer.public)
                    joined = Person(
                        person.id, person.name, person.roles, keys, person.email, person.cadre
                    )
            if person is None or not person.has_role("custodian"):
                raise PermissionDenied(
                    _(
                        "migrate is run by a custodian: use a key talkbook.toml lists for you, "
                        "or prove who you are with --from-identity OLD_KEY"
                    )
                )
            with self.changing([ws.config_path]):
                if joined is not None:
                    ws.add_person(joined)
                checkpoint("commit")
                sha = gittrail.commit(
                    ws.root, [ws.config_path], f"person {person.id}: signs the workspace's root",
                    self.author(person), signer, allow_empty=True,
                )  # fmt: skip
            trust.pin(ws.root, sha)
            trust.write_allowed_signers(ws.root, ws.config)
        return sha

    def remove_person(self, pid: str) -> None:
        """A custodian marks someone as left; `rekey` then takes them off every file.

        They stay in talkbook.toml (`left = date`) so their past decisions stay attributable.
        What they could read before stays readable to them in git history: removal protects
        what is written from now on.
        """
        ws = self.workspace
        actor = self.require_role("custodian")
        person = ws.person(pid)
        if person.left:
            raise TalkbookError(
                _("{person} left on {day} already").format(person=pid, day=person.left)
            )
        custodians = [p for p in ws.with_role("custodian") if p.id != pid]
        if person.has_role("custodian") and not custodians:
            raise PermissionDenied(
                _("{person} is the last custodian; add another one first").format(person=pid)
            )
        day = self.today().isoformat()
        self.commit_config(lambda: ws.mark_left(pid, day), f"person {pid}: removed", actor)


def _held(plan_path: Path, text: str) -> bool:
    """A talk is held once its record exists (plans from before `held` stay approved under it);
    a plan that does not parse is not judged here: the edit that repairs it is allowed."""
    if (plan_path.parent / "record.md.age").exists():
        return True
    try:
        return parse(text).meta.get("status") == workflow.HELD
    except InvalidDocument:
        return False


def _noun(kind: str) -> str:
    return "cadre" if kind == "profile" else kind


def init_workspace(root: Path, locale: str, organization: str, signer: Any = None) -> Path:
    """`talkbook init`: layout, git repo, drivers and hook, one commit (signed by the founder's
    key when there is one: `talkbook keygen` before `init`)."""
    from talkbook.workspace import create_layout

    root = root.resolve()
    written = create_layout(root, locale, organization)
    gittrail.init_repo(root)
    gittrail.setup(root)
    from talkbook import trust

    trust.configure_signing(root, {})
    gittrail.commit(root, written, "workspace: initialized", TOOL_AUTHOR, signer)
    return root
