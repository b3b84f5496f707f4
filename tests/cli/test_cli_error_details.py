"""How ``rrsis`` prints an expected error: one line, unless that line only introduces what is wrong."""

from __future__ import annotations

import errno

import pytest
import torch

from rrsis._atomic import write_error
from rrsis.cli import _DETAIL_LINES, _one_line
from rrsis.engine.checkpoint import load_checkpoint
from rrsis.hub.files import read_state_dict


def test_a_plain_message_stays_one_line():
    assert _one_line(ValueError("bad value 3\nsee the guide\nmore")) == "bad value 3 (+2 more lines; --debug for all)"


def test_a_line_ending_in_a_colon_brings_its_details():
    keys = [f"  layer.{i}.weight" for i in range(_DETAIL_LINES + 3)]
    text = _one_line(ValueError("3 keys not in the model:\n" + "\n".join(keys)))
    lines = text.splitlines()
    assert lines[0] == "3 keys not in the model:" and lines[1] == "  layer.0.weight"
    assert len(lines) == 1 + _DETAIL_LINES and lines[-1].endswith("(+3 more lines; --debug for all)")


@pytest.mark.parametrize("exc, shown", [(ValueError(""), "ValueError"), (KeyError("  "), "KeyError")])
def test_an_empty_message_is_the_type_name(exc, shown):
    assert _one_line(exc) == shown


def test_write_error_of_an_empty_message(tmp_path):
    err = write_error(RuntimeError(""), tmp_path / "x.bin", "weights")
    assert str(err).startswith(f"could not write weights {tmp_path / 'x.bin'}: RuntimeError") and err.errno == errno.EIO


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("reader", [read_state_dict, load_checkpoint])
@pytest.mark.parametrize("kind", ["payload", "garbage", "empty"])
def test_weight_readers_never_advise_loading_anyway(tmp_path, reader, kind):
    marker, path = tmp_path / "ran", tmp_path / "bad.pth"
    if kind == "payload":
        torch.save({"x": torch.zeros(1), "y": _Payload(marker)}, path)
    else:
        path.write_bytes(b"" if kind == "empty" else bytes(range(256)) * 20)
    with pytest.raises(ValueError) as err:
        reader(path)
    msg = str(err.value)
    assert not any(a in msg for a in ("weights_only=False", "set to `False`", "likely succeed", "safe_globals", "trust")), msg
    assert {"payload": "GLOBAL io.open", "garbage": "Unsupported operand", "empty": "empty or truncated"}[kind] in msg
    assert not marker.exists()
