"""`talkbook demo DIR`: build a fictional workspace, walk it through the main job, show it."""

from __future__ import annotations

from pathlib import Path

import click

from talkbook.cli._shared import cli


def _heading(title: str) -> None:
    click.echo("")
    click.echo(f"== {title} ".ljust(100, "="))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cadres", default=12, show_default=True, help="How many fictional cadres.")
@click.option("--talks", "talks_count", default=16, show_default=True, help="How many talks.")
@click.option("--locale", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
def demo(directory: Path, cadres: int, talks_count: int, locale: str) -> None:
    """Build a fictional workspace at DIR (keys in DIR.keys/) and run the whole job on it.

    Staff with their own keys log occasions, draft plans, approve (and once reject), hold and
    record talks over several months; then the tour: keys, git log, a decrypted plan history,
    an outsider failing to read, `due` and `validate`. Everything in it is invented.

    \b
    Example: talkbook demo build/demo --cadres 200 --talks 400
    """
    from talkbook.demo import build, sections

    click.echo(f"building a fictional workspace in {directory} …", err=True)
    built = build(directory, cadres, talks_count, locale)
    rate = built.commits / built.seconds if built.seconds else 0.0
    click.echo(
        f"built {len(built.cadres)} cadres and {len(built.talks)} talks: {built.commits} commits "
        f"in {built.seconds:.1f} s ({rate:.0f} commits/s); the demo's today is "
        f"{built.today:%Y-%m-%d %H:%M}"
    )
    for title, text in sections(built):
        _heading(title)
        click.echo(text)
