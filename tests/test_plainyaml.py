"""The fast front-matter reader: where it answers, it answers what the guarded loader does."""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from talkbook import models, plainyaml
from talkbook.models import Document, parse

READER = plainyaml.Reader(models.to_plain)
REFUSED = "(refused)"


def guarded(front: str) -> Any:
    """What parse() made of this front matter before the fast reader: the guarded loader's
    value through to_plain, or REFUSED for any exception."""
    try:
        return models.to_plain(models._load_yaml(front))
    except Exception:
        return REFUSED


def agrees(front: str) -> dict[str, Any] | None:
    """The fast reader's answer, checked against the guarded loader's: same values, same types
    (repr tells 1 from 1.0, True and "1"), same order."""
    fast = READER.load(front)
    if fast is not None:
        assert repr(fast) == repr(guarded(front)), front
    return fast


# -- what it reads -----------------------------------------------------------------------------
PLAN = """id: T-sfj6ge
cadre: C-56nqbx
recorder: null
at: 2024-12-22T16:00
event_date: 2024-12-17
focus:
- 岗位变动：提任新职务，进入领导班子
- 'yes'
decisions:
- by: P-01
  at: 2024-12-18T10:30
  comment: null
- by: P-02
  comment: 同意，注意把握谈话方式。
nested:
  inner:
    - 1
    - - 2.5
      - -3
  empty: []
  none: {}
quoted: 'it''s: fine'
double: "a # b"
flags: [yes, on]
"""


def test_reads_what_the_dumper_writes_as_the_guarded_loader_does() -> None:
    front = PLAN.replace("flags: [yes, on]\n", "")
    value = agrees(front)
    assert value is not None
    assert value["event_date"] == "2024-12-17" and value["recorder"] is None
    assert value["nested"] == {"inner": [1, [2.5, -3]], "empty": [], "none": {}}
    assert value["quoted"] == "it's: fine" and value["double"] == "a # b"


@pytest.mark.parametrize(
    "front",
    [
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: !!str 1\n",  # tags
        "a: !x 1\n",
        "<<: {a: 1}\n",  # merge keys
        "a: <<\n",
        "a: =\n",
        "a: [1, 2]\n",  # flow collections
        "a: |\n  text\n",  # block scalars
        "a: long\n  text\n",  # a scalar over two lines
        "a: 1 # comment\n",
        "# comment\na: 1\n",
        "a: 1\n\nb: 2\n",  # a blank line
        "a:\tb\n",
        "a: b\r\n",
        "a: b\u2028c\n",
        "a: \ufeffb\n",
        "a: 1\na: 2\n",  # a duplicate key
        "yes: 1\non: 2\n",  # the same key, typed
        "a: 2026-13-45\n",  # a date that is none: the guarded loader words the refusal
        "a: 'unclosed\n",
        'a: "esc\\n"\n',
        "- a\n- b\n",  # not a mapping
        "  a: 1\n",
        "a:\n-\n  b\n",
        "x" * 200 + ": 1\n",  # past YAML's simple-key length
        "a: \n" + "".join("  " * i + "- \n" for i in range(1, 40)),
    ],
)
def test_gives_up_on_anything_outside_the_subset(front: str) -> None:
    assert READER.load(front) is None


def test_gives_up_past_its_depth_and_the_guarded_loader_decides() -> None:
    deep = "".join(" " * i + f"k{i}:\n" for i in range(plainyaml.MAX_DEPTH + 2)) + "x: 1\n"
    assert READER.load(deep) is None
    shallow = "".join(" " * i + f"k{i}:\n" for i in range(plainyaml.MAX_DEPTH - 2))
    assert agrees(shallow + " " * (plainyaml.MAX_DEPTH - 2) + "x: 1\n") is not None


def test_hostile_front_matter_is_still_refused_through_parse() -> None:
    laughs = "---\na: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n---\n"
    with pytest.raises(models.InvalidDocument, match="anchors and aliases"):
        parse(laughs)
    deep = "---\n" + "".join("  " * i + "- \n" for i in range(40)) + "---\n"
    with pytest.raises(models.InvalidDocument):
        parse(deep)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(plainyaml._MINUTES, fullmatch=True))
def test_times_to_the_minute_are_strings_to_pyyaml_as_the_shortcut_assumes(text: str) -> None:
    reader = plainyaml.Reader(models.to_plain)
    assert reader.resolver.resolve(plainyaml.ScalarNode, text, (True, False)) == plainyaml._STR
    assert READER.load(f"at: {text}\n") == {"at": text} == guarded(f"at: {text}\n")


def test_its_cache_stays_bounded_and_holds_short_scalars_only() -> None:
    reader = plainyaml.Reader(models.to_plain)
    for n in range(plainyaml.CACHE_SIZE + 10):
        assert reader.load(f"a: {n}\n") == {"a": n}
    assert len(reader.cache) <= plainyaml.CACHE_SIZE
    long = "1" * (plainyaml.CACHED_LENGTH + 1)
    assert reader.load(f"a: {long}\n") == {"a": int(long)}
    assert long not in reader.cache


# -- property: wherever it answers, the guarded loader answers the same --------------------------
TRICKY = [
    "",
    "null",
    "~",
    "Null",
    "NULL",
    "None",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "n",
    "true",
    "True",
    "1",
    "-1",
    "+1",
    "0",
    "00",
    "0x1f",
    "0o17",
    "017",
    "0b101",
    "1_000",
    "1:30",
    "190:20:30.15",
    "1.5",
    "-.5",
    "1.",
    ".inf",
    "-.Inf",
    ".NaN",
    "1e5",
    "1.0e+5",
    "2026-03-01",
    "2026-3-1",
    "2026-13-45",
    "2026-02-30",
    "2026-03-01T09:30",
    "2026-03-01T09:30:15",
    "2026-03-01 09:30:00 +08:00",
    "2026-03-01t09:30:00.5Z",
    "<<",
    "=",
    "-",
    "- x",
    "-x",
    "--",
    "---",
    "...",
    "[]",
    "{}",
    "[a]",
    "{a: 1}",
    "'q'",
    "'it''s'",
    "'a'b'",
    "''",
    "'",
    '"dq"',
    '"a\\tb"',
    '"',
    '""',
    "a: b",
    "a:b",
    "a:",
    "a #c",
    "a#c",
    "#c",
    "&a x",
    "*a",
    "!!str 1",
    "!x y",
    "| x",
    "> x",
    "%x",
    "@x",
    "`x",
    "? x",
    ":x",
    "?x",
    "张伟",
    "会议室：三楼",
    "a\tb",
    "a\u2028b",
    "a\x85b",
    "\ufeffa",
    "a ",
    " a",
    "\x7f",
    "\u3000",
    "a\xa0",
    "a,b",
    "[",
    "}",
]
KEYS = st.sampled_from(
    ["id", "name", "a", "b", "yes", "on", "null", "Null", "True", "y", "_x", "a-b", "k1", "NO"]
    + ["<<", "=", "&a", "*a", "!x", "a b", "1", "2026-01-01", "'q'", "-", "x" * 130]
)
ALPHABET = string.ascii_letters[:6] + string.digits[:4] + " -:#'\"&*!<>=~[]{},.|?%@\t_张：\u3000"
SCALARS = st.one_of(st.sampled_from(TRICKY), st.text(st.sampled_from(ALPHABET), max_size=10))


@st.composite
def line(draw: st.DrawFn) -> str:
    indent = " " * draw(st.sampled_from([0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 6]))
    key, value = draw(KEYS), draw(SCALARS)
    spaces = draw(st.sampled_from([" ", " ", "  ", ""]))
    shapes = {
        "key": f"{key}:{spaces}{value}",
        "key alone": f"{key}:{draw(st.sampled_from(['', ' ', '  ']))}",
        "item": f"-{spaces}{value}",
        "item key": f"- {key}:{spaces}{value}",
        "item key alone": f"- {key}:",
        "item item": f"- - {value}",
        "raw": value,
    }
    return indent + shapes[draw(st.sampled_from(sorted(shapes)))]


INSIDE = [  # scalars of the subset that PyYAML types in every which way
    "null",
    "~",
    "Null",
    "yes",
    "No",
    "on",
    "y",
    "True",
    "1",
    "-1",
    "+1",
    "0x1f",
    "0o17",
    "017",
    "0b101",
    "1_000",
    "1:30",
    "190:20:30.15",
    "1.5",
    "-.5",
    ".inf",
    ".NaN",
    "1e5",
    "1.0e+5",
    "2026-03-01",
    "2026-3-1",
    "2026-03-01T09:30",
    "2026-03-01T09:30:15",
    "2026-03-01t09:30:00Z",
    "2026-03-01 09:30:00 +08:00",
    "'q'",
    "'it''s'",
    "''",
    '"dq"',
    '""',
    "[]",
    "{}",
    "a:b",
    "a#c",
    "-x",
    "张伟",
    "会议室：三楼",
    "a\xa0",
    "None",
    "<",
    "a,b",
    "it's",
    'say "hi"',
    "a & b",
    "x!",
]
# mostly of the subset (else it would seldom answer), now and then anything at all
LEAF = st.one_of(*[st.sampled_from(INSIDE)] * 16, SCALARS)
SAFE_KEYS = st.sampled_from(["id", "name", "a", "b", "_x", "a-b", "k1", "yes", "Null", "on"])
WORD = st.one_of(*[SAFE_KEYS] * 8, KEYS)


@st.composite
def mapping(draw: st.DrawFn, indent: int, depth: int) -> list[str]:
    """A block mapping at `indent`, nearly always well formed."""
    lines: list[str] = []
    for key in draw(st.lists(WORD, min_size=1, max_size=4, unique=True)):
        nested = depth < 4 and draw(st.integers(0, 3)) == 0
        if not nested:
            lines.append(" " * indent + f"{key}: {draw(LEAF)}")
            continue
        lines.append(" " * indent + f"{key}:")
        inner = indent + draw(st.sampled_from([0, 2, 2, 4]))
        if draw(st.booleans()):
            lines += draw(sequence(inner, depth + 1))
        elif inner > indent:
            lines += draw(mapping(inner, depth + 1))
    return lines


@st.composite
def sequence(draw: st.DrawFn, indent: int, depth: int) -> list[str]:
    """A block sequence at `indent`: scalars, mappings and sequences as items."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        shape = draw(st.integers(0, 4)) if depth < 4 else 0
        pad = " " * draw(st.sampled_from([1, 1, 1, 2]))
        if shape <= 2:
            lines.append(" " * indent + f"-{pad}{draw(LEAF)}")
            continue
        inner = draw(
            mapping(indent + 1 + len(pad), depth + 1)
            if shape == 3
            else sequence(indent + 1 + len(pad), depth + 1)
        )
        lines.append(" " * indent + "-" + pad + inner[0].lstrip(" "))
        lines += inner[1:]
    return lines


@st.composite
def front_matter(draw: st.DrawFn) -> str:
    """A mapping, with now and then one line replaced by any line at all."""
    lines = draw(mapping(0, 1))
    if draw(st.integers(0, 5)) == 0:
        lines[draw(st.integers(0, len(lines) - 1))] = draw(line())
    return "\n".join(lines) + "\n"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(front_matter())
@example("a:\n- b: 1\n  c:\n  - x\n  d: 2\n- y\ne: -\n")
@example("a:\n  - 1\n  b: 2\n")
@example("yes: 1\nTrue: 2\n")
@example("None: 1\nnull: 2\n")
def test_where_it_answers_the_guarded_loader_answers_the_same(front: str) -> None:
    agrees(front)


CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
WORDS = st.text(
    st.one_of(CJK, st.sampled_from(string.ascii_letters + string.digits + " -_.,:#'\"/()，。：")),
    max_size=30,
)
DATES = st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)).map(dt.date.isoformat)
MINUTES = st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2100, 1, 1)).map(
    lambda d: d.isoformat(timespec="minutes")
)
LEAVES = st.one_of(WORDS, DATES, MINUTES, st.booleans(), st.none(), st.integers(-9, 10**6))
FIELDS = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda key: key not in ("yes", "no", "on", "off", "true", "false", "null")  # quoted keys
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(FIELDS, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(meta=st.dictionaries(FIELDS, VALUES, min_size=1, max_size=8))
def test_what_talkbook_writes_is_read_fast_and_the_same(meta: dict) -> None:
    """Front matter as Document.text() dumps it, of one-line values: inside the subset."""
    parts = models.split(Document(meta).text())
    assert parts is not None
    assert agrees(parts[0]) == meta


def test_the_characters_left_to_the_guarded_loader_are_all_but_yamls_printable_ones() -> None:
    """_OUTSIDE names the characters it matches (it compiles in a ninth of the time of the
    complement): every code point but a line feed and YAML's printable ones that break no
    line, no byte order mark."""
    printable = re.compile(
        "[\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    )
    text = "".join(map(chr, range(0x110000)))
    assert [m.start() for m in plainyaml._OUTSIDE.finditer(text)] == [
        n for n in range(0x110000) if not printable.match(text[n])
    ]
