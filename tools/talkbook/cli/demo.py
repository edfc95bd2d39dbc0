"""`talkbook demo DIR`: build a fictional workspace, walk it through the main job, show it."""

from __future__ import annotations

from pathlib import Path

import click

from talkbook.cli._shared import cli
from talkbook.i18n import _


def _heading(title: str) -> None:
    click.echo("")
    click.echo(f"== {title} ".ljust(100, "="))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cadres", default=12, show_default=True, help="How many fictional cadres.")
@click.option("--talks", "talks_count", default=16, show_default=True, help="How many talks.")
@click.option("--locale", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
@click.option(
    "--bulk/--story",
    default=None,
    help="Bulk: a few signed commits per phase (the default above 100 talks). "
    "Story: one commit per action, then the tour (the default up to 100 talks).",
)
def demo(directory: Path, cadres: int, talks_count: int, locale: str, bulk: bool | None) -> None:
    """Build a fictional workspace at DIR (keys in DIR.keys/) and run the whole job on it.

    Staff with their own keys log occasions, draft plans, approve (and once reject), hold and
    record talks over several months; then the tour: keys, git log, a decrypted plan history,
    an outsider failing to read, `due` and `validate`. Everything in it is invented.

    A large demo (--bulk, the default above 100 talks) makes the same documents with the same
    builders, written on every core and committed a period, a stage and a person at a time.

    \b
    Example: talkbook demo build/demo
             talkbook demo build/bench --cadres 2000 --talks 10000
    """
    from talkbook.demo import build, sections, usage_text

    click.echo(_("building a fictional workspace in {folder} …").format(folder=directory), err=True)
    built = build(directory, cadres, talks_count, locale, bulk)
    rate = built.commits / built.seconds if built.seconds else 0.0
    click.echo(
        _(
            "built {cadres} cadres and {talks} talks: {commits} commits in {seconds:.1f} s "
            "({rate:.0f} commits/s); the demo's today is {today}"
        ).format(
            cadres=len(built.cadres),
            talks=len(built.talks),
            commits=built.commits,
            seconds=built.seconds,
            rate=rate,
            today=f"{built.today:%Y-%m-%d %H:%M}",
        )
    )
    if built.bulk is not None:
        outcomes = ", ".join(f"{n} {what}" for what, n in sorted(built.bulk.outcomes.items()))
        click.echo(
            _("{files} encrypted files ({versions} versions written); talks: {outcomes}").format(
                files=built.bulk.files, versions=built.bulk.versions, outcomes=outcomes
            )
        )
        parts = ", ".join(f"{part} {spent:.1f} s" for part, spent in built.bulk.seconds.items())
        click.echo(_("where the time went: {parts}").format(parts=parts))
        _heading(_("keys and how to use them"))
        click.echo(usage_text(built))
        return
    for title, text in sections(built):
        _heading(title)
        click.echo(text)
