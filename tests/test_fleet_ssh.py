"""The SSH layer: host key decisions, key-only authentication, one connection reused for
every channel, the channel cap and a lost link.

Most tests talk to an in-process asyncssh server on 127.0.0.1:0 with generated keys
(fast; asyncssh's own tests do the same); the last ones use a real OpenSSH sshd, whose
connection reuse and a host going silent (sshd frozen) are what production meets."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

from ecosystem.errors import (
    HostAuthRefused,
    HostError,
    HostKeyRejected,
    HostUnreachable,
    InvalidValue,
)
from ecosystem.fleet.connect import Endpoint, connect
from ecosystem.fleet.knownhosts import KeyPolicy, UnknownHostKey, fingerprint
from ecosystem.fleet.ssh import MAX_CHANNELS, SSHPool
from ecosystem.paths import StatePaths
from tests import sshd as real
from tests.fleet_fixtures import ClientKey
from tests.sshd import SshServer


@dataclass
class FakeHost:
    """An asyncssh server standing in for a host: `cat` echoes stdin, any other
    command answers `ran: COMMAND`."""

    port: int
    host_key: asyncssh.SSHKey
    connections: list[object] = field(default_factory=list)


@asynccontextmanager
async def fake_host(
    client: ClientKey, host_key: asyncssh.SSHKey | None = None, port: int = 0
) -> AsyncIterator[FakeHost]:
    key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    made = FakeHost(0, key)

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            made.connections.append(conn)

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        try:
            if process.command == "cat":
                async for line in process.stdin:
                    process.stdout.write(line)
            else:
                process.stdout.write(f"ran: {process.command}\n")
            process.exit(0)
        except (asyncssh.Error, OSError):
            pass  # the client closed the channel first: nothing to answer

    acceptor = await asyncssh.listen(
        "127.0.0.1",
        port,
        server_factory=Server,
        server_host_keys=[key],
        authorized_client_keys=asyncssh.import_authorized_keys(client.public + "\n"),
        process_factory=handle,
    )
    made.port = acceptor.sockets[0].getsockname()[1]
    try:
        yield made
    finally:
        acceptor.close()
        await acceptor.wait_closed()


def endpoint(fake: FakeHost, client: ClientKey, **changes: object) -> Endpoint:
    values: dict[str, object] = {
        "name": "vps-u",
        "address": "127.0.0.1",
        "user": "deploy",
        "port": fake.port,
        "identity_file": str(client.path),
    }
    values.update(changes)
    return Endpoint(**values)  # type: ignore[arg-type]


def test_first_contact_trust_and_a_changed_key(ssh_key: ClientKey, tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "home")
    known = paths.home / "known_hosts"

    async def scenario() -> None:
        async with fake_host(ssh_key) as fake:
            ep = endpoint(fake, ssh_key)
            with pytest.raises(UnknownHostKey) as unknown:
                await connect(ep, paths)
            assert unknown.value.fingerprint == fingerprint(fake.host_key)
            assert "zapvisor hosts trust vps-u --host-key SHA256:" in str(unknown.value)
            assert not known.exists()
            (await connect(ep, paths, policy=KeyPolicy(trust_new=True))).close()
            assert stat.S_IMODE(known.stat().st_mode) == 0o600
            line = known.read_text().strip()
            assert line.startswith(f"[127.0.0.1]:{fake.port} ssh-ed25519 AAAA")
            # OpenSSH's format: asyncssh's own reader finds the key in it
            trusted = asyncssh.read_known_hosts(str(known)).match(
                "127.0.0.1", "127.0.0.1", fake.port
            )
            assert fake.host_key.convert_to_public() in trusted[0]
            (await connect(ep, paths)).close()  # known now: no question
            port = fake.port
        async with fake_host(ssh_key, port=port) as rebuilt:
            with pytest.raises(HostKeyRejected) as changed:
                await connect(ep, paths, policy=KeyPolicy(trust_new=True))
            text = str(changed.value)
            assert "CHANGED" in text and fingerprint(fake.host_key) in text
            assert fingerprint(rebuilt.host_key) in text
            assert f"zapvisor hosts trust vps-u --host-key {fingerprint(rebuilt.host_key)}" in text
            assert rebuilt.connections and len(known.read_text().splitlines()) == 1
            new = fingerprint(rebuilt.host_key)
            policy = KeyPolicy(expected=new, replace=True)
            (await connect(ep, paths, policy=policy)).close()
            assert known.read_text().count(f"[127.0.0.1]:{port} ") == 1
            (await connect(ep, paths)).close()

    asyncio.run(scenario())


def test_the_store_vouches_for_a_key_this_machine_never_met(
    ssh_key: ClientKey, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with fake_host(ssh_key) as fake:
            good = endpoint(fake, ssh_key, store_key=fingerprint(fake.host_key))
            (await connect(good, StatePaths(tmp_path / "a"))).close()
            assert (tmp_path / "a" / "known_hosts").read_text().startswith("[127.0.0.1]")
            bad = endpoint(fake, ssh_key, store_key="SHA256:" + "B" * 43)
            with pytest.raises(HostKeyRejected, match="the fleet's store recorded SHA256:BBBB"):
                await connect(bad, StatePaths(tmp_path / "b"))
            assert not (tmp_path / "b" / "known_hosts").exists()

    asyncio.run(scenario())


def test_only_keys_authenticate(ssh_key: ClientKey, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    stranger = tmp_path / "id_other"
    other.write_private_key(stranger)
    locked = tmp_path / "id_locked"
    other.write_private_key(locked, "pkcs8-pem", passphrase="s3cret")

    async def scenario() -> None:
        async with fake_host(ssh_key) as fake:
            paths = StatePaths(tmp_path / "home")
            trust = KeyPolicy(trust_new=True)
            with pytest.raises(HostAuthRefused, match=f"refused the identity {stranger}"):
                await connect(
                    endpoint(fake, ssh_key, identity_file=str(stranger)), paths, policy=trust
                )
            with pytest.raises(InvalidValue, match=r"Passphrase must be specified.*ssh-add"):
                await connect(
                    endpoint(fake, ssh_key, identity_file=str(locked)), paths, policy=trust
                )
            assert not (paths.home / "known_hosts").exists()  # nobody logged in

    asyncio.run(scenario())


def test_one_connection_serves_every_channel_up_to_the_cap(
    ssh_key: ClientKey, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with fake_host(ssh_key) as fake:
            paths = StatePaths(tmp_path / "home")
            ep = endpoint(fake, ssh_key)
            (await connect(ep, paths, policy=KeyPolicy(trust_new=True))).close()
            pool = SSHPool(paths)
            fake.connections.clear()
            results = await asyncio.gather(
                *(pool.run(ep, f"zapvisor show c{i} --json", timeout=10) for i in range(5))
            )
            assert [r.stdout for r in results] == [
                f"ran: zapvisor show c{i} --json\n" for i in range(5)
            ]
            channel = await pool.open_process(ep, "cat", timeout=10)
            channel.writer.write(b'{"id": 1, "method": "ping"}\n')
            assert await channel.reader.readline() == b'{"id": 1, "method": "ping"}\n'
            others = [
                await pool.open_process(ep, "cat", timeout=10) for _ in range(MAX_CHANNELS - 1)
            ]
            with pytest.raises(HostError, match=f"already has {MAX_CHANNELS} channels"):
                await pool.open_process(ep, "cat", timeout=10)
            channel.close()
            await channel.wait_closed()
            for _ in range(50):  # the slot comes back once the channel has closed
                await asyncio.sleep(0.02)
                try:
                    spare = await pool.open_process(ep, "cat", timeout=10)
                    break
                except HostError:
                    continue
            else:
                raise AssertionError("the closed channel's slot never came back")
            assert len(fake.connections) == 1
            assert pool.states["vps-u"].up
            for c in [*others, spare]:
                c.close()
            latency = await pool.ping(ep)
            assert 0 < latency < 5
            await pool.close()

    asyncio.run(scenario())


def test_a_lost_connection_is_noticed_and_reported(ssh_key: ClientKey, tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = StatePaths(tmp_path / "home")
        pool = SSHPool(paths)
        async with fake_host(ssh_key) as fake:
            ep = endpoint(fake, ssh_key)
            (await connect(ep, paths, policy=KeyPolicy(trust_new=True))).close()
            await pool.run(ep, "true", timeout=10)
            for conn in fake.connections:
                conn.abort()  # type: ignore[attr-defined]
            for _ in range(100):
                if not pool.states["vps-u"].up:
                    break
                await asyncio.sleep(0.02)
            state = pool.states["vps-u"]
            assert not state.up and state.error and state.since is not None
        with pytest.raises(HostUnreachable, match="refused the connection"):
            await pool.run(ep, "true", timeout=10)  # the server is gone now
        await pool.close()

    asyncio.run(scenario())


# -- real OpenSSH -------------------------------------------------------------------------


def test_real_sshd_one_connection_and_a_silent_host_noticed_within_seconds(
    ssh_key: ClientKey, make_sshd: Callable[[], SshServer], tmp_path: Path
) -> None:
    server = make_sshd()
    user = real.create_user()
    try:
        real.authorize(user, ssh_key.public)
        paths = StatePaths(tmp_path / "home")
        ep = Endpoint("vps-r", "127.0.0.1", user.name, server.port, str(ssh_key.path))

        async def scenario() -> float:
            pool = SSHPool(paths)
            await pool.connection(ep, policy=KeyPolicy(expected=server.fingerprint))
            channel = await pool.open_process(ep, "cat", timeout=10)
            runs = await asyncio.gather(
                *(pool.run(ep, "echo $((6*7))", timeout=20) for _ in range(4))
            )
            assert [r.stdout for r in runs] == ["42\n"] * 4
            channel.writer.write(b"hello\n")
            assert await asyncio.wait_for(channel.reader.readline(), 10) == b"hello\n"
            frozen = server.freeze()
            started = time.monotonic()
            try:
                while pool.states["vps-r"].up and time.monotonic() - started < 30:
                    await asyncio.sleep(0.1)
                noticed = time.monotonic() - started
                assert not pool.states["vps-r"].up
                # the open channel ends too, so a reader waiting on it is not stuck
                with pytest.raises(asyncssh.ConnectionLost, match="keepalive"):
                    await asyncio.wait_for(channel.reader.read(), 5)
            finally:
                server.thaw(frozen)
            again = await pool.run(ep, "echo back", timeout=20)
            assert again.stdout == "back\n" and pool.states["vps-r"].up
            await pool.close()
            return noticed

        noticed = asyncio.run(scenario())
        assert noticed < 10, noticed
        # one login for the four commands and the channel (and one after the freeze)
        log = server.log.read_text()
        assert log.count(f"Accepted publickey for {user.name}") == 2
    finally:
        real.delete_user(user)
