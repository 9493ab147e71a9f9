"""The HTTP server beside the control loop: its own thread, actions with a deadline, admission
control and the Host allow-list, over real HTTP on loopback.

Nothing here asserts how long a job takes on a busy machine: the tests check structure (which
thread answers, that an action the blocked control loop cannot take gets 503 and never
happens, that polls go on while readers hammer the API) and use bounds that only a starved
control loop would miss.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.conftest import LOOPBACK
from tests.vpp.web.live import demo_site, wait_until
from tests.vpp.web.plant import NOON, TOKEN, Plant
from vpp.control.state import ControllerState
from vpp.core.clock import ManualClock
from vpp.web import Limits, WebServer, make_app, serve
from vpp.web.api import API_KEY
from vpp.web.guard import CpuBudget, HostPolicy, split_host

#: Wall-clock bound for waits that only a broken server would reach.
DEADLINE_S = 60.0


def bare_app(
    monkeypatch: pytest.MonkeyPatch, **kwargs: object
) -> tuple[ControllerState, web.Application]:
    """An app over a state without a controller (actions change the state only)."""
    monkeypatch.delenv("VPP_API_TOKEN", raising=False)
    state = ControllerState(site=demo_site(token=TOKEN, n_pv=1, n_battery=1), started_at=NOON)
    return state, make_app(state, CollectorRegistry(), clock=ManualClock(NOON), **kwargs)  # type: ignore[arg-type]


def request(
    url: str, method: str = "GET", body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    """A blocking request (for threads other than the control loop)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=DEADLINE_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- threads ----------------------------------------------------------------------------------


async def test_the_server_answers_from_its_own_thread_and_stops_it(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    seen: dict[str, object] = {}

    async def where(request: web.Request) -> web.Response:
        seen["thread"] = threading.current_thread()
        seen["loop"] = asyncio.get_running_loop()
        return web.Response(text="here")

    _, app = bare_app(monkeypatch)
    app.router.add_get("/where", where)
    async with serve(app, port=0) as server:
        thread = server.thread
        assert thread is not None and thread.is_alive() and not thread.daemon
        async with http.get(f"{server.url}/where") as resp:
            assert resp.status == 200
    assert seen["thread"] is thread and thread is not threading.current_thread()
    assert seen["loop"] is not asyncio.get_running_loop()
    assert not thread.is_alive() and server.thread is None
    await server.stop()  # idempotent


async def test_a_server_whose_control_loop_is_gone_stops_by_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, app = bare_app(monkeypatch)
    server = WebServer(app, port=0)
    holder: list[threading.Thread | None] = []

    def other_loop() -> None:
        async def start_and_forget() -> None:
            await server.start()
            holder.append(server.thread)

        asyncio.run(start_and_forget())  # closes its loop without stopping the server

    control = threading.Thread(target=other_loop)
    control.start()
    control.join(DEADLINE_S)
    [thread] = holder
    assert thread is not None
    thread.join(DEADLINE_S)
    assert not thread.is_alive()


async def test_a_taken_port_is_named_and_leaves_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    _, app = bare_app(monkeypatch)
    before = set(threading.enumerate())
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve on {LOOPBACK}:{port}"):
            await WebServer(app, LOOPBACK, port).start()
    assert {t for t in threading.enumerate() if t.is_alive()} <= before


# -- operator actions cross to the control loop ------------------------------------------------


async def test_an_action_the_blocked_control_loop_cannot_take_gets_503_and_never_happens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, app = bare_app(monkeypatch, action_timeout_s=0.5)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with serve(app, port=0) as server:
        answers: list[tuple[int, dict[str, object]]] = []
        client = threading.Thread(
            target=lambda: answers.append(
                request(f"{server.url}/api/pause", "POST", {"dry_run": True}, auth)
            )
        )
        client.start()
        # Block the control loop until the answer is in: the action cannot be taken meanwhile.
        client.join(DEADLINE_S)
        [(status, reply)] = answers
        assert status == 503, reply
        assert "control loop did not take the action within 0.5 s" in str(reply["error"])
        await asyncio.sleep(0.2)  # the loop runs again: the called-off action must stay off
        assert state.dry_run is False and not [e for e in state.events if e.kind]

        # A free control loop takes it (the client runs on another thread, as browsers do).
        status, reply = await asyncio.to_thread(
            request, f"{server.url}/api/pause", "POST", {"dry_run": True}, auth
        )
        assert (status, reply, state.dry_run) == (200, {"dry_run": True}, True)
        assert [e.kind for e in state.events] == ["control_paused"]


async def test_actions_run_on_the_control_loop(
    plant: Plant, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    operator = plant.app[API_KEY].operator
    original = operator.pause

    def pause_and_see(dry_run: bool, who: str) -> bool:
        loops.append(asyncio.get_running_loop())
        return original(dry_run, who)

    monkeypatch.setattr(operator, "pause", pause_and_see)
    async with http.post(
        f"{plant.url}/api/pause",
        json={"dry_run": True},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        assert resp.status == 200
    assert loops == [asyncio.get_running_loop()]


# -- readers cannot starve control --------------------------------------------------------------


class Readers:
    """``n`` concurrent API readers on a thread of their own (with its own event loop)."""

    def __init__(self, url: str, n: int, per_reader: int) -> None:
        self.url, self.n, self.per_reader = url, n, per_reader
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="readers")

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    async def _run(self) -> None:
        paths = ("/api/status", "/api/plan", "/api/devices", "/api/alerts", "/metrics")
        timeout = aiohttp.ClientTimeout(total=DEADLINE_S)

        async def reader(i: int) -> None:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for k in range(self.per_reader):
                    try:
                        async with session.get(self.url + paths[(i + k) % len(paths)]) as resp:
                            await resp.read()
                            self.statuses[resp.status] += 1
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        self.failures[type(exc).__name__] += 1

        await asyncio.gather(*(reader(i) for i in range(self.n)))

    def __enter__(self) -> Readers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(4 * DEADLINE_S)

    def running(self) -> bool:
        return self._thread.is_alive()


@pytest.mark.timeout(300)
async def test_polls_go_on_while_200_readers_hammer_the_api(plant: Plant) -> None:
    """Polls run back to back on the control loop while 200 readers read; the readers are
    answered meanwhile (200s, and 503s once the server is full), never with an error."""
    durations: list[float] = []
    answered_during_polls = 0
    with Readers(plant.url, n=200, per_reader=3) as readers:
        deadline = time.monotonic() + 4 * DEADLINE_S
        # The readers are connected and being answered.
        await wait_until(lambda: readers.answered >= 50, DEADLINE_S, "readers answered")
        before = readers.answered
        while readers.running() and time.monotonic() < deadline:
            plant.clock.advance(10)
            started = time.perf_counter()
            assert await plant.ctl.run_job("poll"), plant.state.jobs["poll"].last_error
            durations.append(time.perf_counter() - started)
        answered_during_polls = readers.answered - before
    assert not readers.failures, readers.failures
    assert set(readers.statuses) <= {200, 503} and readers.statuses[200] > 0
    assert readers.answered == 200 * 3
    assert answered_during_polls > 0
    # Served from the control loop, 600 requests held every poll for seconds; beside it, many
    # polls fit in the time the readers take. Generous: a starved loop misses this by far.
    assert len(durations) >= 5, (len(durations), readers.statuses)
    assert statistics.median(durations) < 5.0, durations


# -- admission control ------------------------------------------------------------------------


class Hold:
    """A ``/hold`` route that keeps its turn until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    async def handler(self, request: web.Request) -> web.Response:
        self.entered.set()
        for _ in range(int(DEADLINE_S / 0.01)):
            if self.release.is_set():
                break
            await asyncio.sleep(0.01)
        return web.json_response({"held": True})

    async def until_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, DEADLINE_S)


@asynccontextmanager
async def held_server(
    monkeypatch: pytest.MonkeyPatch, limits: Limits
) -> AsyncIterator[tuple[WebServer, Hold]]:
    hold = Hold()
    _, app = bare_app(monkeypatch, limits=limits)
    app.router.add_get("/hold", hold.handler)
    async with serve(app, port=0) as server:
        try:
            yield server, hold
        finally:
            hold.release.set()


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def test_requests_past_the_waiting_room_get_503_at_once(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    limits = Limits(max_concurrent=1, max_waiting=3, wait_s=DEADLINE_S)
    async with held_server(monkeypatch, limits) as (server, hold):
        url = f"{server.url}/hold"
        first = asyncio.create_task(fetch(http, url))
        await hold.until_entered()
        rest = [asyncio.create_task(fetch(http, url)) for _ in range(9)]
        await wait_until(lambda: sum(t.done() for t in rest) >= 6, DEADLINE_S, "6 refusals")
        done = [t for t in rest if t.done()]
        refused = [t.result() for t in done]
        assert len(refused) == 6 and all(s == 503 for s, _ in refused), refused
        assert all("too many requests waiting" in str(r["error"]) for _, r in refused)
        async with http.get(f"{server.url}/healthz") as resp:  # never held
            assert resp.status == 200
        hold.release.set()
        answered = await asyncio.gather(first, *[t for t in rest if t not in done])
        assert [s for s, _ in answered] == [200] * 4


async def test_a_wait_past_its_deadline_gets_503(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    limits = Limits(max_concurrent=1, wait_s=0.3, request_s=DEADLINE_S)
    async with held_server(monkeypatch, limits) as (server, hold):
        holder = asyncio.create_task(fetch(http, f"{server.url}/hold"))
        await hold.until_entered()
        async with http.get(f"{server.url}/api/status") as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "1"
            assert "no turn within 0.3 s" in (await resp.json())["error"]
        hold.release.set()
        assert await holder == (200, {"held": True})
        async with http.get(f"{server.url}/api/status") as resp:
            assert resp.status == 200


async def test_a_handler_past_its_deadline_gets_503(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    async with held_server(monkeypatch, Limits(request_s=0.5)) as (server, _hold):
        status, reply = await fetch(http, f"{server.url}/hold")
        assert status == 503 and "took longer than 0.5 s" in str(reply["error"])


async def test_the_cpu_budget_makes_the_server_thread_wait() -> None:
    budget = CpuBudget(share=0.1, burst_s=0.01)
    await budget.wait()  # credit to start with
    spent = time.thread_time()
    while time.thread_time() - spent < 0.05:
        pass
    started = time.monotonic()
    await budget.wait()
    # 50 ms of CPU at a tenth of a core: about 0.4 s of credit to earn back (sleeps never end
    # early, so this holds however busy the machine is).
    assert time.monotonic() - started >= 0.35


# -- Host allow-list --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "served"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:9310", True),
        ("localhost:8080", True),
        ("LOCALHOST.", True),
        ("[::1]:9310", True),
        ("[::1]", True),
        ("evil.example", False),
        ("evil.example:9310", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example:9310", False),
        ("10.1.2.3:9310", False),
        ("", False),
        ("localhost:nine", False),
    ],
)
def test_host_policy_defaults(header: str, served: bool) -> None:
    policy = HostPolicy()
    policy.bind("127.0.0.1")
    assert policy.allows(header) is served
    assert policy.allows(None)  # no Host header: not a browser


def test_host_policy_configured_names_and_wildcard_binds() -> None:
    policy = HostPolicy(["vpp.example.org", "scada.local:8443"])
    policy.bind("192.0.2.10")
    assert policy.allows("VPP.example.org:9310") and policy.allows("scada.local:8443")
    assert not policy.allows("scada.local:80") and not policy.allows("example.org")
    assert policy.allows("192.0.2.10:9310") and not policy.allows("192.0.2.11:9310")
    policy.bind("0.0.0.0")
    assert policy.allows("192.0.2.11:9310") and policy.allows("[2001:db8::1]:9310")
    assert not policy.allows("rebound.example:9310")
    policy.bind("::1")
    assert policy.allows("[::1]:1") and not policy.allows("192.0.2.11")
    assert split_host("[2001:db8::1]:443") == ("[2001:db8::1]", 443)
    assert split_host("2001:db8::1") == ("[2001:db8::1]", None)


async def test_other_hosts_get_421_on_every_route(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    _, app = bare_app(monkeypatch, allowed_hosts=["vpp.example.org"])
    async with serve(app, port=0) as server:
        for path in ("/metrics", "/api/status", "/", "/healthz", "/api/pause"):
            async with http.get(
                f"{server.url}{path}", headers={"Host": f"rebound.example:{server.port}"}
            ) as resp:
                assert resp.status == 421, path
                body = await resp.json()
                assert body["field"] == "Host" and "allowed hosts" in body["error"]
                assert "Access-Control-Allow-Origin" not in resp.headers
        for host in (f"localhost:{server.port}", "vpp.example.org", f"127.0.0.1:{server.port}"):
            async with http.get(f"{server.url}/api/status", headers={"Host": host}) as resp:
                assert resp.status == 200, host
        # HTTP/1.0 without a Host header (curl -0, scripts): not a browser, served.
        reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        await writer.drain()
        head = await reader.readline()
        writer.close()
        await writer.wait_closed()
        assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head


async def test_serve_takes_allowed_hosts_and_always_serves_its_bind_address(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    _, app = bare_app(monkeypatch)
    async with serve(app, LOOPBACK, 0, allowed_hosts=["scada.local"]) as server:
        for host, status in (("scada.local:80", 200), ("vpp.example.org", 421)):
            async with http.get(f"{server.url}/healthz", headers={"Host": host}) as resp:
                assert resp.status == status, host
