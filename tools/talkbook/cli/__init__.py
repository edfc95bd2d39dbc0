"""The command line: parse, call the core, format. One exit point, in the group's main().

The group and shared helpers live in `_shared`; each command family registers itself on the group
when its module is imported here.
"""

from __future__ import annotations

from talkbook.cli import (  # noqa: F401  (registers them)
    calendar,
    demo,
    index,
    queries,
    report,
    sync,
    talks,
    workspace,
)
from talkbook.cli._shared import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="talkbook")
