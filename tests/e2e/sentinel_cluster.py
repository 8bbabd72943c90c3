"""A replicated Redis behind Sentinel on loopback, for the failover tests: a primary, a
replica and three sentinels, each a real `redis-server` on a free port in a folder of its
own, with passwords (the servers' and the sentinels' own), as production would have them;
with `tls=True`, every one of them speaks only TLS, with a certificate of a CA made here."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from loopback.server import free_port

SERVICE = "warroom"


@dataclass
class Node:
    name: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing handed over."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


class SentinelUnavailable(Exception):
    """This machine cannot run the cluster (no redis-server, no Sentinel mode, no TLS)."""


def make_certificates(folder: Path) -> None:
    """ca.crt, and server.crt/server.key that it signs for 127.0.0.1, in `folder`."""
    if shutil.which("openssl") is None:
        raise SentinelUnavailable("openssl is not installed")
    key = "-newkey rsa:2048 -nodes -days 2"
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for args in (
        f"req -x509 {key} -subj /CN=warroom-test-CA -keyout ca.key -out ca.crt",
        f"req {key} -subj /CN=127.0.0.1 -keyout server.key -out server.csr",
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile san.cnf -out server.crt",
    ):
        subprocess.run(["openssl", *args.split()], cwd=folder, check=True, capture_output=True)


@dataclass
class SentinelCluster:
    folder: Path
    binary: str
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    sentinel_password: str = field(default_factory=lambda: secrets.token_hex(12))
    down_after_ms: int = 1000
    tls: bool = False
    nodes: dict[str, Node] = field(default_factory=dict)

    @classmethod
    def start(cls, folder: Path, *, tls: bool = False) -> SentinelCluster:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SentinelUnavailable("redis-server is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        if tls:
            make_certificates(folder)
        cluster = cls(folder, binary, tls=tls)
        try:
            cluster._start()
        except AssertionError as e:
            cluster.stop()
            if tls and "primary exited" in str(e):
                raise SentinelUnavailable("this redis-server does not speak TLS") from None
            raise
        except BaseException:
            cluster.stop()
            raise
        return cluster

    # -- what the bot is given ---------------------------------------------------------------
    def url(self, *, password: str | None = None, sentinel_password: str | None = None) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.sentinels)
        secret = self.password if password is None else password
        theirs = self.sentinel_password if sentinel_password is None else sentinel_password
        scheme, ca = ("rediss", f"&ssl_ca_certs={self.ca}") if self.tls else ("redis", "")
        return f"{scheme}+sentinel://:{secret}@{hosts}/{SERVICE}/0?sentinel_password={theirs}{ca}"

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def sentinels(self) -> list[Node]:
        return [n for name, n in self.nodes.items() if name.startswith("sentinel")]

    # -- looking at it -------------------------------------------------------------------------
    def client(self, node: Node) -> redis.Redis:
        password = self.sentinel_password if node.name.startswith("sentinel") else self.password
        tls = {"ssl": True, "ssl_ca_certs": str(self.ca)} if self.tls else {}
        return redis.Redis(
            port=node.port, password=password, socket_timeout=2, socket_connect_timeout=1, **tls
        )

    def _tls_options(self) -> list[tuple[str, str]]:
        """TLS to the clients, to the replica and between sentinels (the port: only TLS)."""
        if not self.tls:
            return []
        return [
            ("tls-cert-file", str(self.folder / "server.crt")),
            ("tls-key-file", str(self.folder / "server.key")),
            ("tls-ca-cert-file", str(self.ca)),
            ("tls-auth-clients", "no"),
            ("tls-replication", "yes"),
        ]

    def primary(self) -> Node | None:
        """The data node the sentinels name as the primary (None while they name none)."""
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            with self.client(sentinel) as client:
                try:
                    state = client.sentinel_master(SERVICE)
                except redis.RedisError:
                    continue
            if state["is_master"] and not (state["is_sdown"] or state["is_odown"]):
                return next(n for n in self.data_nodes if n.port == int(state["port"]))
        return None

    @property
    def data_nodes(self) -> list[Node]:
        return [n for name, n in self.nodes.items() if not name.startswith("sentinel")]

    def replica(self) -> Node:
        primary = self.primary()
        return next(n for n in self.data_nodes if n is not primary and n.alive)

    def wait_for_primary(self, other_than: Node | None, timeout: float) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.primary()
            if found is not None and found is not other_than and found.alive:
                with self.client(found) as client:
                    if client.execute_command("ROLE")[0] == b"master":
                        return found
            time.sleep(0.05)
        raise AssertionError("the sentinels named no new primary")

    def wait_in_sync(self, timeout: float = 10) -> None:
        """Until the replica has every write the primary has taken so far."""
        primary = self.primary()
        assert primary is not None
        with self.client(primary) as client:
            if client.wait(1, int(timeout * 1000)) < 1:
                raise AssertionError("the replica did not catch up")

    def stall_replica(self) -> None:
        """Pause the replica and fill the link to it, so that what the primary takes from
        now on stays in the primary's own buffer: the replication window of a replica that
        fell behind, made wide enough to see. While it lasts the replica acknowledges
        nothing; if the primary dies meanwhile, those writes are gone."""
        primary, replica = self.primary(), self.replica()
        assert primary is not None
        replica.pause()
        with self.client(primary) as client:
            for i in range(32):
                client.set(f"ballast:{i}", b"x" * (4 << 20))
                link = client.execute_command("CLIENT LIST TYPE replica").decode()
                if int(link.split("omem=")[1].split()[0]) > 1 << 20:
                    client.delete(*(f"ballast:{j}" for j in range(i + 1)))
                    return
        raise AssertionError("the link to the replica never filled up")

    # -- the cluster -------------------------------------------------------------------------
    def _start(self) -> None:
        primary = self._server("primary")
        self._server("replica", "--replicaof", "127.0.0.1", str(primary.port))
        self._wait(lambda: self._replication("replica").get("master_link_status") == "up", 10)
        for i in range(3):
            self._sentinel(f"sentinel{i}", primary.port)
        # Each sentinel found the replica and the other two (through the primary's hello
        # channel): only then can they agree on a failover and carry it out.
        self._wait(self._sentinels_ready, 15)

    def _server(self, name: str, *extra: str) -> Node:
        node = Node(name, free_port(), self.folder / name)
        node.folder.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the log's descriptor.
        with (node.folder / "redis.log").open("wb") as log:
            port = ("--port", "0", "--tls-port") if self.tls else ("--port",)
            node.proc = subprocess.Popen(
                [
                    self.binary,
                    *(*port, str(node.port), "--bind", "127.0.0.1", "--dir", str(node.folder)),
                    *(arg for name, value in self._tls_options() for arg in (f"--{name}", value)),
                    *("--save", "", "--appendonly", "no"),
                    *("--requirepass", self.password, "--masterauth", self.password),
                    # Redis 7 waits 5 s for more replicas before a diskless full sync.
                    *("--repl-diskless-sync-delay", "0"),
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.nodes[name] = node
        self._wait(lambda: self._answers(node), 10)
        return node

    def _sentinel(self, name: str, primary_port: int) -> Node:
        node = Node(name, free_port(), self.folder / name)
        node.folder.mkdir(parents=True, exist_ok=True)
        config = node.folder / "sentinel.conf"  # Sentinel rewrites it: it must be writable
        config.write_text(
            (f"port 0\ntls-port {node.port}\n" if self.tls else f"port {node.port}\n")
            + "".join(f"{name} {value}\n" for name, value in self._tls_options())
            + "bind 127.0.0.1\n"
            f"dir {node.folder}\n"
            f"requirepass {self.sentinel_password}\n"
            # The sentinels talk to each other with it, too.
            f"sentinel sentinel-pass {self.sentinel_password}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel auth-pass {SERVICE} {self.password}\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 4000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        with (node.folder / "sentinel.log").open("wb") as log:
            node.proc = subprocess.Popen(
                [self.binary, str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
            )
        self.nodes[name] = node
        try:
            self._wait(lambda: self._answers(node), 5)
        except AssertionError:
            log = (node.folder / "sentinel.log").read_text(errors="replace")[-500:]
            raise SentinelUnavailable(f"redis-server --sentinel did not start: {log}") from None
        return node

    def _sentinels_ready(self) -> bool:
        for node in self.sentinels:
            with self.client(node) as client:
                state = client.sentinel_master(SERVICE)
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return True

    def _replication(self, name: str) -> dict:
        with self.client(self.nodes[name]) as client:
            return client.info("replication")

    def _answers(self, node: Node) -> bool:
        if not node.alive:
            raise AssertionError(f"{node.name} exited")
        try:
            with self.client(node) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    @staticmethod
    def _wait(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out: {check}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.alive:
                assert node.proc is not None
                node.resume()  # a paused process cannot act on SIGTERM
                node.proc.terminate()
        for node in self.nodes.values():
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    node.kill()
