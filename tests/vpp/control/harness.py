"""The controller tests' plant and sites under their older import path; they are
:mod:`vpp.testing.harness` (shared with the benchmarks under ``bench/``): import from there."""

from vpp.testing.harness import DEMO as DEMO
from vpp.testing.harness import Plant as Plant
from vpp.testing.harness import demo_site as demo_site
from vpp.testing.harness import plant as plant
from vpp.testing.harness import small_site as small_site
