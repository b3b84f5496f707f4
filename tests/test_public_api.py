"""The 0.2.0 public API is recorded in docs/public-api.json; a change to it must be deliberate."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import public_api


def test_public_api_matches_the_record():
    now = public_api.dumps(public_api.public_api())
    recorded = public_api.RECORD.read_text()
    if now != recorded:
        diff = "".join(difflib.unified_diff(recorded.splitlines(True), now.splitlines(True),
                                            "docs/public-api.json (recorded)", "the package now", n=1))
        raise AssertionError(
            "the public API changed (rrsis.__all__ / rrsis.registry.__all__ names or signatures).\n"
            "If the change is intended, record it and list it in CHANGELOG.md:\n"
            "    python tools/public_api.py --write\n" + diff[:6000])


def test_record_covers_every_public_name():
    import rrsis
    import rrsis.registry

    recorded = public_api.public_api()
    assert set(recorded["rrsis"]) == set(rrsis.__all__) - {"__version__"}
    assert set(recorded["rrsis.registry"]) == set(rrsis.registry.__all__)


def test_a_changed_signature_is_seen():
    def before(a, *, b=1):
        """x"""

    def after(a, *, b=2):
        """x"""

    assert public_api._describe(before) != public_api._describe(after)
    assert public_api._describe(before)["signature"] == "(a, *, b=1)"


def test_calling_an_instance_is_recorded_other_dunders_are_not():
    class Callable:
        def __call__(self, texts):
            """x"""

        def __len__(self):
            return 0

        def _helper(self):
            """x"""

    assert public_api._describe(Callable)["members"] == {"__call__": "method(self, texts)"}
    assert "__call__" in public_api.public_api()["rrsis"]["Tokenizer"]["members"]
