"""TLS for NATS and ClickHouse connections as configured (issue 14, finding 11): a private CA
and a server certificate made here with openssl, a real nats-server serving TLS with it, and
motcua's connections verifying the server against that CA, and refusing it without.

No ClickHouse server can run here: its side is a TLS socket that records handshakes (a test
double of the server's HTTPS port, named as such), enough to show the client verifies the
certificate against the URL's CA and refuses it without."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from core.messaging.client import connect_nats
from core.messaging.nats_server import EmbeddedNats, free_port, server_config
from core.messaging.urls import connect_options
from core.storage.clickhouse import connect


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ca.pem, and server.pem/server.key for localhost and 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("tls")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=motcua test CA", "-keyout", "ca.key", "-out", "ca.pem",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=d,
    )  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
        cwd=d,
    )  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


@pytest.mark.asyncio(loop_scope="session")
async def test_nats_over_tls_verifies_the_server_against_the_urls_ca(
    tmp_path: Path, certificates: dict[str, Path]
) -> None:
    # Catches: no way to connect motcua to a NATS server over TLS with a private CA (passwords
    # and events in the clear between machines), or a client that does not verify the server.
    config = tmp_path / "nats.conf"
    cert, key = certificates["cert"], certificates["key"]
    config.write_text(server_config(f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}\n'))
    server = EmbeddedNats(tmp_path / "store", port=free_port(), config_file=config)
    await server.start()
    try:
        url = f"tls://127.0.0.1:{server.port}?tls_ca={certificates['ca']}"
        assert isinstance(connect_options(url)["tls"], ssl.SSLContext)
        nc = await connect_nats(url)  # the services' own connection
        try:
            got: asyncio.Queue[bytes] = asyncio.Queue()

            async def on(msg: Msg) -> None:
                await got.put(msg.data)

            await nc.subscribe("tls.check", cb=on)
            await nc.publish("tls.check", b"over TLS")
            assert await asyncio.wait_for(got.get(), 10) == b"over TLS"
            assert nc.connected_url is not None and nc.connected_url.scheme == "tls"
        finally:
            await nc.close()

        # the system's CAs do not know the private one: refused, never connected in the clear
        async def quiet(_: Exception) -> None:
            return None

        with pytest.raises((ssl.SSLError, nats.errors.NoServersError, OSError)):
            await nats.connect(
                f"tls://127.0.0.1:{server.port}",
                allow_reconnect=False,
                connect_timeout=3,
                error_cb=quiet,
            )
        with pytest.raises(ValueError, match="tls://"):
            connect_options(f"nats://127.0.0.1:{server.port}?tls_ca={certificates['ca']}")
    finally:
        server.stop()


class HandshakeRecorder:
    """A test double of ClickHouse's HTTPS port: completes TLS handshakes with the test's
    certificate and records each outcome, then closes (it speaks no HTTP)."""

    def __init__(self, certificates: dict[str, Path]) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificates["cert"], certificates["key"])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.outcomes: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    self.outcomes.append("handshake")
                    tls.recv(1024)
            except (ssl.SSLError, OSError) as exc:
                self.outcomes.append(f"refused: {type(exc).__name__}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def recorder(certificates: dict[str, Path]) -> Iterator[HandshakeRecorder]:
    r = HandshakeRecorder(certificates)
    yield r
    r.close()


def test_clickhouse_over_https_verifies_the_server_against_the_urls_ca(
    recorder: HandshakeRecorder, certificates: dict[str, Path]
) -> None:
    # Catches: no way to give the ClickHouse connections a private CA, or a client that does
    # not verify the server (the test double would see a handshake without the CA too).
    base = f"https://u:p@127.0.0.1:{recorder.port}/motcua"
    with pytest.raises(Exception):  # noqa: B017 - the double speaks no HTTP past the handshake
        connect(f"{base}?ca_cert={certificates['ca']}", connect_timeout=5, send_receive_timeout=5)
    assert "handshake" in recorder.outcomes  # verified against the URL's CA
    recorder.outcomes.clear()
    with pytest.raises(Exception, match="(?i)certificate|ssl"):
        connect(base, connect_timeout=5, send_receive_timeout=5)
    assert recorder.outcomes and "handshake" not in recorder.outcomes
    with pytest.raises(ValueError, match="https://"):
        connect(f"http://u:p@127.0.0.1:1/motcua?ca_cert={certificates['ca']}")
