"""The HTTP face of `warroom run`: Slack's requests, a health check and metrics, as WSGI.

Served by gunicorn (`warroom run`, or the Procfile); `create_app()` is its factory.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class WarroomWSGI:
    def __init__(self, runtime: Runtime, *, slack_events: bool = True) -> None:
        """`slack_events=False` (Socket Mode) serves only the health check and metrics."""
        self.runtime = runtime
        self.slack = SlackRequestHandler(runtime.app, path="/slack/events")
        self.slack_events = slack_events

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        status_box: list[str] = []

        def recording_start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status_box.append(status)
            return start_response(status, headers, *args)

        if method == "GET" and path == "/healthz":
            body = self._health(recording_start)
        elif method == "GET" and path == "/metrics":
            body = self._respond(
                recording_start,
                "200 OK",
                self.runtime.metrics.render(),
                self.runtime.metrics.content_type,
            )
        elif path == "/slack/events" and self.slack_events:
            with self.runtime.executor.answering():
                body = self.slack(environ, recording_start)
        else:
            body = self._respond(recording_start, "404 Not Found", b"not found\n", "text/plain")
        code = status_box[0].split(" ", 1)[0] if status_box else "500"
        label = path if path in ("/slack/events", "/healthz", "/metrics") else "other"
        self.runtime.metrics.requests.labels(label, code).inc()
        return body

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
        start_response: StartResponse, status: str, body: bytes, ctype: str
    ) -> list[bytes]:
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
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
