"""The resource-bound harness (tests/_limits.py) itself: a child that allocates past its limit
ends quickly with an allocation error instead of taking the machine."""

from _limits import run_limited


def test_an_allocation_past_the_limit_fails_fast_in_the_child():
    r = run_limited("import torch; torch.empty(1 << 40, dtype=torch.uint8).fill_(1)", extra_gib=1.0)
    assert r.returncode != 0 and not r.timed_out
    assert "allocate" in r.stderr or "MemoryError" in r.stderr
