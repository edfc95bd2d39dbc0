"""Several officers on one remote: sync, resolve, and git's merge driver (hidden)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from talkbook.app import App
from talkbook.cli._shared import cli, from_option, pass_app, writes
from talkbook.i18n import _


@cli.command()
@click.option("--remote", default="origin", show_default=True, help="The shared remote.")
@pass_app
@writes
def sync(app: App, remote: str) -> None:
    """Fetch, merge (encrypted files field by field), validate and push; again if it moved.

    A field changed two ways is a true conflict: the file stays unmerged, `talkbook resolve ID`
    finishes it, and `talkbook sync` then concludes the merge and pushes.

    \b
    Example: talkbook sync --remote origin
    """
    from talkbook.sync import sync as run

    click.echo(run(app, remote))


@cli.command()
@click.argument("ref", metavar="ID")
@from_option
@pass_app
@writes
def resolve(app: App, ref: str, source: str | None) -> None:
    """Resolve a conflicted document in your editor, on a private decrypted copy.

    The copy shows the merge: ours where a field was changed two ways, theirs beside it as a
    comment, and conflict markers in the body. Save it without markers to stage it.

    \b
    Example: talkbook resolve C-7k2m9q
    """
    from talkbook.cli.talks import text_or_editor
    from talkbook.sync import resolve as run

    text = text_or_editor(source)
    click.echo(_("{document}: resolved and staged").format(document=run(app, ref, text)))


@cli.command("merge-driver", hidden=True)
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("ours", type=click.Path(path_type=Path))
@click.argument("theirs", type=click.Path(path_type=Path))
@click.argument("rel")
@pass_app
def merge_driver(app: App, base: Path, ours: Path, theirs: Path, rel: str) -> None:
    """git's merge driver for *.md.age: exit 0 merged, 1 a conflict left for `talkbook resolve`."""
    from talkbook.sync import run_driver

    sys.exit(0 if run_driver(app, base, ours, theirs, rel) else 1)
