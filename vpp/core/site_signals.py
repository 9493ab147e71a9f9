"""The site schema's grid-operator signal sources: control boxes on Modbus TCP and OpenADR
VTNs (``[signals]``). Re-exported by :mod:`vpp.core.site`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
)

from vpp.core.site_devices import ModbusEndpoint
from vpp.core.site_load import ConfigError as ConfigError
from vpp.core.site_load import SiteFileError as SiteFileError
from vpp.core.site_refs import device_labels as device_labels
from vpp.core.site_refs import reference_problems as reference_problems
from vpp.core.site_refs import resolve_host as resolve_host
from vpp.core.site_types import (
    Identifier,
    NonNegativeFloat,
    Pct,
    PositiveFloat,
    RegisterAddress,
    SiteModel,
)


class RelayContacts(SiteModel):
    """Where a control box shows its relay contacts: bit addresses in ``table`` (a closed
    contact reads 1). None: the contact is not wired."""

    #: ``discrete_inputs`` (function code 2) or ``coils`` (function code 1).
    table: Literal["discrete_inputs", "coils"] = "discrete_inputs"
    #: Contact of the §9 EEG stage 100 % (no limit). Of the wired stage contacts exactly one
    #: is closed; without a 100 % contact, none closed means 100 %.
    feed_in_100: RegisterAddress | None = 0
    #: Contact of the stage 60 %: feed-in at most 60 % of each inverter's rating.
    feed_in_60: RegisterAddress | None = 1
    #: Contact of the stage 30 %.
    feed_in_30: RegisterAddress | None = 2
    #: Contact of the stage 0 % (no feed-in; an inverter is held at its ``min_limit_pct``).
    feed_in_0: RegisterAddress | None = 3
    #: §14a EnWG dimming contact: closed = dim the controllable consumers to their floor.
    dim_14a: RegisterAddress | None = 4


class ControlBoxSource(SiteModel):
    """A grid operator's control box or ripple-control receiver read over Modbus TCP: relay
    contacts, a heartbeat counter and, optionally, the feed-in limit as a register."""

    #: Name of the source in events and reports (not a device id).
    id: Identifier
    #: The kind of source; control boxes on Modbus for now.
    kind: Literal["control_box"] = "control_box"
    #: Where the box answers Modbus TCP.
    modbus: ModbusEndpoint
    #: Where the box shows its relay contacts.
    relays: RelayContacts = RelayContacts()
    #: Holding register with a counter the box advances while it is alive; None: the box
    #: counts as alive while it answers with a valid reading.
    heartbeat_register: RegisterAddress | None = 0
    #: Holding register with the feed-in limit in % (0..100), read besides the relays;
    #: None: the relays alone.
    feed_in_pct_register: RegisterAddress | None = None
    #: Seconds without a valid reading and a moving heartbeat after which the box counts as
    #: silent and its devices go to the failsafe limits (120 s as the EEBus LPC heartbeat).
    heartbeat_timeout_s: PositiveFloat = 120.0
    #: Feed-in limit of this box's §9 EEG inverters while it is silent, % of their rating.
    failsafe_feed_in_pct: Pct = 60.0
    #: Consumption limit of this box's §14a consumers while it is silent: W per device
    #: under ``direct`` control, for all of them under ``ems`` (never below the §14a floor).
    failsafe_consumption_w: NonNegativeFloat = 4200.0
    #: How the §14a dim reaches the consumers: ``direct`` (each to its own floor) or ``ems``
    #: (this controller as the energy-management system behind one connection: one floor
    #: for all of them, by the several-device formula of BK6-22-300).
    enwg_14a_control: Literal["direct", "ems"] = "direct"
    #: Device ids this box acts on; empty: every §9 inverter and §14a consumer of the site.
    devices: list[Identifier] = Field(default_factory=list)


def _vtn_url(v: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", v):
        raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
    return v.rstrip("/")


class OpenAdrSource(SiteModel):
    """An OpenADR 2.0b VTN of the grid operator or an aggregator, polled by this controller
    as a VEN (``openleadr``). Its events become signals (``vpp.signals.openadr``)."""

    #: Name of the source in events and reports (not a device id).
    id: Identifier
    #: The VTN's base URL, e.g. ``https://vtn.example/OpenADR2/Simple/2.0b``.
    vtn_url: Annotated[str, AfterValidator(_vtn_url)]
    #: This VEN's name at the VTN.
    ven_name: Annotated[str, Field(min_length=1, max_length=64)] = "vpp"
    #: The VEN id the VTN knows this controller by; None: the VTN assigns one.
    ven_id: str | None = None
    #: Seconds between two polls of the VTN (the signals job runs more often, for the
    #: control boxes; a VTN asks for 10 s or more).
    poll_interval_s: PositiveFloat = 10.0
    #: Seconds without a successful poll of the VTN after which its devices go to the
    #: failsafe limits.
    heartbeat_timeout_s: PositiveFloat = 120.0
    #: Feed-in limit of this source's §9 EEG inverters while the VTN is unreachable, %.
    failsafe_feed_in_pct: Pct = 60.0
    #: Consumption limit of this source's §14a consumers while the VTN is unreachable [W].
    failsafe_consumption_w: NonNegativeFloat = 4200.0
    #: As for a control box: ``direct`` (each consumer to its floor) or ``ems``.
    enwg_14a_control: Literal["direct", "ems"] = "direct"
    #: Device ids the VTN's events act on (events may narrow it by resource or feeder);
    #: empty: every device of the site a rule applies to.
    devices: list[Identifier] = Field(default_factory=list)


class SignalSettings(SiteModel):
    """Grid-operator signals (§9 EEG feed-in stages, §14a EnWG dimming, import and export
    caps): where they come from and how often they are read."""

    #: Signal sources, e.g. ``[[signals.sources]]`` with ``id``, ``modbus`` and the relay
    #: addresses of a control box.
    sources: list[ControlBoxSource] = Field(default_factory=list)
    #: OpenADR 2.0b VTNs, e.g. ``[[signals.openadr]]`` with ``id`` and ``vtn_url``.
    openadr: list[OpenAdrSource] = Field(default_factory=list)
    #: Seconds between two reads of the control boxes; a change is enforced at that read,
    #: so this is most of the time from a relay flip to the devices following it. A box
    #: answers one request of bits and one of registers, so once a second costs nothing.
    poll_interval_s: PositiveFloat = 1.0

    @property
    def any_source(self) -> bool:
        """Whether any signal source (control box or VTN) is configured."""
        return bool(self.sources or self.openadr)
