"""``rrsis predict --text``: ``@FILE`` read by its kind (a JSON list of strings, a CSV's ``text`` or
``expression`` column, else one a line), values that arrived with surrogate escapes (a non-UTF-8
locale) decoded back, and stdout that cannot encode an expression printing escapes."""

import io
import sys

import pytest

from rrsis.cli import _printable_stdout
from rrsis.cli.text_files import argv_text, expand_texts


def test_a_json_file_is_a_list_of_strings(tmp_path):
    f = tmp_path / "e.json"
    f.write_text('[\n  "the smallest building",\n  " the white plane ",\n  ""\n]\n', encoding="utf-8")
    assert expand_texts([f"@{f}", "the road"]) == ["the smallest building", "the white plane", "the road"]
    f.write_bytes(b"\xef\xbb\xbf" + '["最小的建筑"]'.encode())  # a byte-order mark allowed
    assert expand_texts([f"@{f}"]) == ["最小的建筑"]


@pytest.mark.parametrize(("content", "told"), [
    ('{"texts": ["the tank"]}', "a JSON object; a .json file of expressions is a JSON list of strings"),
    ('"the tank"', "a JSON string; a .json file of expressions is a JSON list of strings"),
    ('["the tank", 2]', "item 2 is a JSON number, not a string"),
    ('["the tank", ["a"]]', "item 2 is a JSON list, not a string"),
    ("the tank\nthe road\n", "not JSON (Expecting value, line 1)"),
    ("[]", "no expressions in it (a JSON list of strings"),
])
def test_any_other_json_is_refused_saying_what_it_is(tmp_path, content, told):
    f = tmp_path / "e.json"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="^(.*)$") as exc:
        expand_texts([f"@{f}"])
    assert str(exc.value).startswith(f"--text @{f}: {told}")


def test_a_csv_file_gives_its_text_or_expression_column(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text('id,Expression,note\r\n1,the smallest building,x\r\n2,"the white plane, north",\r\n\r\n3,,y\r\n',
                 encoding="utf-8")
    assert expand_texts([f"@{f}"]) == ["the smallest building", "the white plane, north"]
    f.write_text("text\n最小的 building\n", encoding="utf-8")
    assert expand_texts([f"@{f}"]) == ["最小的 building"]


def test_a_csv_without_such_a_column_is_refused_naming_its_columns(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text("id,phrase\n1,the tank\n", encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        expand_texts([f"@{f}"])
    assert str(exc.value).startswith(f"--text @{f}: no column named text or expression in the header row "
                                     "(its columns: 'id', 'phrase')")
    f.write_bytes(b"text\n\xff\xfe\n")
    with pytest.raises(ValueError, match="line 2 is not UTF-8"):
        expand_texts([f"@{f}"])


def test_other_files_stay_one_expression_a_line(tmp_path):
    f = tmp_path / "e.list"
    f.write_text('["the tank"]\nid,expression\n# note\n', encoding="utf-8")
    assert expand_texts([f"@{f}"]) == ['["the tank"]', "id,expression"]


def test_surrogate_escapes_of_a_non_utf8_locale_are_decoded_back(monkeypatch):
    # What Python makes of the UTF-8 bytes of "最小的 tank" under LC_ALL=C (ASCII, surrogateescape).
    monkeypatch.setattr("os.fsencode", lambda s: s.encode("ascii", "surrogateescape"))
    escaped = "最小的 tank".encode().decode("ascii", "surrogateescape")
    assert escaped != "最小的 tank"
    assert expand_texts([escaped, "@@" + escaped]) == ["最小的 tank", "@最小的 tank"]
    assert argv_text("the tank", 1) == "the tank"
    latin1 = "thé tank".encode("latin-1").decode("ascii", "surrogateescape")  # not UTF-8 either
    with pytest.raises(ValueError, match=r"^--text 2 is not UTF-8 text \(.*\); give it in UTF-8"):
        expand_texts(["the road", latin1])


def test_stdout_that_cannot_encode_an_expression_prints_escapes(monkeypatch):
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii", errors="surrogateescape")  # Python's stdout under LC_ALL=C
    monkeypatch.setattr(sys, "stdout", out)
    _printable_stdout()
    print("'最小的 tank' (global): 12 pixels")
    out.flush()
    assert raw.getvalue().decode("ascii") == "'\\u6700\\u5c0f\\u7684 tank' (global): 12 pixels\n"
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", utf8)
    _printable_stdout()
    assert utf8.errors == "strict"  # a UTF-8 stdout is left as it is
