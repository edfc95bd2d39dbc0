"""Babel extraction method for talkbook's sources: the gettext calls Babel's own Python
extractor finds (`_`, `N_`, `ngettext`, `pgettext`), plus the command line's help, which click
takes from places no gettext call marks: a command's docstring and the `help=` of an option.

Contract: `extract` has Babel's extractor signature and is named in babel.cfg
(`[talkbook.i18n_extract.extract: **.py]`); each help text is yielded as click shows it
(`inspect.cleandoc`), which is the msgid cli._shared translates at format time. Used only when
producing catalogs (`make messages`, tests/test_i18n.py); nothing imports it at run time.

Security invariant: reads source code only, never runs it.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

# a call to one of these takes help text: @click.option(help=…), @cli.command(help=…)
_HELP_TAKERS = {"option", "argument", "command", "group", "Option", "Argument", "version_option"}
_HELP_KEYWORDS = ("help", "short_help", "epilog")


def extract(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[Any, ...]]:
    """(line, function name, message(s), comments), as Babel's extractors yield them."""
    from babel.messages.extract import extract_python

    source = fileobj.read()
    fileobj.seek(0)
    yield from extract_python(fileobj, keywords, comment_tags, options)  # type: ignore
    for lineno, text in click_help(ast.parse(source)):
        yield lineno, None, text, []


def click_help(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) for every command docstring and literal help= in the module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(map(_is_command, node.decorator_list)):
            if doc := ast.get_docstring(node, clean=True):
                yield node.lineno, doc
        elif isinstance(node, ast.Call) and _name(node.func) in _HELP_TAKERS:
            for keyword in node.keywords:
                text = keyword.value.value if isinstance(keyword.value, ast.Constant) else None
                if keyword.arg in _HELP_KEYWORDS and isinstance(text, str) and text.strip():
                    yield keyword.value.lineno, inspect.cleandoc(text)


def _is_command(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return _name(target) in ("command", "group")


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""
