"""The `warroom` command: run the bot, the sandbox, reports; check protocol files; export and
import the agent's memory."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.settings import Settings, SettingsError, environment_help, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="warroom",
        description="Run the war-room bot, its sandbox and its reports; check protocol files; "
        "export and import the agent's memory.",
    )
    # Not `required`: argparse would name the internal dest; a missing command shows the
    # usage of the command it belongs to instead (see below).
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    run = sub.add_parser(
        "run",
        help="run the bot (Socket Mode if SLACK_APP_TOKEN is set)",
        description="Run the bot: HTTP on --port, or Socket Mode if SLACK_APP_TOKEN is set.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--port", type=int, default=None, help="HTTP port (default $PORT or 3000)")
    run.add_argument(
        "--threads", type=int, default=32, help="HTTP request threads per process (default 32)"
    )

    protocols = sub.add_parser(
        "protocols", help="protocol files", description="Check a protocol file."
    )
    psub = protocols.add_subparsers(dest="protocols_command", metavar="COMMAND", title="commands")
    check = psub.add_parser("check", help="validate a protocol file")
    check.add_argument(
        "file", nargs="?", metavar="FILE", help="protocol YAML (default: the shipped tier4.yaml)"
    )

    memory = sub.add_parser(
        "memory",
        help="the agent's memory (Agent_Memory) in Redis",
        description="Export the agent's memory from Redis to a folder, or import a folder.",
    )
    msub = memory.add_subparsers(dest="memory_command", metavar="COMMAND", title="commands")
    export = msub.add_parser(
        "export", help="write every memory document from Redis to DIR, in the seed's layout"
    )
    export.add_argument("dir", metavar="DIR", help="the folder to write (created if missing)")
    imp = msub.add_parser(
        "import",
        help="take DIR's customer_insights.yaml (and documents Redis lacks) into Redis",
    )
    imp.add_argument("dir", metavar="DIR", help="an Agent_Memory folder")

    report = sub.add_parser("report", help="KPIs over the escalation history", add_help=False)
    report.add_argument("rest", nargs=argparse.REMAINDER)
    sandbox = sub.add_parser(
        "sandbox", help="a local Slack-like workspace with the bot, in the browser", add_help=False
    )
    sandbox.add_argument("rest", nargs=argparse.REMAINDER)

    argv = list(sys.argv[1:] if argv is None else argv)
    # `report` and `sandbox` parse their own options (and their own --help).
    if argv and argv[0] == "report":
        from bot.report import main as report_main

        return report_main(argv[1:])
    if argv and argv[0] == "sandbox":
        from bot.sandbox import main as sandbox_main

        return sandbox_main(argv[1:])
    args = parser.parse_args(argv)
    for command, missing in (
        (parser, args.command is None),
        (protocols, args.command == "protocols" and args.protocols_command is None),
        (memory, args.command == "memory" and args.memory_command is None),
    ):
        if missing:
            command.print_help(sys.stderr)
            return 2
    if args.command == "run":
        return _run(args)
    if args.command == "memory":
        return _memory(args.memory_command, Path(args.dir))
    return _protocols_check(args.file)


def _fail(message: str) -> int:
    print(f"warroom: {message}", file=sys.stderr)
    return 2


def _protocols_check(path: str | None) -> int:
    from protocols.loader import DEFAULT_PROTOCOL, check, describe, load_protocol

    problems = check(path)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return 1
    print(f"ok: {path or DEFAULT_PROTOCOL}: {describe(load_protocol(path))}")
    return 0


def _memory(command: str, folder: Path) -> int:
    """`warroom memory export DIR` / `import DIR`: one line on stdout saying what was done, or
    one on stderr (exit 2) saying what stands in the way."""
    import yaml

    from bot.boot import connect_redis, redis_problem, redis_ready
    from bot.domain.errors import Unavailable
    from bot.memory import Memory
    from bot.store import Keys, MemoryRecords

    try:
        settings = load_settings()
    except SettingsError as e:
        return _fail(str(e))
    if command == "import" and not folder.is_dir():
        return _fail(f"{folder} is not a folder")
    try:
        client = connect_redis(settings)
    except ValueError as e:  # a REDIS_URL redis-py cannot parse
        return _fail(str(e))
    problem = redis_ready(client, settings.redis_url)
    if problem:
        client.close()
        return _fail(problem)
    memory = Memory(MemoryRecords(client, Keys(settings.redis_prefix)), settings.memory_dir)
    try:
        if command == "export":
            written = memory.export(folder)
            print(f"wrote {written} files to {folder}")
            return 0
        adopted = memory.adopt(folder)
    except Unavailable as e:
        return _fail(redis_problem(e, settings.redis_url))
    except OSError as e:
        return _fail(f"{e.filename or folder}: {e.strerror or e}")
    except (yaml.YAMLError, ValueError) as e:
        return _fail(str(e).replace("\n", " "))
    finally:
        client.close()
    parts = [
        "customer_insights.yaml" if adopted.customer_insights else "no customer_insights.yaml",
        "the lessons" if adopted.lessons else "no new lessons",
        f"documents of {len(adopted.escalations)} escalations",
    ]
    print(f"imported {', '.join(parts)} from {folder}")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except SettingsError as e:
        return _fail(str(e))
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    missing = settings.missing_for_run()
    if missing:
        return _fail(f"{' and '.join(missing)} must be set (see docs/configuration.md)")
    if settings.metrics_bind and settings.metrics_bind[1] == settings.port:
        return _fail(
            f"WARROOM_METRICS_ADDRESS must use another port than the HTTP port ({settings.port})"
        )

    # Nothing heavy yet: Bolt, slack_sdk and the model's SDK take seconds to import on a small
    # machine, and only a process that will run needs them (bot.boot stays clear of them).
    from bot.boot import connect_redis, load_definitions, redis_ready
    from bot.config import ConfigError
    from bot.logs import configure_logging
    from protocols.loader import ProtocolError

    try:
        load_definitions(settings)
    except (ConfigError, ProtocolError) as e:
        return _fail(str(e).replace("\n", "; "))
    try:
        client = connect_redis(settings)
    except ValueError as e:  # a REDIS_URL redis-py cannot parse
        return _fail(str(e))
    try:
        problem = redis_ready(client, settings.redis_url)
    finally:
        client.close()
    if problem:
        return _fail(problem)
    problem = _check_slack(settings)
    if problem:
        return _fail(problem)

    configure_logging()
    if settings.socket_mode:
        return _run_socket_mode(settings)
    return _run_http(settings, threads=args.threads)


def _check_slack(settings: Settings) -> str | None:
    """One auth.test (and, in Socket Mode, one apps.connections.open): a wrong token or an
    unreachable Slack is one line now, not a worker that fails to boot later."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),  # type: ignore[union-attr]
        base_url=settings.slack_api_url,
        timeout=10,
    )
    checks = [("SLACK_BOT_TOKEN", client.auth_test)]
    if settings.socket_mode:
        # The app-level token opens Socket Mode connections and nothing else: asking for one
        # is how to check it (the address Slack answers with is simply left unused).
        app_token = settings.slack_app_token.get_secret_value()  # type: ignore[union-attr]
        checks.append(
            ("SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=app_token))
        )
    for name, check in checks:
        try:
            check()
        except SlackApiError as e:
            code = e.response.get("error") if isinstance(e.response.data, dict) else None
            return f"Slack refused {name} ({code or e.response.status_code})"
        except OSError as e:
            return f"cannot reach Slack at {settings.slack_api_url}: {e}"
    return None


def _run_socket_mode(settings: Settings) -> int:
    """Socket Mode: Slack's requests arrive over an outbound WebSocket; `--port` still serves
    /healthz and /metrics. SIGTERM or SIGINT closes the connection, lets the work already
    accepted finish and releases the scheduler lease."""
    from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler

    from bot.runtime import build_runtime
    from bot.wsgi import WarroomWSGI

    runtime = build_runtime(settings)
    runtime.start()
    app = WarroomWSGI(runtime, slack_events=False)
    servers = [_serve_health(app, "0.0.0.0", settings.port)]
    if settings.metrics_bind:
        servers.append(_serve_health(app, *settings.metrics_bind))
    token = settings.slack_app_token.get_secret_value()  # type: ignore[union-attr]
    handler = SocketModeHandler(runtime.app, token)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    handler.connect()
    # Never a wait without a timeout: the kernel hands the signal to any thread, and Python runs
    # the handler on the main thread only once it runs Python code again (it never would).
    while not stop.wait(0.5):
        pass
    # Stop taking envelopes; slack-sdk's close can wait out a 10 s ping interval, so it runs
    # beside the part that matters: finishing accepted work and releasing the lease.
    closing = threading.Thread(target=handler.close, name="socket-close", daemon=True)
    closing.start()
    runtime.close()
    for server in servers:
        server.shutdown()
    closing.join(timeout=2)
    return 0


def _serve_health(app: object, host: str, port: int) -> Any:
    import socket
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = make_server(host, port, app, server_class=Server, handler_class=QuietHandler)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def _run_http(settings: Settings, *, threads: int) -> int:
    from gunicorn.app.base import BaseApplication

    # Slack's requests on the public port; /metrics on its own listener when it has one
    # (bot/wsgi.py tells the two apart by the port a request came in on).
    binds = [f"0.0.0.0:{settings.port}"]
    if settings.metrics_address:
        binds.append(settings.metrics_address)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", binds)
            self.cfg.set("workers", int(os.environ.get("WEB_CONCURRENCY", "1")))
            # An asyncio worker holds the connections and reads each body in full before a
            # thread answers it (bot/asgi.py): slow clients cannot take every thread.
            # Headers within a deadline, connections capped (bot/connections.py).
            self.cfg.set("worker_class", "bot.connections.Worker")
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            from bot.wsgi import worker_exit

            # On SIGTERM the worker's runtime finishes or hands over what it accepted.
            self.cfg.set("worker_exit", worker_exit)

        def load(self) -> object:
            from bot.asgi import create_app

            return create_app(threads)

    Server().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
