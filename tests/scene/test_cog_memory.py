"""The mask COG of a 20480² scene is written in bounded memory (slow: about a minute on 2 cores).

The cheaper tests of the same writer (tests/scene/test_cog.py) check the file; this one checks
that memory does not grow with the scene: the writer must never hold the whole mask.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("rasterio")

from _fixtures import REPO

CHILD = r"""
import sys
import numpy as np
import rasterio
from affine import Affine
from rrsis.scene import open_scene
from rrsis.scene.cog import cog_problems
from rrsis.scene.write import MaskWriter

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

n, folder, resampling = int(sys.argv[1]), sys.argv[2], sys.argv[3]
src = f"{folder}/scene.tif"
with rasterio.open(src, "w", driver="GTiff", height=n, width=n, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=Affine(0.5, 0, 400000, 0, -0.5, 5000000), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate", sparse_ok=True):
    pass  # blocks never written read as 0: a scene of n² pixels in a few KB
rows = 256
yy, xx = np.mgrid[0:rows, 0:n]
strip = np.where(np.sin(yy / 31.0) * np.cos(xx / 47.0) > 0, 255, 0).astype(np.uint8)
valid = np.ones((rows, n), bool)
del yy, xx
with open_scene(src) as scene:
    try:  # restart the peak here (Linux): imports and the strip above are not the writer's
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    before = peak_mib()
    writer = MaskWriter(f"{folder}/mask.tif", scene, resampling=resampling)
    for r0 in range(0, n, rows):
        writer.write(r0, strip, valid)
    writer.close()
    print(peak_mib() - before, cog_problems(f"{folder}/mask.tif"))
"""


@pytest.mark.slow
def test_a_20480_mask_cog_is_written_without_holding_the_mask(tmp_path):
    n = 20480  # a 400 MiB mask
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(tmp_path), "nearest"], env=env,
                         capture_output=True, text=True, check=True).stdout.split(maxsplit=1)
    grown, problems = float(out[0]), out[1].strip()
    assert problems == "[]"
    assert grown < 200, f"writing the mask raised peak RSS by {grown:.0f} MiB (the mask is 400 MiB)"
