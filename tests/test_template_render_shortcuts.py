"""The sandbox's rendering shortcuts (templating._Sandbox.call, templating._escaped) give exactly
the text of Jinja's immutable sandbox: a report calls a macro and a dict's `get` per row, and
escapes every value it outputs. Security depends on this: templates are data anyone with push
access changes, and the values are confidential text that must come out escaped."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from jinja2 import DictLoader
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, unsafe
from markupsafe import Markup, escape

from talkbook import templating
from talkbook.templating import _escaped, _Sandbox


def _pair(autoescape: bool = True) -> tuple[_Sandbox, ImmutableSandboxedEnvironment]:
    options: dict[str, Any] = {
        "autoescape": autoescape,
        "undefined": templating._Undefined,
        "finalize": templating._finalize,
        "trim_blocks": True,
    }
    return _Sandbox(**options), ImmutableSandboxedEnvironment(**options)


class Html:
    def __html__(self) -> str:
        return "<b>safe</b>"


VALUES = [
    "",
    "plain",
    "<script>alert('x') & \"y\"</script>",
    "张伟 <b>",
    Markup("<i>kept</i>"),
    0,
    -12,
    10**30,
    True,
    False,
    None,
    1.5,
    Html(),
    ["<a>", 1],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_escaped_text_is_markupsafes(value: Any) -> None:
    assert _escaped(value) == str(escape(value))


def test_an_undefined_escapes_as_markupsafe_escapes_it() -> None:
    """`{{ "x" if flag }}` outputs Jinja's plain Undefined when not flag, a misspelt name ours."""
    for value in (Undefined(), templating._Undefined(), templating._Undefined(name="secret")):
        assert _escaped(value) == str(escape(value)) == ""


SOURCES = [
    "{{ v }}|{{ v ~ '<x>' }}|{{ v | e }}|{{ v | safe }}",
    "{% macro m(a, b='<d>') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(v) }}{{ m(v, b=v) }}{{ m(a=1) }}",
    "{% macro m() %}{{ varargs | length }}{{ kwargs | length }}{% endmacro %}{{ m(1, v, x=2) }}",
    "{% macro m(x) %}<{{ caller(x) }}>{% endmacro %}{% call(y) m(v) %}({{ y }}){% endcall %}",
    "{% set d = {'a': '<a>', 'b': v} %}{{ d.get('a') }}{{ d.get('z', v) }}{{ d.keys() | list }}",
    "{% set s %}<p>{{ v }}</p>{% endset %}{{ s }}{{ s | length }}",
    "{% filter upper %}{{ v }}<br>{% endfilter %}",
    "{% for i in [v, 1, none] %}{{ i }};{% endfor %}{{ 'x' if v }}",
    "{{ (v | string).upper() }}{{ [v, 2] | join(', ') }}",
    # output statements of several pieces, yielded at once (templating._Generator)
    "{% for i in [v, 2] %}<tr><td>{{ i }}</td><td>{{ 'x' if i == 2 }}</td></tr>\n{% endfor %}",
    "{% if v %}[{{ v }}|{{ v }}]{% else %}({{ v }}){% endif %}{% set n = namespace(c=0) %}"
    "{% for i in [1, 2] %}{% set n.c = n.c + i %}{{ n.c }}:{{ loop.index }};{% endfor %}",
    "{% macro m(x) %}{{ x }}+{{ x }}{% endmacro %}{% set s %}{{ m(v) }}={{ v }}{% endset %}"
    "{{ s }}-{{ m(s) }}",
    # attributes: a plain dict's item read in place (templating._Generator), others asked
    "{% set d = {'a': {'b': v}, 'get': 1, 'v': v} %}{{ d.a.b }}|{{ d.get is callable }}|"
    "{{ d.missing }}|{{ d.a.missing.deeper }}|{{ d['a'].b }}|{{ d.v.real }}|{{ v.real }}",
    "{% for r in [{'n': v}, {'m': 1}] %}{{ r.n }}{{ r.n.n }}/{{ r.items() | list | length }};"
    "{% endfor %}",
    # escaping switched inside the template: fixed (the output's call chosen when compiled)
    # or decided as it renders (Jinja's own code)
    "{% autoescape false %}{{ v }}|{{ v }}{% endautoescape %}"
    "{% autoescape true %}{{ v }}|{{ v }}{% endautoescape %}",
    "{% autoescape v is string %}{{ v }}|{{ v }}{% endautoescape %}",
    # attributes read in a loop's filter, a namespace, a call block's caller
    "{% set xs = [{'a': 1, 'b': v}, {'a': 0, 'b': 2}] %}{% for x in xs if x.a %}{{ x.b }}"
    "{% else %}none{% endfor %}|{{ xs | map(attribute='b') | join(',') }}|"
    "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x.a %}{% endfor %}"
    "{{ ns.n }}{% macro m(r) %}{{ r.b }}{{ caller() if caller }}{% endmacro %}"
    "{% call m(xs[0]) %}({{ xs[1].b }}){% endcall %}{{ m(xs[1]) }}",
]


@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_rendered_text_is_jinjas(source: str, value: Any, autoescape: bool) -> None:
    ours, jinja = _pair(autoescape)
    assert ours.from_string(source).render(v=value) == jinja.from_string(source).render(v=value)


def test_a_macro_and_a_dicts_method_are_called_without_jinjas_questions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[Any] = []
    real = Context.call

    def counting(self: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(obj)
        return real(self, obj, *args, **kwargs)

    monkeypatch.setattr(Context, "call", counting)
    ours, _jinja = _pair()
    source = "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(d.get('a')) }}{{ l.index(2) }}"
    assert ours.from_string(source).render(d={"a": "<"}, l=[1, 2]) == "&lt;1"
    assert [getattr(obj, "__name__", obj) for obj in asked] == ["index"]  # a list's: asked


def test_what_jinja_refuses_stays_refused() -> None:
    ours, _jinja = _pair()
    for source in (
        "{{ d.update({'b': 2}) }}",
        "{{ d.pop('a') }}",
        "{{ d.clear() }}",
        "{{ d.__class__ }}",
        "{% for r in [d, html] %}{{ r.__class__ }}{% endfor %}",
    ):
        with pytest.raises(SecurityError):
            ours.from_string(source).render(d={"a": 1}, html=Html())

    @unsafe
    def dangerous() -> str:
        return "ran"

    with pytest.raises(SecurityError):
        ours.from_string("{{ f() }}").render(f=dangerous)


PAGES = {
    "base": "<h1>{% block title %}T{% endblock %}</h1>\n{% block body %}{% endblock %}"
    "<p>{{ v }}|end</p>",
    "child": '{% extends "base" %}{% block title %}{{ super() }}:{{ v }}{% endblock %}'
    "{% block body %}{% for i in [v, 1] %}<td>{{ i }}</td><td>{{ loop.index }}</td>"
    "{% endfor %}{% endblock %}outside {{ v }} ignored",
    "failing": '{% extends "base" %}{% block body %}<td>{{ v }}</td>\n<td>{{ v }}</td><td>'
    "{{ {}.pop(v) }}</td>{% endblock %}",
}


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_page_extending_another_renders_jinjas_text(value: Any) -> None:
    ours, jinja = _pair()
    ours.loader = jinja.loader = DictLoader(PAGES)
    assert ours.get_template("child").render(v=value) == jinja.get_template("child").render(v=value)


def test_an_error_in_a_row_is_on_the_rows_line() -> None:
    """The pieces of an output statement yielded at once keep their own lines in a traceback
    (what TemplateError names): the same as Jinja's."""
    found = []
    for env in _pair():
        env.loader = DictLoader(PAGES)
        with pytest.raises(SecurityError) as caught:  # {}.pop: a mutating method
            env.get_template("failing").render(v="secret")
        frames = traceback.extract_tb(caught.value.__traceback__)
        found.append([f.lineno for f in frames if f.filename == "<template>"][-1])
    assert found == [2, 2]
