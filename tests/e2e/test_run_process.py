"""`warroom run` as a real process: fail-fast start-up, then a declaration over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loopback.harness import get, warroom, warroom_env
from loopback.server import free_port, http_request
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"


@contextmanager
def serving(env: dict[str, str], port: int) -> Iterator[str]:
    """`warroom run` on `port` with `env`, healthy: its base URL."""
    proc = subprocess.Popen(
        warroom("run", "--port", str(port)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a start-up on a busy machine, not a bound
        while True:
            if proc.poll() is not None:
                pytest.fail(f"warroom run exited: {proc.stdout.read().decode()}")
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("warroom run did not become healthy in 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture
def server(fake_slack, redis_url, prefix, tmp_path, config_file) -> Iterator[str]:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    with serving(env, free_port()) as base:
        yield base


def test_run_serves_slack_health_and_metrics(server: str, fake_slack: FakeSlack) -> None:
    status, body = get(f"{server}/healthz")
    assert status == 200 and json.loads(body)["redis"] is True

    driver = SlackDriver(fake_slack, SIGNING_SECRET, url=f"{server}/slack/events")
    reply = driver.command("Acme Corp: checkout fails for all EU users --arr 250k")
    assert reply.status == 200 and "Opening a war room" in reply.json()["text"]

    name = f"esc-{datetime.now(UTC):%Y%m%d}-acme-corp"
    deadline = time.monotonic() + 10
    while not (fake_slack.channel_by_name(name) and fake_slack.channel_by_name(name).pins):
        assert time.monotonic() < deadline, "the war room was not completed in 10 s"
        time.sleep(0.05)

    bad = driver.command("no colon here")
    assert bad.status == 200 and "colon" in bad.json()["text"]

    forged = driver.headers("x=1", content_type="application/x-www-form-urlencoded")
    forged["x-slack-signature"] = "v0=" + "0" * 64
    assert driver.send("x=1", forged).status == 401

    status, metrics = get(f"{server}/metrics")
    text = metrics.decode()
    assert status == 200
    deadline = time.monotonic() + 5
    while 'warroom_declarations_total{outcome="opened"} 1.0' not in text:
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
        text = get(f"{server}/metrics")[1].decode()
    assert 'warroom_declarations_total{outcome="invalid"} 1.0' in text
    assert 'warroom_http_requests_total{path="/slack/events",status="401"} 1.0' in text
    assert 'warroom_slack_api_calls_total{method="conversations.create"} 1.0' in text
    assert get(f"{server}/nope")[0] == 404


def test_metrics_on_their_own_address_want_the_bearer_token(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    env = warroom_env(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        signing_secret=SIGNING_SECRET,
        WARROOM_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
        WARROOM_METRICS_TOKEN="scrape-me",
    )
    with serving(env, free_port()) as base:
        # The public port, where Slack's requests arrive, no longer shows the metrics...
        assert get(f"{base}/metrics")[0] == 404
        assert get(f"{base}/healthz")[0] == 200
        driver = SlackDriver(fake_slack, SIGNING_SECRET, url=f"{base}/slack/events")
        assert driver.command("help").status == 200
        # ...their own listener does, to Prometheus with the token only.
        status, body, headers = http_request(metrics)
        # Header names are case-insensitive; the server sends them in lower case.
        challenge = {name.lower(): value for name, value in headers.items()}["www-authenticate"]
        assert status == 401 and challenge.startswith("Bearer")
        assert b"warroom_" not in body
        for wrong in ("Bearer scrape-you", "Basic c2NyYXBlLW1l", "scrape-me", "Bearer "):
            assert http_request(metrics, headers={"Authorization": wrong})[0] == 401, wrong
        status, body, _ = http_request(metrics, headers={"Authorization": "Bearer scrape-me"})
        assert status == 200
        assert b'warroom_http_requests_total{path="/slack/events",status="200"} 1.0' in body
        assert b'warroom_http_requests_total{path="/metrics",status="401"} 5.0' in body
        # ...and serves nothing of Slack's.
        assert get(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200
        slack_on_metrics = SlackDriver(
            fake_slack, SIGNING_SECRET, url=f"http://127.0.0.1:{metrics_port}/slack/events"
        )
        assert slack_on_metrics.command("help").status == 404


def test_the_procfile_serves_metrics_on_their_own_address_too(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    (web,) = [line for line in PROCFILE.read_text().splitlines() if line.startswith("web:")]
    port, metrics_port = free_port(), free_port()
    env = warroom_env(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        signing_secret=SIGNING_SECRET,
        PORT=port,
        WARROOM_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
        WARROOM_METRICS_TOKEN="scrape-me",
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # As a platform runs it: the line, by a shell.
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + web.removeprefix("web:").strip()],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90  # a start-up on a busy machine, not a bound
        while True:
            assert proc.poll() is None, "the Procfile's web process exited"
            try:
                if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Procfile's web process did not start"
            time.sleep(0.1)
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 404
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        assert http_request(metrics, headers={"Authorization": "Bearer scrape-me"})[0] == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_metrics_token_alone_guards_the_main_port(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    env = warroom_env(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        signing_secret=SIGNING_SECRET,
        WARROOM_METRICS_TOKEN="scrape-me",
    )
    with serving(env, free_port()) as base:
        assert get(f"{base}/metrics")[0] == 401
        auth = {"Authorization": "Bearer scrape-me"}
        assert http_request(f"{base}/metrics", headers=auth)[0] == 200


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("nonsense", "warroom: WARROOM_METRICS_ADDRESS: Value error, 'nonsense' is not host:port"),
        ("127.0.0.1:SAME", "warroom: WARROOM_METRICS_ADDRESS must use another port than"),
    ],
)
def test_run_refuses_an_unusable_metrics_address(
    fake_slack, redis_url, prefix, tmp_path, config_file, address, message
) -> None:
    port = free_port()
    env = warroom_env(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        signing_secret=SIGNING_SECRET,
        WARROOM_METRICS_ADDRESS=address.replace("SAME", str(port)),
    )
    result = subprocess.run(
        warroom("run", "--port", str(port)), env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def run_fails(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        warroom("run", "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_run_fails_fast_without_tokens(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    del env["SLACK_BOT_TOKEN"]
    result = run_fails(env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "warroom: SLACK_BOT_TOKEN must be set (see README, Configuration)"
    ]


def test_run_fails_fast_without_redis(fake_slack, redis_url, prefix, tmp_path, config_file) -> None:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    result = run_fails(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "warroom: cannot reach Redis at redis://127.0.0.1"
    )


def test_run_refuses_a_bad_config_with_the_key_path(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    config_file.write_text("vp: [U0VPSUPRT]\nexec_chanel: exec\n")
    result = run_fails(env)
    assert result.returncode == 2
    assert "exec_chanel: unknown key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_protocols_check_cli(tmp_path) -> None:
    ok = subprocess.run(warroom("protocols", "check"), capture_output=True, text=True)
    assert ok.returncode == 0 and "6 criteria, 5 steps" in ok.stdout
    bad = tmp_path / "custom.yaml"
    bad.write_text(
        "id: x\nname: x\ndescription: x\nversion: 1\n"
        "criteria: [{id: a, title: A, description: A}]\n"
        "steps: [{id: assessment, title: T, description: D, checklist: [c], due: 1 hour}]\n"
    )
    result = subprocess.run(warroom("protocols", "check", str(bad)), capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{bad}: steps[0] (assessment).due: invalid duration '1 hour'" in result.stderr


def test_run_fails_fast_on_a_token_slack_refuses(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    env["SLACK_BOT_TOKEN"] = "xoxb-wrong"
    result = run_fails(env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "warroom: Slack refused SLACK_BOT_TOKEN (invalid_auth)"
    ]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("localhost:6379", "must specify one of the following schemes"),
        ("redis://localhost:notaport/0", "Port could not be cast to integer"),
        ("redis://localhost:99999/0", "Port out of range"),
    ],
)
def test_run_refuses_a_malformed_redis_url_in_one_line(
    fake_slack, redis_url, prefix, tmp_path, config_file, url, reason
) -> None:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    env["REDIS_URL"] = url
    result = run_fails(env)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"warroom: REDIS_URL {url} is not usable: ") and reason in line


def test_a_missing_token_is_told_before_the_heavy_imports(
    fake_slack, redis_url, prefix, tmp_path, config_file
) -> None:
    """Start-up time is mostly imports (Bolt, slack_sdk, anthropic: seconds on a busy two-core
    machine); a missing token is told before any of them. `python -X importtime` lists every
    module the process imported, so the test does not depend on how loaded the machine is
    (bench/startup.py measures the time)."""
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    del env["SLACK_BOT_TOKEN"]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *warroom("run")[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import ")}
    said = [line for line in lines if not line.startswith("import ")]
    assert said == ["warroom: SLACK_BOT_TOKEN must be set (see README, Configuration)"]
    assert "bot.settings" in imported  # the listing works
    heavy = {"slack_bolt", "slack_sdk", "anthropic", "apscheduler", "agents.vp", "bot.runtime"}
    assert not heavy & imported
