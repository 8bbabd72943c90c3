"""Prometheus metrics of one process, on a registry of its own (nothing global at import)."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        counter = partial(Counter, registry=self.registry)
        self.requests = counter(
            "warroom_http_requests", "HTTP requests served, by path and status.", ["path", "status"]
        )
        self.declarations = counter(
            "warroom_declarations",
            "Escalation declarations, by outcome (opened, duplicate, invalid, failed).",
            ["outcome"],
        )
        self.slack_api_errors = counter(
            "warroom_slack_api_errors",
            "Slack Web API calls that failed, by method and Slack's error code.",
            ["method", "code"],
        )
        self.slack_api_calls = counter(
            "warroom_slack_api_calls", "Slack Web API calls made, by method.", ["method"]
        )
        self.model_tokens = counter(
            "warroom_model_tokens",
            "Tokens of the VP agent's model calls, by model and kind (input, output, "
            "cache_read_input, cache_creation_input).",
            ["model", "kind"],
        )
        self.drafts = counter(
            "warroom_drafts",
            "Drafts the VP agent finished, by kind (customer_update, review, answer) and by "
            "who wrote them (model, offline).",
            ["kind", "by"],
        )
        self.room_seconds = Histogram(
            "warroom_room_ready_seconds",
            "Seconds from a declaration's ack until its war room is complete.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
