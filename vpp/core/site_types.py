"""Validators and constrained types shared by the site schema (:mod:`vpp.core.site`).

Imports nothing from ``adapters`` or ``optimizer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)

from vpp.core.site_load import ConfigError as ConfigError
from vpp.core.site_load import SiteFileError as SiteFileError
from vpp.core.site_refs import ID_PATTERN
from vpp.core.site_refs import device_labels as device_labels
from vpp.core.site_refs import reference_problems as reference_problems
from vpp.core.site_refs import resolve_host as resolve_host


def between(lo: float, hi: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not lo <= value <= hi:
            lo_s = f"{lo:g}" if isinstance(lo, float) else str(lo)
            hi_s = f"{hi:g}" if isinstance(hi, float) else str(hi)
            raise ValueError(f"must be {lo_s}..{hi_s}, got {value}")
        return value

    return check


def positive(value: Any) -> Any:
    if not value > 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def non_negative(value: Any) -> Any:
    if not value >= 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


Port = Annotated[int, AfterValidator(between(1, 65535))]
UnitId = Annotated[int, AfterValidator(between(0, 247))]
RegisterAddress = Annotated[int, AfterValidator(between(0, 65535))]
Pct = Annotated[float, AfterValidator(between(0.0, 100.0))]
Ratio = Annotated[float, AfterValidator(between(0.0, 1.0))]
Efficiency = Annotated[float, AfterValidator(between(0.01, 1.0))]
PositiveFloat = Annotated[float, AfterValidator(positive)]
NonNegativeFloat = Annotated[float, AfterValidator(non_negative)]
TempC = Annotated[float, AfterValidator(between(-50.0, 150.0))]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class SiteModel(BaseModel):
    # allow_inf_nan=False: every float field refuses inf and nan (TOML has both).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
