"""The sandbox's shortcuts (templating._Sandbox) give exactly Jinja's immutable sandbox's
answers: is_safe_attribute asked once per (type, name), an attribute it allowed read again
without asking, and a plain dict's item read without first failing getattr. Security depends
on this: templates are data anyone with push access changes."""

from __future__ import annotations

import collections
import types
from collections.abc import Iterator
from typing import Any

import jinja2
import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from talkbook import templating
from talkbook.templating import _honest_class, _Sandbox


@pytest.fixture
def sandbox() -> _Sandbox:
    return _Sandbox(undefined=templating._Undefined)


class Record:
    def __init__(self) -> None:
        self.name = "x"

    def describe(self) -> str:
        return self.name


class PosesAsList:
    """An object whose __class__ lies: isinstance(obj, list) is True though its type is not."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return list


class Chameleon:
    """Another liar: a Python __getattribute__ could answer __class__ differently each time."""

    def __getattribute__(self, name: str) -> Any:
        return object.__getattribute__(self, name)


def samples() -> Iterator[Any]:
    yield from (
        {},
        [],
        set(),
        collections.deque(),
        collections.OrderedDict(),
        "text",
        3,
        (1,),
        Record(),
        Record().describe,
        len,
        lambda: 0,
        Record,
        types.SimpleNamespace(),
        (x for x in ()),
    )


NAMES = (
    "clear",
    "pop",
    "update",
    "append",
    "add",
    "sort",
    "keys",
    "get",
    "items",
    "upper",
    "mro",
    "name",
    "describe",
    "__globals__",
    "__class__",
    "_private",
    "gi_frame",
    "func_code",
    "__code__",
)


def test_safe_attribute_answers_equal_jinjas_asked_twice(sandbox: _Sandbox) -> None:
    jinja = ImmutableSandboxedEnvironment()
    for obj in samples():
        for name in NAMES:
            expected = jinja.is_safe_attribute(obj, name, None)
            assert sandbox.is_safe_attribute(obj, name, None) is expected, (obj, name)
            assert sandbox.is_safe_attribute(obj, name, None) is expected, (obj, name)


def test_safe_attribute_is_asked_once_per_type_and_name(
    sandbox: _Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[type, str]] = []
    real = ImmutableSandboxedEnvironment.is_safe_attribute

    def counting(self: Any, obj: Any, attr: str, value: Any) -> bool:
        asked.append((type(obj), attr))
        return real(self, obj, attr, value)

    monkeypatch.setattr(ImmutableSandboxedEnvironment, "is_safe_attribute", counting)
    for _ in range(3):
        assert sandbox.is_safe_attribute({}, "keys", None)
        assert not sandbox.is_safe_attribute({"a": 1}, "clear", None)
    assert asked == [(dict, "keys"), (dict, "clear")]


def test_a_class_that_lies_about_itself_is_asked_every_time(sandbox: _Sandbox) -> None:
    assert _honest_class(dict) and _honest_class(Record) and _honest_class(types.FunctionType)
    assert not _honest_class(PosesAsList) and not _honest_class(Chameleon)
    liar = PosesAsList()
    assert isinstance(liar, list)  # what the sandbox's isinstance checks see
    assert not sandbox.is_safe_attribute(liar, "append", None)
    assert (PosesAsList, "append") not in sandbox._safe_answers
    assert sandbox.is_safe_attribute(Chameleon(), "append", None)
    assert (Chameleon, "append") not in sandbox._safe_answers


def test_a_proxy_reporting_its_referents_class_is_asked_every_time(sandbox: _Sandbox) -> None:
    """weakref.proxy is a C type that reports its referent's class: one proxy's answer must not
    be reused for a proxy of a list (whose append Jinja refuses)."""
    import weakref

    class Bag:
        def append(self, item: Any) -> None:
            pass

    class Items(list):
        pass

    bag, items = Bag(), Items([1])
    assert sandbox.is_safe_attribute(weakref.proxy(bag), "append", None)
    jinja = ImmutableSandboxedEnvironment()
    assert not jinja.is_safe_attribute(weakref.proxy(items), "append", None)
    assert not sandbox.is_safe_attribute(weakref.proxy(items), "append", None)


def test_a_mutating_method_stays_refused_after_a_safe_one_of_its_type(sandbox: _Sandbox) -> None:
    template = sandbox.from_string("{{ d.keys() | list }}{{ d.update({'b': 2}) }}")
    with pytest.raises(SecurityError):
        template.render(d={"a": 1})
    template = sandbox.from_string("{{ l.index(1) }}{{ l.append(2) }}")
    with pytest.raises(SecurityError):
        template.render(l=[1])


class Spied(dict):  # noqa: FURB189 (a dict subclass: Jinja's own path, __missing__ and all)
    def __missing__(self, key: str) -> str:
        return f"missing {key}"


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("{{ d.name }}", {"name": "Ann"}, "Ann"),
        ("[{{ d.absent }}]", {"name": "Ann"}, "[]"),
        ("{{ d.items is callable }}", {"items": "shadowed"}, "True"),  # the method, not the item
        ("{{ d.get('a') }}", {"a": 1}, "1"),
        ("{{ d.absent }}", Spied(), "missing absent"),
        ("{{ d.x.y }}", {"x": {"y": "deep"}}, "deep"),
    ],
)
def test_dict_items_read_as_jinja_reads_them(
    sandbox: _Sandbox, source: str, data: dict[str, Any], expected: str
) -> None:
    jinja = ImmutableSandboxedEnvironment(undefined=templating._Undefined)
    assert jinja.from_string(source).render(d=data) == expected
    assert sandbox.from_string(source).render(d=data) == expected


@pytest.fixture
def jinja_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The attributes the sandbox asks Jinja's getattr for."""
    asked: list[str] = []
    real = SandboxedEnvironment.getattr

    def counting(self: Any, obj: Any, attribute: str) -> Any:
        asked.append(attribute)
        return real(self, obj, attribute)

    monkeypatch.setattr(SandboxedEnvironment, "getattr", counting)
    return asked


def test_a_plain_dicts_item_is_read_without_jinjas_getattr(
    sandbox: _Sandbox, jinja_asked: list[str]
) -> None:
    asked = jinja_asked
    text = sandbox.from_string("{{ d.name }}{{ d.absent }}{{ d.keys() | list | length }}")
    assert text.render(d={"name": "Ann"}) == "Ann1"
    assert asked == ["keys"]


def test_a_missing_item_is_undefined_and_names_no_key(sandbox: _Sandbox) -> None:
    template = sandbox.from_string("{{ d.secret_key + 1 }}")
    with pytest.raises(jinja2.UndefinedError) as caught:
        template.render(d={})
    assert "secret_key" not in str(caught.value)


class Holder:
    """Attributes of every kind a template may reach: text, a str's format method (Jinja hands
    out a sandboxed wrapper for it), a property that fails, a mutating method."""

    def __init__(self) -> None:
        self.text = "x"
        self.fmt = "{0}".format
        self.fmt_map = "{a.__class__}".format_map
        self.items: list[int] = [1]

    @property
    def broken(self) -> str:
        raise AttributeError("broken")

    def describe(self) -> str:
        return self.text


def _outcome(env: Any, obj: Any, name: str) -> Any:
    """What getattr gives, comparable across environments: a refusal (ours raises it, Jinja's
    returns an undefined that raises it when used), an undefined, a value."""
    try:
        value = env.getattr(obj, name)
    except SecurityError:
        return "refused"
    if isinstance(value, jinja2.Undefined):
        return "refused" if value._undefined_exception is SecurityError else "undefined"
    if getattr(value, "__wrapped__", None) is not None:  # str.format's sandboxed wrapper
        return ("wrapped", value.__wrapped__)
    return ("value", value)


HOLDER_NAMES = ("text", "fmt", "fmt_map", "broken", "describe", "items", "absent", "__dict__")


def test_an_allowed_attribute_read_again_is_jinjas_answer(sandbox: _Sandbox) -> None:
    jinja = ImmutableSandboxedEnvironment(undefined=templating._Undefined)
    holder = Holder()
    for obj in (*samples(), holder):
        for name in (*NAMES, *HOLDER_NAMES):
            expected = _outcome(jinja, obj, name)
            for _ in range(3):  # the first asks is_safe_attribute, the others do not
                assert _outcome(sandbox, obj, name) == expected, (obj, name)


def test_an_allowed_attribute_is_read_without_jinjas_getattr(
    sandbox: _Sandbox, jinja_asked: list[str]
) -> None:
    asked = jinja_asked
    template = sandbox.from_string(
        "{% for r in rows %}{{ r.describe() }}{{ d.get('a') }}{% endfor %}"
    )
    assert template.render(rows=[Holder(), Holder()], d={"a": 1}) == "x1x1"
    assert asked == ["describe", "get"]  # once each: the answers are then known for the type


def test_a_strs_format_stays_sandboxed_when_read_again(sandbox: _Sandbox) -> None:
    """A format string reaching for an attribute is refused by Jinja's wrapper of str.format:
    the wrapper is handed out every time, not only the first."""
    template = sandbox.from_string("{% for h in hs %}{{ h.fmt(h) }}{% endfor %}")
    assert template.render(hs=[Holder(), Holder()]).startswith("<")
    sneaky = sandbox.from_string("{% for h in hs %}{{ '{0.__class__}'.format(h) }}{% endfor %}")
    with pytest.raises(SecurityError):
        sneaky.render(hs=[Holder(), Holder()])
    plain = Holder()
    plain.fmt_map = "plain"  # type: ignore[assignment]  # read first: (Holder, "fmt_map") allowed
    for _ in range(2):
        assert sandbox.from_string("{{ h.fmt_map }}").render(h=plain) == "plain"
        with pytest.raises(SecurityError):
            sandbox.from_string("{{ h.fmt_map({'a': h}) }}").render(h=Holder())


def test_an_imported_macro_is_read_as_jinja_reads_it(sandbox: _Sandbox) -> None:
    loader = jinja2.DictLoader(
        {
            "lib": "{% macro m(x) %}<{{ x }}>{% endmacro %}{% set table = {'a': 1} %}",
            "page": "{% import 'lib' as t %}{% for r in rows %}{{ t.m(r) }}{{ t.table.a }}"
            "{{ t.__dict__ }}{% endfor %}",
        }
    )
    ours = _Sandbox(loader=loader, autoescape=True, undefined=templating._Undefined)
    jinja = ImmutableSandboxedEnvironment(
        loader=loader, autoescape=True, undefined=templating._Undefined
    )
    rows = ["<b>", "c"]
    with pytest.raises(SecurityError):
        ours.get_template("page").render(rows=rows)
    loader.mapping["page"] = (
        "{% import 'lib' as t %}{% for r in rows %}{{ t.m(r) }}{{ t.table.a }}{% endfor %}"
    )
    assert ours.get_template("page").render(rows=rows) == jinja.get_template("page").render(
        rows=rows
    )
