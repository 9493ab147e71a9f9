"""Cross-references between the devices of a site, checked once all of them are known.

Duplicate device ids, two devices on one Modbus endpoint (hosts compared by the addresses
they resolve to), hosts that do not resolve, and a grid meter that is not a meter of the
site. The checks work on :class:`DeviceRef` (what they need of a device, read from the
validated site or from a raw file whose fields are not all valid), so that a bad file gets
them reported together with every other error. Hosts are resolved with
:func:`socket.getaddrinfo` only; nothing is contacted.

This module stands below the schema (:mod:`vpp.core.site` imports it): it imports nothing
from it but types.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpp.core.site import ModbusEndpoint

#: What a device id (and any other identifier of a site file) looks like.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class DeviceRef:
    """What the cross-reference checks need of one device (from the file or the model)."""

    index: int
    id: str | None
    kind: str | None
    modbus: ModbusEndpoint | None


def device_labels(refs: Sequence[DeviceRef]) -> dict[int, str]:
    """How messages name each device: ``devices[<id>]``, or ``devices[<index>]`` when the id
    is missing, malformed, all digits (it would read as an index) or used twice."""
    counts = Counter(r.id for r in refs if r.id is not None)
    labels = {}
    for ref in refs:
        ident = ref.id
        usable = (
            ident is not None
            and counts[ident] == 1
            and _ID_RE.match(ident) is not None
            and not ident.isdigit()
        )
        labels[ref.index] = f"devices[{ident}]" if usable else f"devices[{ref.index}]"
    return labels


def resolve_host(host: str) -> frozenset[str]:
    """The addresses ``host`` stands for, by :func:`socket.getaddrinfo` (hosts file, DNS);
    no device is contacted. Raises OSError or ValueError when it does not resolve."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return frozenset(str(info[4][0]) for info in infos)


def _resolve_or_reason(host: str) -> frozenset[str] | str:
    try:
        return resolve_host(host)
    except socket.gaierror as exc:
        return exc.strerror or str(exc)
    except ValueError:  # UnicodeError from the IDNA codec: an empty or overlong label
        return "not a valid host name"
    except OSError as exc:
        return str(exc)


def reference_problems(
    refs: Sequence[DeviceRef],
    meter: str | None,
    labels: dict[int, str],
    *,
    meter_kind: str,
    offline: bool = False,
) -> list[str]:
    """Duplicate device ids, two devices on one Modbus endpoint (hosts compared by the
    addresses they resolve to), hosts that do not resolve, and a grid meter that is not a
    device of ``meter_kind``; one ``path: message`` per problem.

    ``offline``: the site is read where its devices are not reachable (replay, plan, export on
    an engineer's machine): a host that does not resolve is no problem and is compared with
    the others by its name."""

    def label(n: int) -> str:
        return labels.get(n, f"devices[{n}]")

    problems = []
    first: dict[str, int] = {}
    for ref in refs:
        if ref.id is None:
            continue
        if ref.id in first:
            problems.append(
                f"{label(ref.index)}.id: duplicate device id {ref.id!r} "
                f"(also {label(first[ref.id])})"
            )
        else:
            first[ref.id] = ref.index
    problems += _endpoint_problems(refs, label, offline)
    if meter is not None:
        found = next((r for r in refs if r.id == meter), None)
        if found is None or found.kind != meter_kind:
            problems.append(f"grid.meter: {meter!r} is not a meter device of this site")
    return problems


def _endpoint_problems(
    refs: Sequence[DeviceRef], label: Callable[[int], str], offline: bool
) -> list[str]:
    problems = []
    # Each distinct host is resolved once, in sorted order so that messages do not depend on
    # the order getaddrinfo returns its addresses in.
    resolved: dict[str, tuple[str, ...] | str] = {}
    taken: dict[tuple[str, int, int], tuple[int, str]] = {}  # -> (device index, host)
    for ref in refs:
        ep = ref.modbus
        if ep is None:
            continue
        host, port, unit = ep.host, ep.port, ep.unit
        addresses = resolved.get(host)
        if addresses is None:
            found = _resolve_or_reason(host)
            if isinstance(found, str) and offline:
                found = frozenset([host])
            addresses = resolved[host] = found if isinstance(found, str) else tuple(sorted(found))
        if isinstance(addresses, str):
            problems.append(
                f"{label(ref.index)}.modbus.host: {host!r} does not resolve ({addresses})"
            )
            continue
        for address in addresses:
            other = taken.get((address, port, unit))
            if other is not None:
                text = (
                    f"{label(ref.index)}.modbus: {host} port {port} unit {unit} is already "
                    f"the endpoint of {label(other[0])}"
                )
                if other[1] != host:
                    text += f" ({other[1]} and {host} both resolve to {address})"
                problems.append(text)
                break
        for address in addresses:
            taken.setdefault((address, port, unit), (ref.index, host))
    return problems


# --- messages
