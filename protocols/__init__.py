"""Escalation protocols as data: the schema, the loader, and the packaged Tier 4 protocol."""

from protocols.loader import DEFAULT_PROTOCOL, ProtocolError, check, describe, load_protocol
from protocols.schema import Criterion, Duration, Protocol, Step, UnknownId

__all__ = [
    "DEFAULT_PROTOCOL",
    "Criterion",
    "Duration",
    "Protocol",
    "ProtocolError",
    "Step",
    "UnknownId",
    "check",
    "describe",
    "load_protocol",
]
