"""Jinja templates for document bodies and reports, per locale, overridable by the workspace.

An organization may edit the templates in its workspace's `templates/` folder; those win over the
copies shipped in the package. Error messages name the template and line but never quote the data
being rendered: that data is confidential.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

from talkbook.errors import TemplateError

FALLBACK_LOCALE = "en"
_BLANK_RUNS = re.compile(r"\n{3,}")


def package_templates_dir() -> Path:
    return Path(__file__).parent / "templates"


# --------------------------------------------------------------------------- filters and tests


def _is_blank(value: Any) -> bool:
    if value is None or isinstance(value, jinja2.Undefined):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set):
        return not value
    return False


def as_list(value: Any) -> list[Any]:
    """None → [], a string → [it], a list → its non-blank items.

    Profile fields like `strengths` may be written as one string or as a list; templates treat
    both the same way through this filter.
    """
    if _is_blank(value):
        return []
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, list | tuple | set):
        return [item for item in value if not _is_blank(item)]
    return [value]


def join_or(value: Any, separator: str = ", ", default: str = "") -> str:
    """The items of `value` (see as_list) joined by `separator`; `default` when none."""
    items = as_list(value)
    return separator.join(str(item) for item in items) if items else default


def bullets(value: Any, indent: int = 0) -> str:
    """Markdown bullets, one per item; a multi-line item stays inside its bullet."""
    pad = " " * indent
    lines = []
    for item in as_list(value):
        text = str(item).strip().replace("\n", "\n" + pad + "  ")
        lines.append(f"{pad}- {text}")
    return "\n".join(lines)


def _filled(value: Any) -> bool:
    return not _is_blank(value)


def _finalize(value: Any) -> Any:
    # A None that slips through a template would print "None" into a confidential record.
    return "" if value is None else value


# --------------------------------------------------------------------------- environment


@functools.lru_cache(maxsize=8)
def environment(workspace_templates: Path | None) -> jinja2.Environment:
    """One environment per template folder, so compiled templates are reused (Jinja still
    notices an edited template file by its modification time)."""
    loaders: list[jinja2.BaseLoader] = []
    if workspace_templates is not None and workspace_templates.is_dir():
        loaders.append(jinja2.FileSystemLoader(str(workspace_templates), encoding="utf-8"))
    loaders.append(jinja2.FileSystemLoader(str(package_templates_dir()), encoding="utf-8"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html", "htm", "xml"),
            disabled_extensions=("md.j2", "md", "txt", "csv.j2", "ics.j2"),
            default_for_string=False,
            default=False,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Staff edit these templates: a misspelt variable renders as nothing rather than failing.
        undefined=jinja2.ChainableUndefined,
        finalize=_finalize,
    )
    env.filters["as_list"] = as_list
    env.filters["join_or"] = join_or
    env.filters["bullets"] = bullets
    env.tests["filled"] = _filled
    env.tests["blank"] = _is_blank
    return env


def _template_line(exc: BaseException, fallback: str, roots: list[Path]) -> tuple[str, int | None]:
    """The template name and line where a rendering error happened, from the rewritten traceback.

    Jinja rewrites tracebacks so that frames inside a template carry its file name and line.
    """
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.endswith(".j2") or frame.filename == "<template>"
    ]
    if not frames:
        return fallback, None
    frame = frames[-1]
    for root in roots:
        try:
            name = Path(frame.filename).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        return name, frame.lineno
    return fallback, frame.lineno


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _render_error(exc: BaseException, name: str, roots: list[Path]) -> TemplateError:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = exc.name or name
        return TemplateError(f"template {where}, line {exc.lineno}: {_one_line(exc.message or '')}")
    where, lineno = _template_line(exc, name, roots)
    line = f", line {lineno}" if lineno is not None else ""
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateError(f"template {where}{line}: template {exc.name} not found")
    if isinstance(exc, jinja2.TemplateError):
        detail = _one_line(str(exc.message or type(exc).__name__))
    else:
        # Python errors may quote the values being rendered (e.g. int('…')): name the kind only.
        detail = f"{type(exc).__name__} while rendering"
    return TemplateError(f"template {where}{line}: {detail}")


def _candidates(name: str, locale: str) -> Iterable[str]:
    yield f"{locale}/{name}"
    if locale != FALLBACK_LOCALE:
        yield f"{FALLBACK_LOCALE}/{name}"


def render(
    name: str, locale: str, context: dict[str, Any], workspace_templates: Path | None = None
) -> str:
    """Render `<locale>/<name>`, falling back to the English template when the locale has none."""
    env = environment(workspace_templates)
    roots = [root for root in (workspace_templates, package_templates_dir()) if root is not None]
    template: jinja2.Template | None = None
    shown = f"{locale}/{name}"
    for candidate in _candidates(name, locale):
        try:
            template = env.get_template(candidate)
        except jinja2.TemplateNotFound as exc:
            # A template the candidate imports being missing is an error, not a reason to fall back.
            if exc.name != candidate:
                raise _render_error(exc, candidate, roots) from None
            continue
        except jinja2.TemplateSyntaxError as exc:
            raise _render_error(exc, candidate, roots) from None
        shown = candidate
        break
    if template is None:
        raise TemplateError(f"template {locale}/{name} not found")
    try:
        text = template.render({"locale": locale, **context})
    except Exception as exc:  # any failure inside a template is the template's to answer for
        raise _render_error(exc, shown, roots) from None
    if name.endswith(".md.j2"):
        # Optional sections left out leave blank runs behind; Markdown gives them no meaning.
        text = _BLANK_RUNS.sub("\n\n", text).strip("\n") + "\n"
    return text


def copy_default_templates(dest: Path) -> list[Path]:
    """Copy the package's templates into `dest`, keeping any file already there."""
    source = package_templates_dir().resolve()
    written: list[Path] = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or any(
            part.startswith(".") or part == "__pycache__" for part in relative.parts
        ):
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "x" mode: never overwrite, even if the file appears between a check and the write.
            with target.open("xb") as handle:
                handle.write(path.read_bytes())
        except FileExistsError:
            continue
        written.append(target)
    return written
