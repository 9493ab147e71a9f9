"""Which rule applies to which device, and the §14a EnWG floor.

§9 EEG (feed-in management): a PV system with ``eeg_controllable`` follows the grid
operator's stages of 100 / 60 / 30 / 0 %. The stage is taken as a share of the inverter's
AC rating ``rated_w`` and applied as a cap on its AC output (a PV setpoint is that cap, in
W). The law caps the feed-in at the connection point; capping the output is the stricter
reading (own consumption behind the meter is not credited) and needs no meter per system.

**0 % and the inverter's minimum.** Several inverters go to standby below their minimum
limit (``min_limit_pct``), and device safety comes first in the envelope
(:mod:`vpp.control.envelope`): a stage below the minimum holds the inverter *at* its
minimum and is reported as not compliant (:attr:`vpp.signals.resolve.Resolved.non_compliant`),
never written below it. A site that must reach 0 % configures ``min_limit_pct`` for
inverters that can go to 0 (or disconnects them by the relay itself, outside this
controller).

§14a EnWG (controllable consumers, BNetzA Festlegung BK6-22-300 of 27.11.2023, Anlage 1):
a battery's charging from the grid (``max_charge_w``) and a heat pump's electric power
(``max_el_w``) with ``enwg_14a`` may be dimmed, but never below the floor ``P_min,14a``:

- direct control (each device dimmed by its own contact): 4.2 kW per device; for heat pumps
  (and room cooling) rated above 11 kW, 40 % of the rating if that is more
  (:func:`device_floor_w`);
- control through an energy-management system behind one connection (``ems``): one floor
  for all its n controllable consumers,
  ``P_min,14a = 4.2 kW + (n - 1) * GZF(n) * 4.2 kW`` with the simultaneity factor
  GZF = 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5 for n = 2..8 and 0.45 for n >= 9
  (:func:`simultaneity_factor`, :func:`ems_floor_w`).

Source and how far it is justified. The primary text, Anlage 1 of BK6-22-300 (published by
the BNetzA as ``BK6-22-300_Beschluss_Anlage1.pdf`` under Beschlusskammern / BK6-GZ / 2022),
was not read for this code. What was checked, in public material:

- Two independent open-source EMS implementations carry the same GZF table (1 -> 1,
  2 -> 0.8, 3 -> 0.75, 4 -> 0.7, 5 -> 0.65, 6 -> 0.6, 7 -> 0.55, 8 -> 0.5, 9 or more ->
  0.45) and the same formula ``4.2 kW + (n - 1) * GZF(n) * 4.2 kW``; one of them gives its
  source as Anlage 1 Ziff. 4.5.2 and, with a heat pump or room cooling above 11 kW, takes
  ``max(0.4 * sum P_heat_pumps, 0.4 * sum P_cooling)`` as the first term instead of 4.2 kW.
  A third worked example (a 14 kW heat pump with four chargers and a battery: 0.4 * 14 kW
  + 5 * 0.6 * 4.2 kW = 18.2 kW) agrees, and so does :func:`ems_floor_w` on it.
- The documentation of the Rust ``metering`` crate (docs.rs, ``grid.md``) quotes Anlage 1
  Ziff. 2.4.2: behind one connection all heat pumps together are one controllable consumer
  (of their summed power), all room cooling another; a charging point or battery counts on
  its own when it alone exceeds 4.2 kW. The quoted text asks whether the sum over all
  systems behind the connection exceeds 4.2 kW "je Fallgruppe" (per case group: 2.4.1 b
  heat pumps, 2.4.1 c room cooling), so the two are separate groups. Behind an EMS this code
  takes all ``enwg_14a`` heat pumps of the site as one consumer of their summed rating
  (:func:`heat_pumps_floor_w`), all that the site file declares ``enwg_14a_use =
  "room_cooling"`` as another (the same floor rule: 4.2 kW, 40 % of the sum above 11 kW)
  and every battery as one consumer of its own (:func:`consumer_group`).
- evcc and openWB do not compute the several-device floor: the installer enters the total
  (evcc ``hems`` ``maxPower`` / ``maxconsumptionpower``, openWB "maximale Bezugsleistung"
  from the formula); OpenEMS's ESS §14a controller limits one battery to -4200 W. An EEBus
  LPC control box sends the limit itself.

So the table is corroborated, not verified against the ruling. Two choices are ours and
marked as such: where one device's own floor is larger than 4.2 kW (a large heat pump), the
formula is generalised as ``max(f) + GZF(n) * (sum(f) - max(f))`` over the devices' own
floors ``f``, which is the rule's formula when every floor is 4.2 kW and the Ziff. 4.5.2
reading above for one large heat pump; and the EMS total is split over the devices in
proportion to their floors (an EMS may share it out differently; a per-device bound needs
one split, and this one keeps every device at the same fraction of its floor).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from vpp.core.site import DeviceKind

#: The §14a floor per controllable consumer [W].
FLOOR_14A_W = 4200.0
#: Heat pumps and room cooling rated above this [W] keep a share of their rating instead.
LARGE_HEAT_PUMP_W = 11_000.0
LARGE_HEAT_PUMP_SHARE = 0.4
#: Simultaneity factor by number of devices behind one EMS (BK6-22-300, Anlage 1, Ziff. 4.5.2
#: as open implementations cite it; not checked against the ruling itself, see the module doc).
_GZF = {1: 1.0, 2: 0.8, 3: 0.75, 4: 0.7, 5: 0.65, 6: 0.6, 7: 0.55, 8: 0.5}
GZF_MANY = 0.45


def feed_in_rule(device: Any) -> bool:
    """Whether §9 EEG stages apply to ``device`` (an enabled, controllable PV inverter)."""
    return bool(device.kind == DeviceKind.PV and device.enabled and device.eeg_controllable)


#: Solarspitzengesetz (EEG as amended with effect from 25 Feb 2025): PV systems commissioned
#: from this day on with no smart-meter gateway feed in at most 60 % of their installed
#: (peak) power, and get no payment for feed-in while the day-ahead price is negative.
SOLARSPITZEN_FROM = date(2025, 2, 25)
SOLARSPITZEN_PCT = 60.0
#: Systems below 2 kWp (plug-in balcony PV) are exempt; from 100 kWp on the system is
#: directly marketed and remote-controlled instead [W peak].
SOLARSPITZEN_MIN_WP = 2_000.0
SOLARSPITZEN_MAX_WP = 100_000.0


def pv_rule(device: Any) -> bool:
    """Whether ``device`` is an enabled PV inverter (any feed-in cap can act on it)."""
    return bool(device.kind == DeviceKind.PV and device.enabled)


def solarspitzen_rule(device: Any) -> bool:
    """Whether the Solarspitzengesetz rules hold ``device``: an enabled PV system of 2 to
    100 kWp commissioned on or after 25 Feb 2025 without a smart-meter gateway.

    The site file's facts decide (``commissioned_on``, ``peak_wp``, ``smart_meter_gateway``);
    a system with no commissioning date counts as older. Both rules (the 60 % cap and no
    feed-in at negative prices) are given the same scope here: the law's finer points (the
    negative-price rule also for systems with a gateway, from the year after it is fitted)
    are left to the operator, who can mark such a system ``smart_meter_gateway = false``.
    """
    when = getattr(device, "commissioned_on", None)
    return bool(
        pv_rule(device)
        and when is not None
        and when >= SOLARSPITZEN_FROM
        and not getattr(device, "smart_meter_gateway", False)
        and SOLARSPITZEN_MIN_WP <= float(device.dc_peak_w) < SOLARSPITZEN_MAX_WP
    )


def consumption_rule(device: Any) -> bool:
    """Whether a §14a dim applies to ``device`` (an enabled battery or heat pump marked
    ``enwg_14a``)."""
    return bool(
        device.kind in (DeviceKind.BATTERY, DeviceKind.HEAT_PUMP)
        and device.enabled
        and getattr(device, "enwg_14a", False)
    )


def consumption_rating_w(device: Any) -> float:
    """The most the device draws from the grid [W]: charging for a battery, electric power
    for a heat pump."""
    if device.kind == DeviceKind.BATTERY:
        return float(device.max_charge_w)
    return float(device.max_el_w)


def device_floor_w(device: Any) -> float:
    """The §14a floor of one device under direct control [W]."""
    if device.kind == DeviceKind.HEAT_PUMP and device.max_el_w > LARGE_HEAT_PUMP_W:
        return max(FLOOR_14A_W, LARGE_HEAT_PUMP_SHARE * float(device.max_el_w))
    return FLOOR_14A_W


def simultaneity_factor(n: int) -> float:
    """GZF for ``n`` controllable consumers behind one EMS."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _GZF.get(n, GZF_MANY)


def ems_floor_w(floors: Sequence[float]) -> float:
    """``P_min,14a`` of the devices with their own ``floors`` [W] behind one EMS."""
    if not floors:
        return 0.0
    top = max(floors)
    return top + simultaneity_factor(len(floors)) * (sum(floors) - top)


def consumption_caps_w(
    devices: Sequence[Any], limit_w: float | None, ems: bool
) -> dict[str, float]:
    """Each device's consumption cap [W] under a §14a dim to ``limit_w`` (None: to the floor).

    Direct control: ``limit_w`` is per device, raised to the device's floor. EMS: ``limit_w``
    is the total for all ``devices``, raised to :func:`ems_floor_w` over the consumers (the heat
    pumps together count as one, the room cooling as another: :func:`consumer_group`), and
    split in proportion to the consumers' floors, a group's share over its devices in
    proportion to their ratings (module doc).
    """
    asked = 0.0 if limit_w is None else limit_w
    if not ems:
        return {d.id: max(asked, device_floor_w(d)) for d in devices}
    # Behind one EMS all heat pumps together are one consumer of their summed power, and all
    # room cooling another (Anlage 1 Ziff. 2.4.2, module doc); a group's share is split over
    # its devices in proportion to their ratings.
    groups: dict[str, list[Any]] = {}
    singles: list[Any] = []
    for d in devices:
        use = consumer_group(d)
        if use is None:
            singles.append(d)
        else:
            groups.setdefault(use, []).append(d)
    floors = [device_floor_w(d) for d in singles]
    floors += [heat_pumps_floor_w(_rated_w(g)) for g in groups.values()]
    total = max(asked, ems_floor_w(floors))
    weight = sum(floors)
    caps = {d.id: total * f / weight for d, f in zip(singles, floors, strict=False)}
    for members, floor in zip(groups.values(), floors[len(singles) :], strict=True):
        share = total * floor / weight
        rated = _rated_w(members)
        for d in members:
            caps[d.id] = share * float(d.max_el_w) / rated if rated > 0 else share / len(members)
    return caps


def consumer_group(device: Any) -> str | None:
    """The Anlage 1 Ziff. 2.4.2 group ``device`` counts in behind one EMS: ``heating`` for
    heat pumps, ``room_cooling`` for room cooling; None for a device that counts on its own
    (a battery)."""
    if device.kind != DeviceKind.HEAT_PUMP:
        return None
    return str(getattr(device, "enwg_14a_use", "heating"))


def _rated_w(devices: Sequence[Any]) -> float:
    return sum(float(d.max_el_w) for d in devices)


def heat_pumps_floor_w(total_el_w: float) -> float:
    """The floor of the heat pumps (or of the room cooling) behind one connection taken as
    one consumer of ``total_el_w`` [W] (4.2 kW, or 40 % of the sum above 11 kW)."""
    if total_el_w > LARGE_HEAT_PUMP_W:
        return max(FLOOR_14A_W, LARGE_HEAT_PUMP_SHARE * total_el_w)
    return FLOOR_14A_W
