"""Where the official-format reference fixtures live (shared/fixtures beside the repo)."""

import os
from pathlib import Path


def find_fixtures() -> Path:
    # CI clones the repo with shared/ beside it; RRSIS_FIXTURES overrides.
    candidates = [
        os.environ.get("RRSIS_FIXTURES", ""),
        str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"),
        "/work/shared/fixtures",
    ]
    for c in candidates:
        if c and (Path(c) / "lavt" / "checkpoint.pth").exists():
            return Path(c)
    return Path(candidates[1])


FIXTURES = find_fixtures()
