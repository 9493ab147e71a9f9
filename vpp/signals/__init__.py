"""Grid-operator signals: one room for every constraint a grid operator puts on the plant.

Sources (a control box or ripple-control receiver on Modbus today; OpenADR and the
operator's API later) become :class:`~vpp.signals.model.Signal` values: start, end, source,
scope and kind (§9 EEG feed-in %, §14a EnWG consumption limit, import or export cap).
:func:`~vpp.signals.resolve.active_bounds` turns the signals active now into extra
per-device bounds for :mod:`vpp.control.envelope` and grid caps for the safety layer, the
stricter signal winning with a report of each conflict. :mod:`vpp.signals.watch` reads the
sources, keeps their heartbeats and puts the devices of a silent source into its failsafe.
"""

from vpp.signals.model import Signal, SignalError, SignalKind
from vpp.signals.resolve import Conflict, Resolved, active_bounds

__all__ = ["Conflict", "Resolved", "Signal", "SignalError", "SignalKind", "active_bounds"]
