"""`talkbook calendar`: approved talks not yet held, as iCalendar on stdout or in a file.

Only parses, calls `calendar_export` and writes: stdout, or with --out an owner-only file
(0600) written atomically, so a half-written or world-readable calendar never exists.
"""

from __future__ import annotations

from pathlib import Path

import click

from talkbook.app import App
from talkbook.cli._shared import cli, pass_app


@cli.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (owner-only, 0600) instead of stdout.",
)
@click.option(
    "--details",
    is_flag=True,
    help="Add the cadre's name (if you can read the profile) and the place: confidential.",
)
@pass_app
def calendar(app: App, out: Path | None, details: bool) -> None:
    """Approved talks not yet held, as an iCalendar file for a calendar application.

    Each event carries the talk id, the planned time (floating local time), one hour, and a
    neutral title; no name, place, occasion or focus unless --details is given. Only the
    plans your identity can decrypt are included.

    \b
    Example: talkbook calendar --out build/talks.ics
    """
    from talkbook.calendar_export import export
    from talkbook.fsutil import atomic_write
    from talkbook.views import skipped_note

    data, catalog = export(app, details)
    if out is None:
        click.echo(data, nl=False)  # bytes: the CRLF lines as they are
    else:
        atomic_write(out, data, mode=0o600)
    for note in skipped_note(catalog):
        click.echo(note, err=True)
