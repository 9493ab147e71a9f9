"""The broker link over TLS: Mosquitto on a loopback TLS listener that requires client
certificates, with a CA, a server and client certificates made here (the ``cryptography``
package). An agent and the coordinator with the options ``vpp agent`` and ``vpp
coordinator`` take (``--tls-ca``, ``--tls-cert``, ``--tls-key``) talk; a client without a
certificate, or one that does not trust the broker's CA, does not get in."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from tests.conftest import free_port
from tests.vpp.city.conftest import AGENTS, _need
from vpp.city import schema as s
from vpp.city.broker import COORDINATOR_USER, Broker, BrokerConfig, TlsFiles
from vpp.city.link import Link, LinkConfig, TlsError, tls_context
from vpp.cli import app

Key = ec.EllipticCurvePrivateKey


def _write(folder: Path, name: str, cert: x509.Certificate, key: Key) -> tuple[Path, Path]:
    crt, pem = folder / f"{name}.crt", folder / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem.chmod(0o600)
    return crt, pem


def _cert(
    cn: str, key: Key, issuer: tuple[x509.Name, Key] | None, *, ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, signer = issuer if issuer is not None else (name, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    if ip is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                            critical=False)  # fmt: skip
    return b.sign(signer, hashes.SHA256())


def make_pki(folder: Path, clients: list[str]) -> dict[str, tuple[Path, Path]]:
    """A CA, the broker's certificate for 127.0.0.1, one client certificate per name, and a
    second CA nobody uses; every file by name ("ca", "broker", "other-ca", clients)."""
    folder.mkdir()
    out: dict[str, tuple[Path, Path]] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("vpp-city-test-ca", ca_key, None, ca=True)
    out["ca"] = _write(folder, "ca", ca, ca_key)
    issuer = (ca.subject, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    out["broker"] = _write(folder, "broker", _cert("broker", key, issuer, ip="127.0.0.1"), key)
    for name in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        out[name] = _write(folder, name, _cert(name, key, issuer), key)
    other = ec.generate_private_key(ec.SECP256R1())
    out["other-ca"] = _write(folder, "other-ca", _cert("other", other, None, ca=True), other)
    return out


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, dict[str, tuple[Path, Path]]]]:
    _need("/usr/sbin/mosquitto", "mosquitto")
    pki = make_pki(tmp_path / "pki", [COORDINATOR_USER, *AGENTS])
    ca, (crt, key) = pki["ca"][0], pki["broker"]
    tls = TlsFiles(ca, crt, key, require_certificate=True)
    b = Broker(BrokerConfig(tmp_path / "broker", free_port(), list(AGENTS), tls=tls))
    b.start()
    try:
        yield b, pki
    finally:
        b.stop()


def _config(b: Broker, user: str, ctx: ssl.SSLContext | None) -> LinkConfig:
    cfg = b.config
    return LinkConfig(cfg.host, cfg.port, user, cfg.passwords[user], user, tls=ctx)


async def test_agent_and_coordinator_talk_over_tls(
    tls_broker: tuple[Broker, dict[str, tuple[Path, Path]]],
) -> None:
    b, pki = tls_broker
    ca = pki["ca"][0]
    heard: list[tuple[str, bytes]] = []

    async def on_message(m: aiomqtt.Message) -> None:
        heard.append((str(m.topic), bytes(m.payload)))  # type: ignore[arg-type]

    async def nothing(m: aiomqtt.Message) -> None:
        del m

    coord = Link(_config(b, COORDINATOR_USER, tls_context(ca, *pki[COORDINATOR_USER])),
                 [f"{s.ROOT}/+/up/#"], on_message)  # fmt: skip
    agent = Link(_config(b, "north", tls_context(ca, *pki["north"])), [], nothing)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(coord.run(stop)), asyncio.create_task(agent.run(stop))]
    try:
        deadline = time.monotonic() + 20
        while not (coord.stats.connected and agent.stats.connected):
            assert time.monotonic() < deadline, "both connected over TLS"
            await asyncio.sleep(0.05)
        topic = s.topic("north", "up/status")
        assert await agent.publish(topic, b"hello over tls")
        while not heard:
            assert time.monotonic() < deadline, "the coordinator heard the agent"
            await asyncio.sleep(0.05)
        assert heard == [(topic, b"hello over tls")]
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _refused(cfg: LinkConfig) -> Exception:
    client = aiomqtt.Client(
        cfg.host, cfg.port, username=cfg.username, password=cfg.password,
        identifier=cfg.client_id, tls_context=cfg.tls, timeout=5,
    )  # fmt: skip
    with pytest.raises(aiomqtt.MqttError) as err:
        async with client:
            pass
    return err.value


async def test_no_certificate_or_a_foreign_ca_does_not_get_in(
    tls_broker: tuple[Broker, dict[str, tuple[Path, Path]]],
) -> None:
    b, pki = tls_broker
    # The broker asks for a client certificate: none, no session.
    await _refused(_config(b, "north", tls_context(pki["ca"][0])))
    # The client does not trust the broker's certificate: it hangs up itself.
    err = await _refused(_config(b, "north", tls_context(pki["other-ca"][0], *pki["north"])))
    assert "certificate verify failed" in str(err)
    # Plain MQTT on the TLS port: no session either.
    await _refused(_config(b, "north", None))


@pytest.mark.parametrize(
    ("extra", "named", "says"),
    [
        (["--tls-cert", "{crt}"], "--tls-cert and --tls-key", "both or neither"),
        (["--tls-ca", "{missing}"], "--tls-ca", "No such file"),
        (["--tls-ca", "{ca}", "--tls-cert", "{key}", "--tls-key", "{key}"],
         "--tls-cert/--tls-key", ""),
    ],
)  # fmt: skip
def test_bad_tls_options_are_named(tmp_path: Path, extra: list[str], named: str, says: str) -> None:
    pki = make_pki(tmp_path / "pki", ["north"])
    (tmp_path / "pw").write_text("secret\n")
    paths = {"crt": str(pki["north"][0]), "key": str(pki["north"][1]),
             "ca": str(pki["ca"][0]), "missing": str(tmp_path / "missing.crt")}  # fmt: skip
    for command in (
        ["agent", "--id", "north"],
        ["coordinator", "--agents", "north"],
    ):
        args = [*command, "--broker", "127.0.0.1:1", "--password-file", str(tmp_path / "pw")]
        result = CliRunner().invoke(app, [*args, *[a.format(**paths) for a in extra]])
        assert result.exit_code == 2, result.output
        assert named in result.output and says in result.output
    with pytest.raises(TlsError, match="--tls-ca"):
        tls_context(tmp_path / "missing.crt")
