"""docs/site-reference.md is generated from the site schema and kept up to date."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from vpp.core import reference, site
from vpp.core.reference import main, render, unit_of

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "site-reference.md"


def test_the_committed_reference_is_what_the_schema_generates() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/site-reference.md is stale: run python -m vpp.core.reference "
        "--out docs/site-reference.md (or make docs) and commit it"
    )


def test_every_field_of_every_model_is_in_it() -> None:
    text = DOC.read_text(encoding="utf-8")
    paths = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    names = {p.rsplit(".", 1)[-1] for p in paths}
    # The schema's models: vpp.core.site's own and those it takes from its modules.
    models = [
        m
        for _, m in inspect.getmembers(site, inspect.isclass)
        if issubclass(m, BaseModel)
        and (m.__module__ == site.__name__ or m.__module__.startswith(f"{site.__name__}_"))
    ]
    assert len(models) >= 14
    for model in models:
        for name in model.model_fields:
            if model is site.Site:
                assert name == "devices" or f"`[{name}]`" in text, name
            else:
                assert name in names, f"{model.__name__}.{name} is missing"
    assert len(paths) > 80


def test_rows_carry_type_range_unit_default_and_the_schema_comment() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert (
        "| `grid.limit_margin_pct` | float, 0..50 | % | `3` | Share of each grid limit that "
        "plans keep free, so that forecast errors between two corrections do not push the "
        "measured exchange past the limit. |"
    ) in text
    assert "| `devices[].modbus.port` | int, 1..65535 | - | `502` | - |" in text
    assert "| `grid.import_limit_w` | float, > 0 | W | required |" in text
    assert (
        '| `devices[].kind` | `"pv"` or `"battery"` or `"meter"` or `"heat_pump"` or '
        '`"datacentre"` | - | required |'
    ) in text
    assert "| `run.snapshot_retention_days` | float, > 0; or unset | days | unset |" in text
    assert '| `optimizer.mode` | `"aggregated"` or `"device"` | - | `"aggregated"` |' in text
    # RST literals of the comments become Markdown code; pipes cannot break a table.
    assert "``" not in text
    for line in text.splitlines():
        if line.startswith("| `"):
            assert len(re.split(r"(?<!\\)\|", line)) == 7, line


class Inner(BaseModel):
    """What the inner table is for."""

    depth_m: float = Field(default=2.0, gt=0, le=10, description="From Field(description).")


class Example(BaseModel):
    """An example section."""

    #: Comment lines above
    #: the attribute.
    flow_w: float = 1500.0
    mode: Literal["a", "b"] = "a"
    label: str | None = None
    """A docstring below the attribute."""
    inner: Inner = Inner()


class Document(BaseModel):
    example: Example
    other: Inner


def test_descriptions_come_from_comments_docstrings_and_field_descriptions() -> None:
    text = render(Document)
    assert "## `[example]`\n\nAn example section.\n" in text
    assert "| `example.flow_w` | float | W | `1500` | Comment lines above the attribute. |" in text
    assert '| `example.mode` | `"a"` or `"b"` | - | `"a"` | - |' in text
    assert (
        "| `example.label` | string; or unset | - | unset | A docstring below the attribute. |"
        in (text)
    )
    assert "| `example.inner` | table | - | table below | - |" in text
    assert "## `example.inner`\n\nWhat the inner table is for.\n" in text
    assert (
        "| `example.inner.depth_m` | float, > 0, <= 10 | - | `2` | From Field(description). |"
    ) in text
    assert "| `other.depth_m` |" in text


def test_units_follow_the_names() -> None:
    assert unit_of("store_max_charge_th_w") == "W thermal"
    assert unit_of("import_fee_eur_per_mwh") == "EUR/MWh"
    assert unit_of("store_loss_pct_per_h") == "%/h"
    assert unit_of("capacity_wh") == "Wh"
    assert unit_of("interval_s") == "s"
    assert unit_of("http_port") == ""


def test_check_and_out(tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    assert main(["--check", str(out)]) == 1  # missing
    assert main(["--out", str(out)]) == 0
    assert main(["--check", str(out)]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert main(["--check", str(out)]) == 1


def test_the_generator_stands_on_the_core_only() -> None:
    source = inspect.getsource(reference)
    imported = re.findall(r"^(?:from|import) (vpp[\w.]*)", source, flags=re.MULTILINE)
    assert imported and all(name.startswith("vpp.core") for name in imported)
