"""A solve that HiGHS ends without a status from its starting basis is solved again from
scratch before the plan falls back.

The LP and the basis are those of a replayed plan of the demo district (15 December 2018,
the chain from that day, `bench/replay_year.py --week-starts 2018-12-15`): started from the
basis the planner set (:mod:`optimizer.basis`), HiGHS 1.15.1 ends with ``kUnknown``; from
scratch the same LP is optimal. In the year's replay at f78f224, 36 plans of that day fell
back to the rules so, 49 in the year.
"""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import highspy
import pytest

from optimizer.params import DETERMINISTIC, SolveOptions
from optimizer.solve import run_highs

DATA = Path(__file__).parent / "data"
#: The optimum of the LP, from scratch (HiGHS, interior point and simplex agree).
OPTIMUM_EUR = 3696.8352


def loaded(tmp_path: Path) -> highspy.Highs:
    """The LP with the basis it was started from."""
    files = {}
    for suffix in ("mps", "bas"):
        path = tmp_path / f"case.{suffix}"
        with (
            gzip.open(DATA / f"unknown_from_basis.{suffix}.gz", "rb") as src,
            path.open("wb") as out,
        ):
            shutil.copyfileobj(src, out)
        files[suffix] = str(path)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    assert h.readModel(files["mps"]) == highspy.HighsStatus.kOk
    assert h.readBasis(files["bas"]) == highspy.HighsStatus.kOk
    return h


def test_the_basis_alone_ends_without_a_status(tmp_path: Path) -> None:
    """The case is real: from its basis, HiGHS gives no optimum (if a HiGHS release solves it,
    this test says so, and the case no longer tests the fresh start)."""
    h = loaded(tmp_path)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kUnknown


@pytest.mark.parametrize(
    "options, limit_s",
    [(DETERMINISTIC, math.inf), (SolveOptions(threads=1), 60.0)],
    ids=["replay", "live"],
)
def test_solved_again_from_scratch(tmp_path: Path, options: SolveOptions, limit_s: float) -> None:
    h = loaded(tmp_path)
    result, primal = run_highs(h, options, limit_s, milp=False)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(OPTIMUM_EUR, abs=1e-3)
    assert len(primal) == h.getNumCol()
