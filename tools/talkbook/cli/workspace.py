"""Workspace commands: init, setup, keygen, people, cadres, and reading, editing and history of
any document."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from talkbook.app import App
from talkbook.cli._shared import (
    cli,
    emit_id,
    from_option,
    pass_app,
    source_name,
    writes,
)
from talkbook.cli.talks import text_or_editor
from talkbook.i18n import _


# -- workspace ------------------------------------------------------------------------------
@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--locale", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
@click.option("--org", "organization", default="", help="Organization name.")
@pass_app
def init(app: App, directory: Path, locale: str, organization: str) -> None:
    """Create a workspace: git repo, talkbook.toml, folders, templates, hooks.

    Run `talkbook keygen` first: the first commit is then signed with your key, and you add
    yourself as the first custodian next.

    \b
    Example: talkbook init records --locale zh-CN --org "市委组织部"
    """
    from talkbook.app import init_workspace
    from talkbook.errors import IdentityError

    try:
        signer = app.signer()
    except IdentityError:
        signer = None
    root = init_workspace(directory, locale, organization, signer)
    click.echo(_("initialized talkbook workspace in {root}").format(root=root))
    if signer is None:
        click.echo(_("note: no signing key yet, so this first commit is unsigned (keygen first)"))
    click.echo(
        _("next: talkbook person add <ID> --name … --role custodian --key <your public line>")
    )


@cli.command()
@click.option("--trust", "trust_id", metavar="COMMIT", help="Pin this root without asking.")
@pass_app
@writes
def setup(app: App, trust_id: str | None) -> None:
    """Configure git in a fresh clone and pin the workspace's root of trust.

    Sets up the decrypting diff driver, the pre-commit hook and git's SSH signature checking
    (allowed signers from talkbook.toml, so `git log --show-signature` works). The root is the
    first commit a custodian signed: compare the id shown with one a custodian gives you out of
    band, or pass it with --trust to pin it without asking.

    \b
    Example: git clone … records && cd records && talkbook setup --trust 3f2a9c1e0b7d
    """
    from talkbook import gittrail, trust

    root = app.workspace.root
    for item in gittrail.setup(root):
        click.echo(_("configured {item}").format(item=item))
    trust.configure_signing(root, {})  # who signed what: filled from verified settings below
    click.echo(_("configured gpg.ssh.allowedSignersFile"))
    key = _own_signing_key(app)
    if key is not None:  # your hand-made commits are signed too, as the chain needs
        gittrail.configure(root, {"user.signingkey": str(key), "commit.gpgsign": "true"})
        click.echo(_("configured user.signingkey"))

    def confirm(candidate: str) -> bool:
        click.echo(_("root of trust: {root}").format(root=candidate), err=True)
        if not sys.stdin.isatty():
            return True  # pinned on first use, as SSH does with a new host key
        return click.confirm(_("Does a custodian confirm this id? Trust it"), err=True)

    pinned = trust.setup_root(root, trust_id, confirm)
    if pinned is None:
        click.echo(_("no root yet: the first custodian's `person add` makes it"))
        return
    app.ensure_trust()
    trust.write_allowed_signers(root, trust.head_config(root))
    click.echo(_("root of trust: {root}").format(root=pinned))


def _own_signing_key(app: App) -> Path | None:
    """Your unprotected OpenSSH key file, if that is your identity (a protected one is asked
    for by talkbook's own commands, not by every plain `git commit`)."""
    from talkbook.errors import TalkbookError

    app.prompts.passphrase = None
    try:
        key = app.keyring.signing_key
    except TalkbookError:
        return None
    return key.path if key is not None and not key.protected else None


@cli.command()
@click.option(
    "--from-identity",
    "old_identity",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your old (age X25519) identity file, which talkbook.toml lists for you.",
)
@pass_app
@writes
def migrate(app: App, old_identity: Path | None) -> None:
    """Bring a workspace from before signing under the chain of custody, in one command.

    A custodian runs it with their new key (`talkbook keygen`) as identity. With --from-identity,
    the old identity proves who they are and the new key's public line is added to their entry;
    the signed commit becomes the root every clone pins. Others get new keys through
    `person add` afterwards; run `talkbook rekey` once everyone has one.

    \b
    Example: talkbook migrate --from-identity old-identity.txt
    """
    root = app.migrate(old_identity)
    click.echo(_("root of trust: {root}").format(root=root))


@cli.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Identity file to write [default: ~/.config/talkbook/identity.txt].",
)
@click.option("--passphrase", is_flag=True, help="Protect the key with a passphrase.")
def keygen(out: Path | None, passphrase: bool) -> None:
    """Create your key (OpenSSH ed25519, mode 0600) and print its public line.

    One key reads and signs: age encrypts to it (`age -d -i KEY` reads what talkbook wrote)
    and git signs your commits with it. Give the public line to `person add --key`.

    \b
    Example: talkbook keygen --out ~/.config/talkbook/identity.txt
    """
    from talkbook.crypto import generate_key_file
    from talkbook.crypto.identity import identity_path

    target = out or identity_path(None)
    secret = None
    if passphrase:
        secret = click.prompt(_("Passphrase"), hide_input=True, confirmation_prompt=True, err=True)
    public = generate_key_file(target, secret)
    click.echo(_("wrote {target}").format(target=target), err=True)
    click.echo(public)


@cli.group()
def person() -> None:
    """People of the workspace: staff with roles and public keys.

    \b
    Example: talkbook person add P-02 --name 陈建国 --role approver --key age1…
    """


@person.command("add")
@click.argument("pid", metavar="ID")
@click.option("--name", required=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(["custodian", "approver", "speaker", "recorder"]),
)
@click.option("--key", "keys", multiple=True, required=True, help="age1… or ssh-ed25519 … key.")
@click.option("--email", default="")
@click.option("--cadre", default=None, help="Their own cadre id, if they are a cadre too.")
@pass_app
@writes
def person_add(
    app: App,
    pid: str,
    name: str,
    roles: tuple[str, ...],
    keys: tuple[str, ...],
    email: str,
    cadre: str | None,
) -> None:
    """Add a person (or update one) in talkbook.toml; one commit.

    The first person can be added by anyone; after that only a custodian adds people. New
    readers get access to existing files after `talkbook rekey`.

    \b
    Example: talkbook person add P-01 --name 王芳 --role custodian --key age1…
    """
    added = app.add_person(pid, name, list(roles), list(keys), email, cadre)
    if app.workspace.encrypted_files():
        click.echo(_("existing files reach new readers after `talkbook rekey`"), err=True)
    emit_id(added.id)


@person.command("remove")
@click.argument("pid", metavar="ID")
@pass_app
@writes
def person_remove(app: App, pid: str) -> None:
    """Remove a person (custodians only); then run `talkbook rekey`.

    Files written from then on are not encrypted to them; what they could read before stays
    in git history.

    \b
    Example: talkbook person remove P-04 && talkbook rekey
    """
    app.remove_person(pid)
    click.echo(
        _("removed {person}; run `talkbook rekey` to take them off existing files").format(
            person=pid
        )
    )


@person.command("list")
@pass_app
def person_list(app: App) -> None:
    """List people, their roles and keys: the current ones, then those who left (with the day).

    \b
    Example: talkbook person list
    """
    app.ensure_trust()
    people = app.workspace.people.values()
    for p in [*(p for p in people if not p.left), *(p for p in people if p.left)]:
        line = f"{p.id}\t{p.name}\t{','.join(p.roles)}\t{len(p.keys)} key(s)"
        click.echo(f"{line}\tleft {p.left}" if p.left else line)


# -- cadres ---------------------------------------------------------------------------------
@cli.group()
def cadre() -> None:
    """Cadre profiles.

    \b
    Example: talkbook cadre new --from 张伟.md
    """


@cadre.command("new")
@from_option
@pass_app
@writes
def cadre_new(app: App, source: str | None) -> None:
    """Add a profile: from a file, or in your editor on the locale's template.

    \b
    Example: talkbook cadre new --from 张伟.md
    """
    from talkbook.profiles import new_cadre

    text = text_or_editor(source)
    emit_id(new_cadre(app, text, source_name(source) if source else None))


@cadre.command("retire")
@click.argument("ref", metavar="CADRE")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The day they retired [default: today].")
@pass_app
@writes
def cadre_retire(app: App, ref: str, day: str | None) -> None:
    """Retire a cadre: the profile is kept (encrypted) with its talks; from that day on nothing
    of theirs is due, and they get no new plans or events. One commit. Custodians only.

    \b
    Example: talkbook cadre retire 张伟 --date 2026-12-31
    """
    from talkbook.cli._shared import parse_date
    from talkbook.i18n import _
    from talkbook.names import resolve_cadre
    from talkbook.profiles import retire_cadre

    cadre_id = resolve_cadre(app, ref)
    still_open = retire_cadre(app, cadre_id, parse_date(day))
    click.echo(_("{cadre}: retired").format(cadre=cadre_id))
    if still_open:
        app.prompts.notice(
            _("{cadre}: open plans {talks} are left as they are; cancel them if need be").format(
                cadre=cadre_id, talks=", ".join(still_open)
            )
        )


# -- any file -------------------------------------------------------------------------------
@cli.command("cat")
@click.argument("ref", metavar="ID|PATH")
@pass_app
def cat_command(app: App, ref: str) -> None:
    """Print a decrypted file (an id like C-…, T-…, T-…/record, or a path).

    \b
    Example: talkbook cat T-k3x9p2/record
    """
    from talkbook.names import resolve_document

    data = app.cat(ref if Path(ref).is_file() else resolve_document(app, ref))
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


@cli.command()
@click.argument("ref", metavar="ID")
@from_option
@pass_app
@writes
def edit(app: App, ref: str, source: str | None) -> None:
    """Edit a profile, plan or record in $VISUAL/$EDITOR; validated on save.

    The decrypted copy lives in a private tmpfs folder and is wiped however the editor ends.
    With --from, the file's whole content replaces the document (validated the same way).

    \b
    Example: EDITOR=vim talkbook edit C-7k2m9q
    """
    from talkbook.names import resolve_document

    ref = resolve_document(app, ref)  # a cadre's name → its id
    if source is None:
        app.workspace.resolve(ref)  # an unknown id is said before a missing terminal
    doc_id, changed, turn = app.edit(ref, text_or_editor(source))
    click.echo(f"{doc_id}: {'saved' if changed else 'unchanged'}", err=True)
    if turn:  # more changed than the user asked for: said last, never silently
        app.prompts.notice(turn)


@cli.command()
@click.argument("ref", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_app
def history(app: App, ref: str, fmt: str) -> None:
    """Who did what, when, and which fields changed.

    \b
    Example: talkbook history T-k3x9p2
    """
    from talkbook.history import story
    from talkbook.names import resolve_document
    from talkbook.views import terminal_safe

    steps = story(app, resolve_document(app, ref))
    if fmt == "json":
        click.echo(json.dumps([s.as_dict() for s in steps], ensure_ascii=False, indent=2))
        return
    for step in steps:
        fields = ", ".join(step.changed) if step.changed else ""
        if not step.readable:
            fields = "(not readable with your key)"
        line = f"{step.when}  {step.author}  {step.message}"
        if not step.verified:
            by = f"signed by {step.signed_by}" if step.signed_by else "no signature of a person"
            line += f"  (UNVERIFIED: {by})"
        click.echo(terminal_safe(line + (f"  [{fields}]" if fields else "")))


@cli.command()
@pass_app
@writes
def rekey(app: App) -> None:
    """Re-encrypt exactly the files whose readers changed; one commit. Custodians only.

    \b
    Example: talkbook person add P-04 --name 李强 --role custodian --key age1… && talkbook rekey
    """
    from talkbook.history import rekey as run_rekey

    result = run_rekey(app)
    if result.unreadable:
        click.echo(
            _("skipped {count} file(s) you cannot read").format(count=len(result.unreadable)),
            err=True,
        )
    click.echo(_("rekeyed {count} file(s)").format(count=len(result.rewritten)))


@cli.command()
@pass_app
@writes
def doctor(app: App) -> None:
    """Finish or roll back a command that was killed halfway, and say what was done.

    A command that writes journals what it is about to change (under .git/talkbook/) and
    clears the journal once committed. Killed in between, it leaves the journal, and every
    command that writes refuses until doctor has run: if the commit was made, doctor only
    clears the journal; otherwise it puts the journaled files back as HEAD has them (so the
    workspace is exactly as before the command), and removes the temp files the command left.
    Needs no key: doctor never decrypts.

    \b
    Example: talkbook doctor
    """
    from talkbook import gittrail
    from talkbook.doctor import recover

    root = app.workspace.root
    for line in recover(root, gittrail.git_dir(root)):
        click.echo(line)
    swept = click.get_current_context().meta.get("swept") or []
    if swept:
        click.echo(
            _("wiped {count} private folder(s) that killed talkbook commands left").format(
                count=len(swept)
            )
        )


@cli.command(hidden=True)
@click.argument("path", type=click.Path(path_type=Path))
def textconv(path: Path) -> None:
    """git diff driver as older clones call it; `talkbook setup` points git at the light one."""
    from talkbook import textconv as driver

    identity = click.get_current_context().find_root().params.get("identity")
    sys.stdout.buffer.write(driver.convert(str(path), str(identity) if identity else None))


@cli.command()
@pass_app
def unlock(app: App) -> None:
    """Ask your key's passphrase once and keep the key open in the talkbook agent.

    Commands and `git log -p` then use the agent and ask no more, until `talkbook lock` or
    TALKBOOK_AGENT_TIMEOUT seconds (default 900) without use. Any command that needs the key
    does the same on its own; unlock is for starting a session, e.g. before `git log -p`.

    \b
    Example: talkbook unlock && git log -p
    """
    from talkbook.crypto import agent
    from talkbook.crypto.identity import identity_path
    from talkbook.i18n import _

    path = identity_path(click.get_current_context().find_root().params.get("identity"))
    done = agent.unlock(path, app.prompts.passphrase)
    minutes = max(1, round(agent.idle_timeout() / 60))
    if done == "not-protected":
        click.echo(_("{path} has no passphrase: nothing to unlock").format(path=path))
    elif done == "already":
        click.echo(_("already unlocked: the agent holds {path}").format(path=path))
    else:
        click.echo(
            _("unlocked: the agent holds {path} until `talkbook lock` or {minutes} min unused")
            .format(path=path, minutes=minutes)
        )  # fmt: skip


@cli.command()
def lock() -> None:
    """Make the talkbook agent forget your key now; the next command asks the passphrase.

    \b
    Example: talkbook lock
    """
    from talkbook.crypto import agent
    from talkbook.i18n import _

    if agent.stop():
        click.echo(_("locked: the agent forgot the key"))
    else:
        click.echo(_("no agent was running"))
