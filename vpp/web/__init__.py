"""The controller's HTTP side: ``/metrics`` for Prometheus, ``/healthz``, the operator page
(``/``, :mod:`vpp.web.page`) and its JSON API (``/api/...``, :mod:`vpp.web.api`).

The server runs on a thread of its own (:mod:`vpp.web.server`); operator actions cross to the
control loop with a deadline (:mod:`vpp.web.link`); a Host allow-list and admission control
guard it (:mod:`vpp.web.guard`).
"""

from __future__ import annotations

from vpp.web.guard import Limits
from vpp.web.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    METRICS_CONTENT_TYPE,
    REGISTRY_KEY,
    STATE_KEY,
    WebServer,
    make_app,
    serve,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "METRICS_CONTENT_TYPE",
    "REGISTRY_KEY",
    "STATE_KEY",
    "Limits",
    "WebServer",
    "make_app",
    "serve",
]
