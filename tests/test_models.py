"""Documents: front matter and body, dates as ISO strings, line numbers for findings."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talkbook.errors import InvalidDocument
from talkbook.models import Document, field_lines, line_of, new_id, parse

RECORD = """---
id: T-k3x9p2
cadre: C-7k2m9q
held_at: 2026-03-10T09:30
topics:
  - 对岗位调整的认识
  - 家庭实际困难
follow_ups:
  - what: 协调市人民医院专家会诊
    owner: 干部一科
    due: 2026-04-10
  - what: 送达调任通知
    owner: 干部二科
    due: 2026-03-12
    done: true
work_history:
  - {from: 1990-07-01, to: 2001-12-31, unit: 县财政局, post: 科员}
---

## 谈话结论

思想稳定，工作积极。
"""


def line(text: str, fragment: str) -> int:
    """1-based line of the first line containing `fragment`."""
    return next(i for i, row in enumerate(text.splitlines(), 1) if fragment in row)


def test_parse_keeps_cjk_and_dates_as_iso_strings() -> None:
    doc = parse(RECORD, "record.md")
    assert doc.meta["topics"] == ["对岗位调整的认识", "家庭实际困难"]
    assert doc.meta["follow_ups"][0] == {
        "what": "协调市人民医院专家会诊",
        "owner": "干部一科",
        "due": "2026-04-10",
    }
    assert doc.meta["follow_ups"][1]["done"] is True
    assert doc.meta["held_at"] == "2026-03-10T09:30"
    assert doc.meta["work_history"][0]["from"] == "1990-07-01"
    assert doc.body.strip() == "## 谈话结论\n\n思想稳定，工作积极。"
    assert doc.id == "T-k3x9p2" and doc.source == "record.md"


def test_round_trip_with_cjk() -> None:
    doc = parse(RECORD)
    again = parse(doc.text())
    assert again == doc
    assert again.text() == doc.text()
    assert "协调市人民医院专家会诊" in doc.text()  # UTF-8 as it is, not \u escapes


def test_dates_dump_unquoted_and_datetimes_without_seconds_stay_minutes() -> None:
    doc = Document({"birth_date": "1968-05-12", "at": "2026-12-01T09:30", "note": "岗位调整"})
    text = doc.text()
    assert "birth_date: 1968-05-12\n" in text
    assert "at: 2026-12-01T09:30\n" in text  # no quotes, no seconds added
    assert parse(text).meta == doc.meta


def test_yaml_timestamps_become_iso_strings() -> None:
    text = "---\na: 2026-03-10 09:30:00\nb: 2026-03-10T09:30:15\nc: 2026-03-10\n---\n"
    assert parse(text).meta == {
        "a": "2026-03-10T09:30",
        "b": "2026-03-10T09:30:15",
        "c": "2026-03-10",
    }


def test_date_shaped_text_that_is_no_date_stays_text() -> None:
    doc = Document({"note": "2026-02-30", "其他": "2026-13-01T09:30:00"}, "正文")
    assert parse(doc.text()).meta == doc.meta


def test_with_meta_changes_fields_and_keeps_body() -> None:
    doc = parse(RECORD)
    changed = doc.with_meta(confirmed_on="2026-03-11")
    assert changed.meta["confirmed_on"] == "2026-03-11" and changed.body == doc.body
    assert "confirmed_on" not in doc.meta


def test_documents_are_equal_by_content_whatever_their_source() -> None:
    doc = Document({"id": "T-k3x9p2"}, "正文", "a.md")
    assert doc == Document({"id": "T-k3x9p2"}, "正文", "b.md")
    assert doc != Document({"id": "T-k3x9p2"}, "其他", "a.md")
    assert doc != Document({"id": "T-aaaaaa"}, "正文", "a.md")
    assert repr(doc) == "Document(meta={'id': 'T-k3x9p2'}, body='正文', source='a.md')"
    with pytest.raises(TypeError):
        hash(doc)  # its front matter is a dict: no document is a set member or a dict key


def test_field_lines_for_nested_paths() -> None:
    lines = field_lines(RECORD)
    assert lines["id"] == 2
    assert lines["held_at"] == line(RECORD, "held_at:")
    assert lines["topics.1"] == line(RECORD, "家庭实际困难")
    assert lines["follow_ups.0"] == line(RECORD, "协调市人民医院专家会诊")
    assert lines["follow_ups.0.due"] == line(RECORD, "due: 2026-04-10")
    assert lines["follow_ups.1.done"] == line(RECORD, "done: true")
    assert lines["work_history.0.unit"] == line(RECORD, "县财政局")


def test_line_of_falls_back_to_the_nearest_parent() -> None:
    lines = field_lines(RECORD)
    assert line_of(lines, "follow_ups.1.due") == line(RECORD, "due: 2026-03-12")
    assert line_of(lines, "follow_ups.1.missing") == lines["follow_ups.1"]
    assert line_of(lines, "follow_ups.7.due") == lines["follow_ups"]
    assert line_of(lines, "nowhere") == 1
    assert line_of(lines, "") == 1


def test_field_lines_of_text_without_front_matter_or_malformed() -> None:
    assert field_lines("谈话记录，没有文件头\n") == {}
    assert field_lines("---\nname: 张伟\n") == {}  # never closed
    assert field_lines("---\nname: [张伟\n---\n") == {}


@pytest.mark.parametrize(
    "text, bad",
    [
        ("---\nid: T-k3x9p2\nplace: 会议室: 三楼\n---\n", "place:"),
        ("---\nid: T-k3x9p2\ncadre: C-7k2m9q\ntopics:\n  - 一\n - 二\n---\n", " - 二"),
        ("---\nname: 张伟\n\tunit: 市财政局\n---\n正文\n", "unit:"),
        ("---\nname: 张伟\n- 李明\nunit: 市财政局\n---\n", "- 李明"),
    ],
)
def test_malformed_yaml_reports_its_line(text: str, bad: str) -> None:
    with pytest.raises(InvalidDocument) as caught:
        parse(text, "talks/2026/T-k3x9p2/plan.md.age")
    message = str(caught.value)
    assert message.startswith(f"talks/2026/T-k3x9p2/plan.md.age:{line(text, bad)}: malformed YAML")
    assert "\n" not in message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("谈话记录\n", ":1: no YAML front matter"),
        ("---\nbirth_date: 2026-13-45\n---\n", ":1: malformed YAML"),
        pytest.param("---\n- 张伟\n- 李明\n---\n", ":2: front matter must be"),
        pytest.param("---\nname: 张伟\n\n谈话记录\n", ":1: "),
    ],
)
def test_other_bad_documents(text: str, expected: str) -> None:
    with pytest.raises(InvalidDocument, match=expected):
        parse(text, "cadres/C-7k2m9q.md.age")


def test_byte_order_mark_is_ignored() -> None:
    assert parse("\ufeff---\nname: 张伟\n---\n").meta == {"name": "张伟"}


def test_new_ids_have_the_expected_shape_and_avoid_taken_ones() -> None:
    taken = {new_id("T") for _ in range(50)}
    fresh = new_id("T", taken)
    assert fresh not in taken and fresh.startswith("T-") and len(fresh) == 8
    assert not set(fresh[2:]) & set("ilou")


# -- property: anything the model holds survives text() → parse() ------------------------------
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
ASCII = st.sampled_from(string.ascii_letters + string.digits + " -_.,:;!?#'\"/()[]{}&*%@")
TEXT = st.text(st.one_of(CJK, ASCII, st.sampled_from("，。：、（）“”\n")), max_size=40)
DATES = st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)).map(dt.date.isoformat)
MINUTES = st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2100, 1, 1)).map(
    lambda d: d.isoformat(timespec="minutes")
)
LEAVES = st.one_of(TEXT, DATES, MINUTES, st.booleans(), st.none())
KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(meta=st.dictionaries(KEYS, VALUES, max_size=6), body=TEXT)
def test_any_document_survives_text_and_parse(meta: dict, body: str) -> None:
    doc = Document(meta, body)
    again = parse(doc.text())
    assert again.meta == meta
    assert again.body.strip() == body.strip("\n").strip()
