"""An OpenADR 2.0b VEN on ``openleadr``: registers at the grid operator's (or aggregator's)
VTN, polls it when asked and answers every event it receives with optIn or optOut.

The controller's signals job drives the VEN: :meth:`OpenAdrVen.read` polls the VTN once and
returns the events the VEN holds (the library keeps them across polls, with updates and
cancellations applied). openleadr's own scheduler is not started: the VEN polls at the
signals job's interval, on the controller's clock, like every other source. Whether an
event can be used is decided by ``check`` (:func:`vpp.signals.openadr.decode_event`): an
event it refuses is answered optOut, any other optIn, which is the acknowledgement the VTN
sees (``oadrCreatedEvent``).

Messages are not signed (``disable_signature``): a VTN that needs signed messages or TLS
client certificates is not supported yet. openleadr 0.5 has no public call for "poll once
and handle what comes back"; :meth:`read` uses its ``_poll`` (pinned version, kept here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from openleadr import OpenADRClient

from vpp.core.site import OpenAdrSource

log = logging.getLogger("adapters.openadr")

#: Polls in one read at most: a VTN queues one message per poll (events, then reports).
POLLS_PER_READ = 5


class VtnError(ConnectionError):
    """The VTN cannot be reached or refused the VEN; the message names the source."""


class OpenAdrVen:
    """One VEN for one configured VTN."""

    def __init__(self, config: OpenAdrSource, check: Callable[[dict[str, Any]], str | None]):
        self.config = config
        self.id = config.id
        self._check = check
        #: (event id, modification number, opt type) of every answer given, oldest first.
        self.answers: list[tuple[str, int, str]] = []
        self._answered = False
        self._types: list[str] = []
        self.client = self._new_client()

    def _new_client(self) -> OpenADRClient:
        client = OpenADRClient(
            ven_name=self.config.ven_name,
            vtn_url=self.config.vtn_url,
            ven_id=self.config.ven_id,
            disable_signature=True,
            show_fingerprint=False,
        )
        client.add_handler("on_event", self._on_event)
        client.add_handler("on_update_event", self._on_event)
        # openleadr logs and swallows transport errors: the hooks tell whether the VTN
        # answered and with what.
        client.add_hook("after_receive_xml", self._received)
        client.add_hook("after_parse_xml", self._parsed)
        return client

    async def _received(self, content: str) -> None:
        self._answered = True

    async def _parsed(self, message_type: str, payload: Any) -> None:
        self._types.append(message_type)

    async def _on_event(self, event: dict[str, Any]) -> str:
        problem = self._check(event)
        descriptor = event.get("event_descriptor", {})
        opt = "optOut" if problem else "optIn"
        self.answers.append(
            (str(descriptor.get("event_id")), int(descriptor.get("modification_number", 0)), opt)
        )
        return opt

    @property
    def registered(self) -> bool:
        return self.client.registration_id is not None

    async def register(self) -> None:
        """Register at the VTN (query, then create the party registration)."""
        try:
            _, payload = await self.client.query_registration()
            request_id = (payload or {}).get("response", {}).get("request_id")
            await self.client.create_party_registration(
                ven_id=self.config.ven_id, request_id=request_id
            )
        except Exception as exc:  # aiohttp, XML, timeouts: all mean "no VTN now"
            raise VtnError(
                f"{self.id}: registration at {self.config.vtn_url} failed: {exc}"
            ) from exc
        if not self.registered:
            raise VtnError(f"{self.id}: the VTN at {self.config.vtn_url} gave no registration id")

    async def read(self) -> list[dict[str, Any]]:
        """Poll the VTN (registering first if needed) until it has nothing more to say, at
        most :data:`POLLS_PER_READ` times; the events the VEN holds, as openleadr parsed
        them. VtnError when the VTN does not answer."""
        if not self.registered:
            await self.register()
        for _ in range(POLLS_PER_READ):
            self._answered, self._types = False, []
            await self.client._poll()
            if not self._answered:
                raise VtnError(f"{self.id}: no answer from the VTN at {self.config.vtn_url}")
            if not self._types or self._types[0] == "oadrResponse":
                break  # the poll's own answer (the first) says nothing more is queued
        return list(self.client.received_events)

    async def close(self) -> None:
        """Close the HTTP session (the VEN's scheduler was never started)."""
        session = self.client.client_session
        if session is not None and not session.closed:
            await session.close()
