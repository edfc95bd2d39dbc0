"""Jinja templates for document bodies and reports, per locale, overridable by the workspace.

Contract: `render(name, locale, context, workspace_templates)` returns the text of
`<locale>/<name>` (English when the locale has none); a workspace's `templates/` folder wins over
the copies shipped in the package. Any failure is one TemplateError (exit 2) naming the template
and, when known, the line: nothing is written then.

Security invariant: templates are data, not code. Anyone with push access may commit one, so they
render in Jinja's immutable sandbox (an unsafe attribute, a mutating method or an unsafe call is
an error, never a blank), and are read only from regular files inside their templates folder: a
name with `..`, a symlink anywhere below the folder (or the folder itself being one) is refused,
never followed and never skipped for the package's copy. Error messages name templates, lines and
attribute names but never quote the data being rendered: that data is confidential. The sandbox's
shortcuts (an attribute's safety remembered per type and name, and an attribute found safe read
without asking again; a plain dict's item read directly; a macro or a plain dict's method called
directly; output escaped without a Markup around it; an output statement's pieces yielded at
once) give exactly the answers and the text of Jinja's immutable sandbox; a type that could
misreport its class is asked every time. A compiled template is code: one is read back from disk
only by template_cache, which loads none but those made with the identity's key (a forged one
never runs).
"""

from __future__ import annotations

import functools
import os
import re
import stat
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, object_type_repr
from markupsafe import Markup, _escape_inner, escape  # the former: escape's own C escaping

from talkbook.errors import TemplateError
from talkbook.i18n import N_, _

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


# --------------------------------------------------------------------------- loading


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang the tool
NOT_REGULAR = N_("not a regular file inside the workspace")


class Refused(jinja2.TemplateError):
    """A template that may not be read. Not a TemplateNotFound: no fallback to the package."""

    def __init__(self, name: str, reason: str = NOT_REGULAR) -> None:
        reason = _(reason) if reason == NOT_REGULAR else reason
        super().__init__(_("template {name} is {reason}").format(name=name, reason=reason))
        self.name, self.reason = name, reason


def _open_below(root: Path, parts: list[str]) -> int:
    """A descriptor for root/parts…, opened one step at a time without following any symlink,
    so nothing can be swapped for a symlink between a check and the read."""
    fds = [os.open(root, _DIR)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
        return os.open(parts[-1], _FILE, dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)


class RootLoader(jinja2.BaseLoader):
    """Loads `<root>/<name>` only when it is a regular file reached through real folders."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _open(self, name: str) -> int:
        parts = name.split("/")
        if any(part in ("", ".", "..") or "\0" in part for part in parts):
            raise Refused(name)
        try:
            fd = _open_below(self.root, parts)
        except FileNotFoundError:
            raise jinja2.TemplateNotFound(name) from None
        except OSError:  # ELOOP: a symlink; ENOTDIR: a file where a folder should be
            raise Refused(name) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Refused(name)
        return fd

    def _stamp(self, name: str) -> tuple[int, int] | None:
        """What auto-reload compares: modification time and size, or None if no longer loadable."""
        try:
            fd = self._open(name)
        except jinja2.TemplateError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
        return info.st_mtime_ns, info.st_size

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        with os.fdopen(self._open(template), "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read()
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(template, _("not UTF-8 text")) from None
        stamp = (info.st_mtime_ns, info.st_size)
        filename = str(self.root.joinpath(*template.split("/")))
        return source, filename, lambda: self._stamp(template) == stamp


# --------------------------------------------------------------------------- environment


def _escaped(value: Any) -> str:
    """markupsafe.escape's text, without a Markup around plain text and numbers: Jinja's
    compiled code calls `escape` only on what it outputs, which is joined into the page (a
    block or macro wraps it in Markup itself), so the wrapper (a Python call per value, a
    third of a report's rendering) is never looked at."""
    kind = type(value)
    if kind is str:
        return _escape_inner(value)
    if kind is int:
        return str(value)  # digits and a sign: nothing to escape
    if kind is Markup:
        return value  # a macro's output, escaped already (its __html__ is itself)
    if kind is Undefined or kind is _Undefined:
        return ""  # `{{ x if y }}` when not y: markupsafe asks for __html__ (or str()): ""
    return escape(value)


def _shown_escaped(value: Any) -> str:
    """escape(finalize(value)) in one call: what an autoescaped template outputs."""
    return "" if value is None else _escaped(value)


def _shown(value: Any) -> str:
    """str(finalize(value)) in one call: what a template without autoescape outputs."""
    return "" if value is None else str(value)


class _Template(jinja2.Template):
    @classmethod
    def _from_namespace(cls, environment: Any, namespace: Any, globals: Any) -> Any:
        namespace["escape"] = _escaped  # the name the compiled code imported from jinja2
        namespace["_tb_shown_escaped"] = _shown_escaped  # the names _Generator's code calls
        namespace["_tb_shown"] = _shown
        return super()._from_namespace(environment, namespace, globals)


class _Generator(CodeGenerator):
    """Jinja's code generator, with three shortcuts for what a report does per row, each
    giving Jinja's text: an output statement of several pieces outside a buffer (a table row:
    its cells and their values) is joined and yielded once, not piece by piece through the
    generator of every template the page extends (the same expressions, evaluated in the same
    order; a failure ends the rendering either way); an output value's escape (or str) and
    finalize are one call; `x.name` reads a plain dict's item in place (_Sandbox.getattr's
    own answer for such a name), any other object is still asked of the sandbox.
    `generation` names what this class writes: template_cache compiles again when it changes.
    """

    generation = 1

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        if (
            frame.buffer is not None  # a macro, a `set` block: Jinja buffers it already
            or frame.require_output_check  # outside a block of an extending template
            or self.environment.is_async
            or len(node.nodes) < 2
        ):
            super().visit_Output(node, frame)
            return
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = []")
        super().visit_Output(node, frame)
        self.writeline(f"yield concat({frame.buffer})")  # concat: every render function's
        frame.buffer = None

    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        """`row.name` is a plain dict's item read here, as _Sandbox.getattr reads it, when the
        name is none of a dict's attributes; anything else is asked of environment.getattr
        (the sandbox) as Jinja asks it."""
        name = node.attr
        if self.environment.is_async or type(name) is not str or name in _DICT_ATTRIBUTES:
            super().visit_Getattr(node, frame)
            return
        key = repr(name)
        self.write(f"(_tb_obj[{key}] if type(_tb_obj := ")
        self.visit(node.node, frame)
        self.write(f") is dict and {key} in _tb_obj else environment.getattr(_tb_obj, {key}))")

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._fused(frame, finalize):
            self.write("_tb_shown_escaped(" if frame.eval_ctx.autoescape else "_tb_shown(")
        else:
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._fused(frame, finalize):
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)

    def _fused(self, frame: Frame, finalize: Any) -> bool:
        """Whether an output value's escape (or str) of environment.finalize is one call of
        _shown_escaped (or _shown): with our finalize and a known autoescape."""
        return (
            not frame.eval_ctx.volatile
            and self.environment.finalize is _finalize
            and finalize.src == "environment.finalize("
        )


class _Undefined(jinja2.ChainableUndefined):
    """Renders as nothing; misused, its error names a variable but never a key, which may have
    come from the data (`{{ counts[brief.unit] + 1 }}`)."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        if self._undefined_obj is missing:
            return f"{self._undefined_name!r} is undefined"
        return f"{object_type_repr(self._undefined_obj)} has no such attribute or item"


# Every attribute a plain dict has: those of its type and the types it inherits from. A dict
# instance has no attributes of its own (no __dict__), so any other name is not an attribute.
_DICT_ATTRIBUTES = frozenset(name for klass in dict.__mro__ for name in vars(klass))


_HONEST: dict[type, bool] = {}
# What jinja2.sandbox's wrap_str_format looks at (neither type can be subclassed).
_METHODS = (types.MethodType, types.BuiltinMethodType)
_FORMATS = ("format", "format_map")


def _honest_class(cls: type) -> bool:
    """Whether an object of this type always reports it as its class: no class of its own up the
    MRO defines `__class__` or a Python `__getattribute__` (object's and builtin types' C slots do
    neither). Then isinstance(obj, X) depends on type(obj) alone."""
    honest = _HONEST.get(cls)
    if honest is None:
        honest = _HONEST[cls] = not any(_may_lie(vars(klass)) for klass in cls.__mro__[:-1])
    return honest


def _may_lie(own: Any) -> bool:
    getter = own.get("__getattribute__")
    return "__class__" in own or not (
        getter is None or isinstance(getter, types.WrapperDescriptorType)
    )


def _plain(macro: Macro, args: tuple[Any, ...]) -> bool:
    """Whether a macro is called with exactly its arguments, all positional, and takes no
    caller, varargs or kwargs: Macro.__call__ then only invokes it (jinja2.runtime)."""
    return (
        len(args) == macro._argument_count
        and not macro.caller
        and not macro.catch_varargs
        and not macro.catch_kwargs
    )


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, failing loudly: an unsafe attribute is an error, not a blank.

    Shortcuts, each giving exactly Jinja's answer (a report renders thousands of rows):
    `is_safe_attribute` is asked once per (type, attribute name), and an attribute it allowed
    is then read without Jinja's getattr; a name that is not a dict's attribute is looked up
    as a plain dict's item without first failing getattr.
    """

    template_class = _Template
    code_generator_class = _Generator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._safe_answers: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # The immutable sandbox's answer is a function of the name and of isinstance checks of
        # obj against fixed types (jinja2.sandbox: is_internal_attribute, modifies_known_mutable);
        # `value` is not looked at (Jinja 3.1; the tests compare answers with Jinja's). With an
        # honest class isinstance depends on the type only (and on ABC registrations, which only
        # the program's own code makes).
        cls = type(obj)
        # A C type may report another class (weakref.proxy reports its referent's): only an
        # object whose __class__ is its type is answered from the cache.
        if type(attr) is not str or obj.__class__ is not cls or not _honest_class(cls):
            return super().is_safe_attribute(obj, attr, value)
        key = (cls, attr)
        answer = self._safe_answers.get(key)
        if answer is None:
            answer = self._safe_answers[key] = super().is_safe_attribute(obj, attr, value)
        return answer

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if type(attribute) is str:
            if kind is dict and attribute not in _DICT_ATTRIBUTES:
                # Jinja tries getattr first, which fails for such a name, then the item.
                try:
                    return obj[attribute]
                except KeyError:
                    return self.undefined(obj=obj, name=attribute)
            if self._safe_answers.get((kind, attribute)):
                return self._allowed(obj, attribute)
        return super().getattr(obj, attribute)

    def _allowed(self, obj: Any, attribute: str) -> Any:
        """Jinja's getattr (jinja2.sandbox) for an attribute whose safety was answered yes for
        its type (is_safe_attribute: an honest class, so the answer holds for every object of
        it), without asking again: a macro of an imported template (`t.detail`), a dict's
        `get`, each row of a report."""
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        if type(value) in _METHODS and value.__name__ in _FORMATS:
            wrapped = self.wrap_str_format(value)  # a str's format method: sandboxed
            if wrapped is not None:
                return wrapped
        return value

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # (Jinja's odd names: a template's own keyword argument `obj=…` must not collide.)
        # Two callables a report calls per row are called as Jinja's Context.call would call
        # them, without its questions, whose answers are fixed for them: a template's macro
        # (safely callable, given the evaluation context: Macro.__call__ asks for it) and a
        # plain dict's method (safely callable; getattr is what refuses a mutating one).
        kind = type(__obj)
        if kind is Macro or (kind is types.BuiltinMethodType and type(__obj.__self__) is dict):
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
            if kind is Macro:
                if not kwargs and _plain(__obj, args):
                    # Macro.__call__'s own path for exactly its positional arguments
                    return __obj._invoke(list(args), __context.eval_ctx.autoescape)
                return __obj(__context.eval_ctx, *args, **kwargs)
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        # A name the object's type defines is code's; any other name may have come from the data.
        if attribute in dir(type(obj)):
            shown = _("attribute {name!r}").format(name=attribute)
        else:
            shown = _("an attribute")
        raise SecurityError(
            _("access to {shown} of {kind!r} object is unsafe").format(
                shown=shown, kind=type(obj).__name__
            )
        )


@functools.lru_cache(maxsize=8)
def environment(
    workspace_templates: Path | None, compiled: jinja2.BytecodeCache | None = None
) -> jinja2.Environment:
    """One environment per template folder, so compiled templates are reused (Jinja still
    notices an edited template file by its modification time); `compiled` keeps them between
    commands (template_cache.Compiled)."""
    roots = [package_templates_dir().resolve()]
    if workspace_templates is not None:
        roots.insert(0, workspace_templates)
    env = _Sandbox(
        loader=jinja2.ChoiceLoader([RootLoader(root) for root in roots]),
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
        undefined=_Undefined,
        finalize=_finalize,
        bytecode_cache=compiled,
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
    import traceback  # only when a template fails: not at every report's import

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


def _detail(exc: BaseException, where: str) -> str:
    if isinstance(exc, Refused):
        return exc.reason if exc.name == where else str(exc.message)
    if isinstance(exc, jinja2.TemplateNotFound):
        return _("template {name} not found").format(name=exc.name)
    if isinstance(exc, jinja2.TemplateError):
        # Jinja's messages, with ours where Jinja's would quote a key (_Undefined, _Sandbox).
        return _one_line(str(exc.message or type(exc).__name__))
    # Python errors may quote the values being rendered (e.g. int('…')): name the kind only.
    return f"{type(exc).__name__} while rendering"


def _render_error(exc: BaseException, name: str, roots: list[Path]) -> TemplateError:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = exc.name or name
        return TemplateError(
            _("template {where}, line {lineno}: {detail}").format(
                where=where, lineno=exc.lineno, detail=_one_line(exc.message or "")
            )
        )
    where, lineno = _template_line(exc, name, roots)
    line = f", line {lineno}" if lineno is not None else ""
    return TemplateError(
        _("template {where}{line}: {detail}").format(
            where=where, line=line, detail=_detail(exc, where)
        )
    )


def _candidates(name: str, locale: str) -> Iterable[str]:
    yield f"{locale}/{name}"
    if locale != FALLBACK_LOCALE:
        yield f"{FALLBACK_LOCALE}/{name}"


def render(
    name: str,
    locale: str,
    context: dict[str, Any],
    workspace_templates: Path | None = None,
    compiled: jinja2.BytecodeCache | None = None,
) -> str:
    """Render `<locale>/<name>`, falling back to the English template when the locale has none;
    `compiled`: where compiled templates are kept between commands (template_cache)."""
    env = environment(workspace_templates, compiled)
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
        except jinja2.TemplateError as exc:  # a syntax error, or a template refused
            raise _render_error(exc, candidate, roots) from None
        shown = candidate
        break
    if template is None:
        raise TemplateError(
            _("template {locale}/{name} not found").format(locale=locale, name=name)
        )
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
