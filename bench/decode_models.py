"""Throughput of SunSpec model decoding (the per-poll hot path).

Builds register images with encode_model (100 distinct devices, varied values), then times
decode_model over 10,000 devices for a few model mixes and prints devices/s; then the poll's
way in, ``decode_span`` on the registers as the bridge hands them out (with the answer's
bytes), which uses the generated decoder of a layout that has one, and its ratio to
decode_model in the same run.

    .venv/bin/python bench/decode_models.py [--devices 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import struct
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from adapters.bridge.decoder import Registers
from adapters.sunspec.decode import decode_model, encode_model
from adapters.sunspec.discovery import ModelLocation, decode_span
from adapters.sunspec.models import ModelDef, load_model

Image = list[tuple[ModelDef, list[int]]]  # (definition, body registers) per model


def _common(rng: random.Random) -> tuple[ModelDef, list[int]]:
    model = load_model(1)
    regs = encode_model(
        model,
        {"Mn": "SMA", "Md": "SB3.6-1AV-41", "Vr": "4.01.15.R", "SN": str(rng.randrange(10**10))},
    )
    return model, regs[2:]


def _inverter(rng: random.Random) -> tuple[ModelDef, list[int]]:
    model = load_model(101)
    watts = rng.uniform(0, 3680)
    values = {
        "A": watts / 230, "AphA": watts / 230, "A_SF": -2, "PhVphA": rng.uniform(220, 250),
        "V_SF": -1, "W": round(watts), "W_SF": 0, "Hz": rng.uniform(49.9, 50.1), "Hz_SF": -2,
        "VA": round(watts), "VA_SF": 0, "VAr": 10, "VAr_SF": 0, "PF": -0.99, "PF_SF": -2,
        "WH": rng.randrange(1, 10**8), "WH_SF": 0, "DCA": 2.5, "DCA_SF": -2, "DCV": 330.0,
        "DCV_SF": -1, "DCW": round(watts * 1.03), "DCW_SF": 0, "TmpCab": 41.5, "Tmp_SF": -1,
        "St": 4, "Evt1": 0,
    }  # fmt: skip
    return model, encode_model(model, values)[2:]


def _nameplate(_rng: random.Random) -> tuple[ModelDef, list[int]]:
    model = load_model(120)
    values = {"DERTyp": 4, "WRtg": 3680, "WRtg_SF": 1, "VARtg": 3680, "VARtg_SF": 1,
              "ARtg": 16.0, "ARtg_SF": -1, "PFRtgQ1": 0.8, "PFRtg_SF": -3}  # fmt: skip
    return model, encode_model(model, values)[2:]


def _mppt(rng: random.Random) -> tuple[ModelDef, list[int]]:
    model = load_model(160)
    modules = [
        {"ID": i, "DCA": rng.uniform(0, 10), "DCV": rng.uniform(200, 400),
         "DCW": rng.uniform(0, 3000), "DCWH": rng.randrange(1, 10**6)}
        for i in (1, 2)
    ]  # fmt: skip
    values = {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0, "N": 2}
    return model, encode_model(model, values, {"module": modules})[2:]


def _volt_var(rng: random.Random) -> tuple[ModelDef, list[int]]:
    model = load_model(705)
    points = [
        {"V": v, "Var": q} for v, q in ((92.0, 30.0), (98.0, 0.0), (102.0, 0.0), (108.0, -30.0))
    ]
    curves = [{"ActPt": 4, "DeptRef": 1, "Pt": points} for _ in range(3)]
    return model, encode_model(model, {"Ena": 1, "V_SF": -2, "DeptRef_SF": -2}, {"Crv": curves})[2:]


def _polled(model_id: int) -> Callable[[random.Random], tuple[ModelDef, list[int]]]:
    """A model a driver polls, every register random except the scale factors (-3..3)."""

    def build(rng: random.Random) -> tuple[ModelDef, list[int]]:
        model = load_model(model_id)
        body = [rng.randrange(0x10000) for _ in encode_model(model, {})[2:]]
        for point in model.group.points:
            if point.type == "sunssf":
                body[point.offset - 2] = rng.randrange(-3, 4) & 0xFFFF
        return model, body

    return build


CASES: dict[str, Sequence[Callable[[random.Random], tuple[ModelDef, list[int]]]]] = {
    "103+123 (PV poll)": (_polled(103), _polled(123)),
    "103+124 (battery poll)": (_polled(103), _polled(124)),
    "701+704+802 (battery 802 poll)": (_polled(701), _polled(704), _polled(802)),
    "1+101+120": (_common, _inverter, _nameplate),
    "101 only": (_inverter,),
    "1+101+120+160 (2 MPPT)": (_common, _inverter, _nameplate, _mppt),
    "705 (3 curves x 4 points)": (_volt_var,),
}


def _images(
    builders: Sequence[Callable[[random.Random], tuple[ModelDef, list[int]]]],
) -> list[Image]:
    rng = random.Random(42)
    return [[build(rng) for build in builders] for _ in range(100)]


def _time(images: list[Image], devices: int) -> float:
    start = time.perf_counter()
    for i in range(devices):
        for model, body in images[i % len(images)]:
            decode_model(model, 40000, body)
    return time.perf_counter() - start


def _time_poll_path(images: list[Image], devices: int) -> float:
    answers = [
        [
            (
                ModelLocation(m.id, 40000, len(b)),
                Registers(struct.pack(f">{len(b) + 2}H", m.id, len(b), *b)),
            )
            for m, b in image
        ]
        for image in images
    ]
    start = time.perf_counter()
    for i in range(devices):
        for loc, regs in answers[i % len(answers)]:
            decode_span(loc, regs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    table = Table(
        title=f"decode_model throughput, {args.devices:,} devices (best of {args.repeat})"
    )
    columns = ("models", "seconds", "devices/s", "us/model", "poll path us/model", "ratio")
    for column in columns:
        table.add_column(column, justify="left" if column == "models" else "right")
    for name, builders in CASES.items():
        images = _images(builders)
        _time(images, 200)  # compile plans and warm caches
        _time_poll_path(images, 200)
        seconds = min(_time(images, args.devices) for _ in range(args.repeat))
        poll_s = min(_time_poll_path(images, args.devices) for _ in range(args.repeat))
        models = args.devices * len(builders)
        per_model, poll_per_model = seconds / models * 1e6, poll_s / models * 1e6
        table.add_row(
            name, f"{seconds:.3f}", f"{args.devices / seconds:,.0f}", f"{per_model:.1f}",
            f"{poll_per_model:.1f}", f"{poll_s / seconds:.2f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
