"""Redis over TLS with a password, with real processes: a redis-server that speaks only TLS
and wants a password (its CA and certificate made here with the openssl command), and the
bot's `connect_redis`, `warroom run`, `warroom report` and the sandbox using it through
`rediss://:PASSWORD@127.0.0.1:PORT/0?ssl_ca_certs=CA`. A wrong or missing password is one
line naming the problem; the password never appears in what any of them prints."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.runtime import connect_redis
from bot.sandbox.state import StateError, open_redis
from bot.settings import Settings
from loopback.harness import WarroomProcess, warroom, warroom_env
from loopback.server import free_port
from loopback.slack import FakeSlack
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow


@dataclass
class TlsRedis:
    port: int
    ca: Path
    password: str

    def url(self, password: str | None = None, *, ca: bool = True) -> str:
        secret = self.password if password is None else password
        auth = f":{secret}@" if secret else ""
        query = f"?ssl_ca_certs={self.ca}" if ca else ""
        return f"rediss://{auth}127.0.0.1:{self.port}/0{query}"


def _openssl(args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args.split()], cwd=cwd, check=True, capture_output=True)


def _certificates(folder: Path) -> None:
    """A CA of our own, and a certificate it signs for 127.0.0.1."""
    key = "-newkey rsa:2048 -nodes -days 2"
    _openssl(f"req -x509 {key} -subj /CN=warroom-test-CA -keyout ca.key -out ca.crt", folder)
    _openssl(f"req {key} -subj /CN=127.0.0.1 -keyout server.key -out server.csr", folder)
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile san.cnf -out server.crt",
        folder,
    )


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    binary, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if not binary or not openssl:
        pytest.skip("needs redis-server and openssl")
    folder = tmp_path_factory.mktemp("tls-redis")
    _certificates(folder)
    server = TlsRedis(port=free_port(), ca=folder / "ca.crt", password=secrets.token_hex(16))
    # TLS only (no plain port), a password, and clients not asked for certificates.
    options = (
        f"--port 0 --tls-port {server.port} --bind 127.0.0.1 "
        "--tls-cert-file server.crt --tls-key-file server.key --tls-ca-cert-file ca.crt "
        "--tls-auth-clients no --appendonly no"
    )
    proc = subprocess.Popen(
        [binary, *options.split(), "--save", "", "--requirepass", server.password],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.skip("this redis-server does not speak TLS (built without it)")
            try:
                if redis.Redis.from_url(server.url(), socket_connect_timeout=0.5).ping():
                    break
            except redis.RedisError:
                assert time.monotonic() < deadline, "the TLS redis-server did not answer"
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_connect_redis_speaks_tls_with_the_password(tls_redis: TlsRedis, prefix: str) -> None:
    client = connect_redis(Settings(redis_url=tls_redis.url(), redis_prefix=prefix))
    try:
        assert client.ping()
        client.set(f"{prefix}:probe", "over tls", ex=60)
        assert client.get(f"{prefix}:probe") == b"over tls"
        assert client.connection_pool.connection_class is redis.SSLConnection
    finally:
        client.close()
    # The port speaks nothing but TLS, and TLS checks the server against the CA it is given.
    plain = tls_redis.url().replace("rediss://", "redis://").split("?")[0]
    unverified = tls_redis.url(ca=False)
    for url, sign in ((plain, ""), (unverified, "CERTIFICATE_VERIFY_FAILED")):
        client = connect_redis(Settings(redis_url=url))
        try:
            with pytest.raises(redis.ConnectionError) as info:
                client.ping()
            assert sign in str(info.value)
        finally:
            client.close()


def test_warroom_run_and_report_work_over_tls(
    tls_redis: TlsRedis,
    fake_slack: FakeSlack,
    prefix: str,
    tmp_path: Path,
    config_file: Path,
) -> None:
    env = warroom_env(
        fake_slack, tls_redis.url(), prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    log = tmp_path / "warroom.log"
    proc = WarroomProcess(env, fake_slack, log).start()
    try:
        assert proc.health()["redis"] is True
        assert proc.driver().command("Acme Corp: checkout fails --arr 250k").status == 200
        deadline = time.monotonic() + 15
        while not any(c.name.startswith("esc-") and c.pins for c in fake_slack.channels.values()):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        # The room's timers went into the job store: pickled jobs, over TLS.
        deadline = time.monotonic() + 10
        while not proc.is_leader():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.stop()
    report = subprocess.run(
        warroom("report", "--format", "json"), env=env, capture_output=True, text=True, timeout=60
    )
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["escalations"]["total"] == 1
    printed = log.read_text() + report.stdout + report.stderr
    assert tls_redis.password not in printed


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("not-the-password", "refused the password in REDIS_URL"),
        ("", "wants a password: give it in REDIS_URL"),
    ],
    ids=["wrong", "missing"],
)
def test_a_wrong_or_missing_password_is_one_line_that_does_not_show_it(
    tls_redis: TlsRedis,
    fake_slack: FakeSlack,
    prefix: str,
    tmp_path: Path,
    config_file: Path,
    password: str,
    says: str,
) -> None:
    url = tls_redis.url(password)
    shown = url.replace(f":{password}@", ":***@") if password else url
    env = warroom_env(fake_slack, url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET)
    commands = {
        "warroom": warroom("run", "--port", str(free_port())),
        "warroom report": warroom("report"),
    }
    for name, command in commands.items():
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"{name}: Redis at {shown} {says}"), line
        assert tls_redis.password not in result.stdout + result.stderr
        if password:
            assert password not in result.stdout + result.stderr

    with pytest.raises(StateError) as info:
        open_redis({"REDIS_URL": url}, tmp_path)
    assert str(info.value).startswith(f"Redis at {shown} {says}")
    assert str(info.value).endswith("(REDIS_URL)") and "\n" not in str(info.value)


def test_the_sandbox_runs_on_a_tls_redis_without_showing_the_password(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    state = open_redis({"REDIS_URL": tls_redis.url()}, tmp_path)
    try:
        assert state.kind == "external"
        assert tls_redis.password not in state.description
        assert f"rediss://:***@127.0.0.1:{tls_redis.port}/0" in state.description
    finally:
        state.close()
