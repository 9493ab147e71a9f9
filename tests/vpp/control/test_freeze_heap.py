"""What ``vpp run`` does to the garbage collector once started (in a child process: the
collector's settings are the whole process's)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from vpp.control.runner import YOUNG_THRESHOLD, freeze_heap
alive = [[i] for i in range(1000)]
before = gc.get_threshold()
freeze_heap()
print(gc.get_freeze_count() >= 1000, gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:]))
"""


def test_freeze_heap_freezes_what_lives_and_collects_the_young_less_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["True", "True"], out.stderr
