"""The command line: parse, call the core, format. One exit point, in the group's main().

The group and shared helpers live in `_shared`; each command family registers itself on the group
when its module is imported. `main` imports only the module of the command named (a read command
does not pay for icalendar or the demo); `from talkbook.cli import cli` gives the group with every
command registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from talkbook.cli._shared import cli

__all__ = ["cli", "main"]


def main() -> None:
    from talkbook.cli._shared import cli

    cli(prog_name="talkbook")


def __getattr__(name: str) -> Any:
    """`cli`, with all its commands loaded (what tests and tools that walk it expect)."""
    if name == "cli":
        from talkbook.cli._shared import cli, load_commands

        load_commands()
        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
