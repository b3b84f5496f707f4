"""``rrsis synth --nir``: 4-band scenes in both layouts, and what it refuses."""

import json

from rrsis.cli import main
from rrsis.data import read_image
from rrsis.data.tiff import read_tiff_info


def test_synth_nir_writes_four_band_tiffs(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["synth", str(out), "--n-scenes", "3", "--size", "64", "--nir", "--quiet"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["config"]["nir"] is True and stats["n_scenes"] == 3
    for path in [*(out / "rrsisd" / "JPEGImages").iterdir(), *(out / "refsegrs" / "images").iterdir()]:
        info = read_tiff_info(str(path))
        assert path.suffix == ".tif" and info.samples == 4 and not info.alpha_last
        assert read_image(str(path), channels=4).shape == (64, 64, 4)
    assert "wrote 3 scenes" in capsys.readouterr().out


def test_synth_nir_is_refused_with_large(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--large", "--nir"]) != 0
    assert "--nir is for the small-scene sets" in capsys.readouterr().err
