"""The HTTP face of `warroom run`: Slack's requests, a health check and metrics, as WSGI.

Served by gunicorn (`warroom run`, or the Procfile); `create_app()` is its factory. With
WARROOM_METRICS_ADDRESS, the same app is also served on that listener, which answers only
/metrics and /healthz, and the public one no longer answers /metrics; with
WARROOM_METRICS_TOKEN, /metrics wants that bearer token. Which listener a request came in on
is its SERVER_PORT (gunicorn and wsgiref set it from the listening socket).
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.desk.webhook import MAX_BODY
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

log = logging.getLogger(__name__)

# Where the support desk's webhook arrives, on the same server as Slack's requests.
DESK_WEBHOOK = "/zendesk/webhook"
MAX_WEBHOOK_BODY = MAX_BODY

StartResponse = Callable[..., Any]


class WarroomWSGI:
    def __init__(self, runtime: Runtime, *, slack_events: bool = True) -> None:
        """`slack_events=False` (Socket Mode) serves only the health check and metrics."""
        self.runtime = runtime
        self.slack = SlackRequestHandler(runtime.app, path="/slack/events")
        self.slack_events = slack_events
        bind = runtime.settings.metrics_bind
        self.metrics_port = str(bind[1]) if bind else None
        token = runtime.settings.metrics_token
        self.metrics_token = token.get_secret_value().encode() if token else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        status_box: list[str] = []

        def recording_start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status_box.append(status)
            return start_response(status, headers, *args)

        on_metrics_listener = (
            self.metrics_port is not None and environ.get("SERVER_PORT") == self.metrics_port
        )
        if method == "GET" and path == "/healthz":
            body = self._health(recording_start)
        elif (
            method == "GET"
            and path == "/metrics"
            and (self.metrics_port is None or on_metrics_listener)
        ):
            body = self._metrics(environ, recording_start)
        elif path == "/slack/events" and self.slack_events and not on_metrics_listener:
            with self.runtime.executor.answering():
                body = self.slack(environ, recording_start)
        elif (
            path == DESK_WEBHOOK
            and method == "POST"
            and self.runtime.tickets is not None
            and not on_metrics_listener
        ):
            body = self._desk_webhook(environ, recording_start)
        else:
            body = self._respond(recording_start, "404 Not Found", b"not found\n", "text/plain")
        code = status_box[0].split(" ", 1)[0] if status_box else "500"
        label = path if path in ("/slack/events", "/healthz", "/metrics", DESK_WEBHOOK) else "other"
        self.runtime.metrics.requests.labels(label, code).inc()
        return body

    def _desk_webhook(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Zendesk's webhook: its signature checked before anything else is done with it."""
        tickets = self.runtime.tickets
        assert tickets is not None
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_WEBHOOK_BODY:
            return self._respond(
                start_response, "413 Payload Too Large", b"too large\n", "text/plain"
            )
        body = environ["wsgi.input"].read(int(length)) if int(length) else b""
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        status, reason = tickets.webhook(headers, body)
        phrase = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 413: "Payload Too Large"}
        return self._respond(
            start_response,
            f"{status} {phrase.get(status, 'Error')}",
            f"{reason}\n".encode(),
            "text/plain",
        )

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if self.metrics_token is not None:
            scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.metrics_token
            ):
                return self._respond(
                    start_response,
                    "401 Unauthorized",
                    b"a bearer token is required\n",
                    "text/plain",
                    [("WWW-Authenticate", 'Bearer realm="warroom metrics"')],
                )
        metrics = self.runtime.metrics
        return self._respond(start_response, "200 OK", metrics.render(), metrics.content_type)

    def _health(self, start_response: StartResponse) -> list[bytes]:
        redis_ok = self.runtime.ready()
        payload = {
            "status": "ok" if redis_ok else "unavailable",
            "redis": redis_ok,
            "scheduler": "leader" if self.runtime.scheduler.is_leader else "standby",
        }
        status = "200 OK" if redis_ok else "503 Service Unavailable"
        return self._respond(
            start_response, status, json.dumps(payload).encode(), "application/json"
        )

    @staticmethod
    def _respond(
        start_response: StartResponse,
        status: str,
        body: bytes,
        ctype: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        start_response(
            status,
            [("Content-Type", ctype), ("Content-Length", str(len(body))), *(headers or [])],
        )
        return [body]


def create_app() -> WarroomWSGI:
    """gunicorn's factory: settings from the environment, one runtime per worker process."""
    from bot.logs import configure_logging

    configure_logging()
    # Acks need about a millisecond of CPU each; work after the ack holds the GIL for up to
    # the switch interval (5 ms by default) at a time. A shorter interval keeps acks from
    # queueing behind it when many declarations arrive at once.
    sys.setswitchinterval(0.0005)
    runtime = build_runtime(Settings())
    runtime.start()
    return WarroomWSGI(runtime)


def worker_exit(server: object, worker: object) -> None:
    """gunicorn's hook in a worker that has stopped taking requests (on SIGTERM): its runtime
    finishes the work it accepted, or leaves it to the next process (see `Runtime.close`).
    `warroom run` sets it; gunicorn run directly gets it with `--config python:bot.wsgi`."""
    # The app gunicorn loaded: the WSGI app itself (gthread), or the front door before it
    # (the asgi worker, bot/asgi.py); either carries the runtime.
    runtime = getattr(getattr(worker, "wsgi", None), "runtime", None)
    if isinstance(runtime, Runtime):
        runtime.close()
