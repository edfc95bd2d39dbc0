"""`talkbook index`: build or refresh the encrypted index of front matter (index.py).

Every read command refreshes the index on its own; this command does it explicitly (after a
large pull, say) and says what it did in one line on stderr: counts only, never a name.
"""

from __future__ import annotations

import click

from talkbook.app import App
from talkbook.cli._shared import cli, pass_app


@cli.command("index")
@pass_app
def index_command(app: App) -> None:
    """Build or refresh the encrypted index that list, due and reports read.

    Only files whose bytes changed since the last run are decrypted again. The index lives in
    .talkbook/ (ignored by git), encrypted to your own key and readable by you only.

    \b
    Example: talkbook index
    """
    from talkbook.i18n import _
    from talkbook.index import refresh

    summary = refresh(app)
    line = _(
        "index: {files} files, {decrypted} decrypted now, {cached} from the index, "
        "{unreadable} not readable with your identity"
    ).format(
        files=summary.files,
        decrypted=summary.decrypted,
        cached=summary.cached,
        unreadable=summary.unreadable,
    )
    click.echo(f"talkbook: {line}", err=True)
