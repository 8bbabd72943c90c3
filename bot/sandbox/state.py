"""Where the sandbox keeps the bot's state: a Redis the bot reaches by URL, as in production.

This module owns ``open_redis``: with ``REDIS_URL`` set (a Sentinel URL too), that Redis under
a fresh key prefix (its keys deleted on exit); otherwise a private ``redis-server`` on a free
port (in memory, nothing saved) when the binary is on PATH; otherwise fakeredis serving the
Redis protocol over TCP in this process. The bot connects by URL either way
(``bot.boot.redis_from_url``).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bot.boot import redis_from_url, redis_problem
from bot.settings import redacted_url
from loopback.server import free_port


class StateError(Exception):
    """The sandbox cannot get a Redis; the message is one line for the terminal."""


@dataclass
class SandboxRedis:
    url: str
    prefix: str
    kind: str  # "external", "redis-server" or "fakeredis"
    description: str  # one line for the terminal
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Delete what the sandbox wrote to a shared Redis; stop a Redis it started."""
        while self._cleanup:
            self._cleanup.pop()()


def open_redis(
    env: Mapping[str, str], workdir: Path, *, redis_server: str | None = None
) -> SandboxRedis:
    """A Redis for the sandbox. ``redis_server``: the binary to start ("" never starts one;
    None looks for ``redis-server`` on PATH)."""
    # Never the production prefix itself: a sandbox sharing a Redis with a real deployment
    # must not touch its escalations or compete for its scheduler lease.
    prefix = f"{env.get('WARROOM_REDIS_PREFIX') or 'warroom'}:sandbox-{uuid.uuid4().hex[:8]}"
    url = env.get("REDIS_URL")
    if url:
        return _external(url, prefix)
    binary = shutil.which("redis-server") if redis_server is None else redis_server
    if binary:
        return _private_server(binary, prefix, workdir)
    return _in_process(prefix)


def _external(url: str, prefix: str) -> SandboxRedis:
    try:
        client = redis_from_url(url)  # as the bot opens it: a Sentinel URL too
    except ValueError as e:
        raise StateError(f"REDIS_URL {redacted_url(url)} is not usable: {e}") from None
    try:
        client.ping()
    except redis.RedisError as e:
        client.close()
        raise StateError(f"{redis_problem(e, url)} (REDIS_URL)") from None

    def delete_keys() -> None:
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        except redis.RedisError:
            pass  # best effort: the prefix is unique to this run
        finally:
            client.close()

    return SandboxRedis(
        url=url,
        prefix=prefix,
        kind="external",
        description=(
            f"Redis at {redacted_url(url)} (REDIS_URL), keys under {prefix}: (deleted on exit)"
        ),
        _cleanup=[delete_keys],
    )


@dataclass
class RedisServer:
    """A `redis-server` this process started: in memory, nothing saved, on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis_server(
    binary: str,
    folder: Path,
    *,
    port: int | None = None,
    password: str | None = None,
    extra: tuple[str, ...] = (),
) -> RedisServer:
    """Start `binary` on `port` (a free one by default), wanting `password` if one is given,
    and wait until it answers."""
    port = port or free_port()
    if password:
        extra = ("--requirepass", password, *extra)
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(proc, port, password)
    deadline = time.monotonic() + 10
    while not _answers(server.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise StateError(f"{binary} did not start on port {port}")
        time.sleep(0.05)
    return server


def _private_server(binary: str, prefix: str, workdir: Path) -> SandboxRedis:
    # A password nobody else knows: anyone on this machine could otherwise write the job
    # store's pickled jobs, which the bot unpickles, and so run code as this user.
    server = start_redis_server(binary, workdir / "redis", password=secrets.token_urlsafe(24))
    return SandboxRedis(
        url=server.url,
        prefix=prefix,
        kind="redis-server",
        description=(
            f"a private redis-server on 127.0.0.1:{server.port} "
            "(in memory, with a password of its own; gone when the sandbox stops)"
        ),
        _cleanup=[server.stop],
    )


def _in_process(prefix: str) -> SandboxRedis:
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0))
    port = int(server.server_address[1])
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeredis", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.shutdown()  # also tells open connections to finish
        server.server_close()
        thread.join(timeout=5)

    return SandboxRedis(
        url=f"redis://127.0.0.1:{port}/0",
        prefix=prefix,
        kind="fakeredis",
        description=(
            f"an in-process Redis (fakeredis) on 127.0.0.1:{port}: no redis-server on PATH; "
            "gone when the sandbox stops"
        ),
        _cleanup=[stop],
    )


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
