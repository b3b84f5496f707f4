"""The JSON files rrsis writes hold their text as UTF-8 (not ``\\u`` escapes), read back to the
same values as before; a lone surrogate (an undecodable file-name byte) stays escaped."""

import json
import re
from pathlib import Path

from rrsis._atomic import json_text
from rrsis._lock import LOCK_NAME, output_lock

ROOT = Path(__file__).resolve().parents[1] / "rrsis"


def test_json_text_is_utf8_and_reads_back_as_the_ascii_form():
    value = {"texts": ["最小的 building", "thé plane"], "source": "/d/北京 \udcff.tif", "n": [1, 2.5, None]}
    text = json_text(value, indent=1)
    assert "最小的 building" in text and "thé" in text and "北京" in text and "\\udcff" in text
    assert json.loads(text) == value == json.loads(json.dumps(value, indent=1))
    text.encode("utf-8")  # nothing UTF-8 cannot hold


def test_the_lock_file_names_its_command_in_utf8(tmp_path):
    out = tmp_path / "结果"
    with output_lock(out, folder=True, command="rrsis predict --text 北京"):
        raw = (out / LOCK_NAME).read_bytes()
        assert "北京".encode() in raw and json.loads(raw)["command"] == "rrsis predict --text 北京"


def test_no_file_is_written_as_ascii_json():
    """Every JSON written (``json.dump`` to a file, ``json.dumps`` to ``atomic_write`` / ``write_text``)
    goes through ``json_text``; ``json.dumps`` stays where it is hashed or held in memory."""
    found = []
    for path in ROOT.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"json\.dump\(|(atomic_write|write_text|\.write)\([^)]*json\.dumps\(", line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
