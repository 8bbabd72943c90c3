"""A Zendesk account on 127.0.0.1: the Support API endpoints warroom calls, with Zendesk's JSON
shapes, its API-token authentication, its errors and rate limits; and Zendesk's side of a
webhook (signed `zen:event-type:ticket.comment_added` events sent to a URL).

Endpoints: GET `/api/v2/tickets/{id}.json`, PUT the same (a comment, a status,
`additional_tags`), GET `/api/v2/tickets/{id}/comments.json`, GET `/api/v2/users/{id}.json`,
GET `/api/v2/users/search.json?query=email:...`, GET `/api/v2/organizations/{id}.json`, GET
`/api/v2/search/count.json?query=type:ticket organization:N created>ISO`. Authentication is
Basic `{email}/token:{token}`; anything else is answered 401. A deleted ticket is 404
`RecordNotFound`; a ticket merged into another is closed and tagged `closed_by_merge` (as
Zendesk does), and an update to a closed ticket is refused 422. Faults are queued with
`fault()` (a status, `Retry-After`, a delay, or an update that lands but whose answer is lost).

Zendesk honours an `Idempotency-Key` only when a ticket is created; an update that carries one
is applied again, as the real API does, so a client must make its own updates safe to repeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback.server import LoopbackServer, http_request, send_bytes

COMMENT_ADDED = "zen:event-type:ticket.comment_added"


@dataclass
class Fault:
    """What the next matching request gets instead of an answer (or before it)."""

    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0  # seconds before answering (a slow Zendesk)
    method: str | None = None  # only requests with this method; None: any
    path: str | None = None  # only paths containing this; None: any
    times: int = 1
    # The request is carried out, then answered with `status`: an update that landed whose
    # answer never came back.
    apply: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class _Account:
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)


_TICKET = re.compile(r"^/api/v2/tickets/(\d+)(?:\.json)?$")
_COMMENTS = re.compile(r"^/api/v2/tickets/(\d+)/comments(?:\.json)?$")
_USER = re.compile(r"^/api/v2/users/(\d+)(?:\.json)?$")
_ORG = re.compile(r"^/api/v2/organizations/(\d+)(?:\.json)?$")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ZendeskLoopback(LoopbackServer):
    """One Zendesk account (subdomain `acme` by default), its API agent and token."""

    name = "Zendesk"
    http_methods = ("GET", "PUT", "POST")
    keep_alive = True

    def __init__(
        self,
        email: str = "api@acme.example",
        token: str = "zd-token-0123456789",
        subdomain: str = "acme",
    ) -> None:
        super().__init__()
        self.email = email
        self.token = token
        self.subdomain = subdomain
        self.account = _Account()
        self.requests: list[Seen] = []
        # Called after a comment is added (by the API or `add_comment`) or a ticket updated
        # by the API: a page showing the account hears of it. It must not call back in.
        self.on_change: Callable[[], None] | None = None
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1001)
        self.api_user = self.add_user("Warroom API", email, role="admin")

    # --- the account ------------------------------------------------------------------

    @property
    def account_url(self) -> str:
        """The account's address as people know it (links shown to agents)."""
        return f"https://{self.subdomain}.zendesk.com"

    def _next(self) -> int:
        return next(self._ids)

    def add_organization(self, name: str) -> int:
        with self._lock:
            org_id = self._next()
            self.account.organizations[org_id] = {
                "id": org_id,
                "url": f"{self.root}/api/v2/organizations/{org_id}.json",
                "name": name,
                "domain_names": [],
                "tags": [],
                "created_at": _iso(datetime.now(UTC)),
            }
            return org_id

    def add_user(
        self,
        name: str,
        email: str,
        *,
        role: str = "end-user",
        organization_id: int | None = None,
    ) -> int:
        """A person: `end-user` (a customer), `agent` or `admin` (staff)."""
        with self._lock:
            user_id = self._next()
            self.account.users[user_id] = {
                "id": user_id,
                "url": f"{self.root}/api/v2/users/{user_id}.json",
                "name": name,
                "email": email,
                "role": role,
                "organization_id": organization_id,
                "active": True,
                "suspended": False,
            }
            return user_id

    def add_ticket(
        self,
        subject: str,
        requester_id: int,
        *,
        priority: str | None = "high",
        status: str = "open",
        tags: tuple[str, ...] = (),
        created_at: datetime | None = None,
        description: str = "",
    ) -> int:
        with self._lock:
            ticket_id = self._next()
            requester = self.account.users[requester_id]
            at = _iso(created_at or datetime.now(UTC))
            self.account.tickets[ticket_id] = {
                "id": ticket_id,
                "url": f"{self.root}/api/v2/tickets/{ticket_id}.json",
                "subject": subject,
                "raw_subject": subject,
                "description": description or subject,
                "priority": priority,
                "status": status,
                "type": "incident",
                "requester_id": requester_id,
                "submitter_id": requester_id,
                "assignee_id": None,
                "organization_id": requester.get("organization_id"),
                "tags": list(tags),
                "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": at,
                "updated_at": at,
            }
            self.account.comments[ticket_id] = []
            if description:
                self.add_comment(ticket_id, requester_id, description, notify=False)
            return ticket_id

    def add_comment(
        self, ticket_id: int, author_id: int, body: str, *, public: bool = True, notify: bool = True
    ) -> int:
        """A comment on the ticket, as if typed in Zendesk; its id."""
        del notify  # what a webhook would carry is sent with `send_comment_event`
        with self._lock:
            comment_id = self._next()
            self.account.comments[ticket_id].append(
                {
                    "id": comment_id,
                    "type": "Comment",
                    "author_id": author_id,
                    "body": body,
                    "html_body": f"<p>{body}</p>",
                    "plain_body": body,
                    "public": public,
                    "created_at": _iso(datetime.now(UTC)),
                }
            )
        self._changed()
        return comment_id

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.account.tickets[ticket_id]))

    def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.account.comments.get(ticket_id, [])]

    def delete(self, ticket_id: int) -> None:
        with self._lock:
            self.account.deleted.add(ticket_id)

    def merge(self, source: int, target: int) -> None:
        """Merge `source` into `target`: Zendesk closes the source with a note and a tag."""
        with self._lock:
            ticket = self.account.tickets[source]
            ticket["status"] = "closed"
            ticket["tags"] = [*ticket["tags"], "closed_by_merge"]
            self.account.comments[source].append(
                {
                    "id": self._next(),
                    "type": "Comment",
                    "author_id": self.api_user,
                    "body": f"This request was closed and merged into request #{target}.",
                    "public": False,
                    "created_at": _iso(datetime.now(UTC)),
                    "via": {"channel": "web", "source": {"rel": "merge"}},
                }
            )

    def fault(self, **kwargs: Any) -> Fault:
        """Queue a fault (see `Fault`): `fault(status=429, retry_after=2)`."""
        fault = Fault(**kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def seen(self, method: str | None = None, path: str = "") -> list[Seen]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and path in r.path
            ]

    # --- the webhook, Zendesk's side ----------------------------------------------------

    def comment_event(self, ticket_id: int, comment_id: int) -> bytes:
        """The body Zendesk sends a webhook subscribed to `ticket.comment_added`."""
        with self._lock:
            ticket = self.account.tickets[ticket_id]
            comment = next(c for c in self.account.comments[ticket_id] if c["id"] == comment_id)
            author = self.account.users[comment["author_id"]]
        payload = {
            "type": COMMENT_ADDED,
            "account_id": 1234567,
            "id": str(uuid.uuid4()),
            "time": _iso(datetime.now(UTC)),
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket_id}",
            "detail": {
                "id": str(ticket_id),
                "actor_id": str(author["id"]),
                "requester_id": str(ticket["requester_id"]),
                "organization_id": str(ticket["organization_id"] or ""),
                "subject": ticket["subject"],
                "status": str(ticket["status"]).upper(),
                "priority": str(ticket["priority"] or "").upper(),
                "is_public": True,
                "tags": ticket["tags"],
                "via": {"channel": "email"},
                "created_at": ticket["created_at"],
                "updated_at": ticket["updated_at"],
            },
            "event": {
                "comment": {
                    "id": str(comment_id),
                    "body": comment["body"],
                    "is_public": comment["public"],
                    "author": {
                        "id": str(author["id"]),
                        "name": author["name"],
                        "is_staff": author["role"] != "end-user",
                    },
                }
            },
        }
        return json.dumps(payload).encode()

    @staticmethod
    def signed_headers(body: bytes, secret: str, timestamp: str | None = None) -> dict[str, str]:
        """The headers Zendesk signs a webhook with: base64(HMAC-SHA256(timestamp + body))."""
        stamp = timestamp or _iso(datetime.now(UTC))
        digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        return {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Id": "01HWEBHOOK0000000000000000",
        }

    def send_comment_event(
        self,
        url: str,
        ticket_id: int,
        comment_id: int,
        secret: str,
        *,
        timestamp: str | None = None,
    ) -> tuple[int, bytes]:
        """POST the signed event for a comment to `url`: the answer's status and body."""
        body = self.comment_event(ticket_id, comment_id)
        status, answer, _ = http_request(
            url, body, self.signed_headers(body, secret, timestamp), timeout=10
        )
        return status, answer

    # --- the API ------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(parts.query)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self._lock:
            self.requests.append(
                Seen(request.command, parts.path, query, body, dict(request.headers.items()))
            )
        if not self._authenticated(request.headers.get("Authorization", "")):
            self._json(request, 401, {"error": "Couldn't authenticate you"})
            return
        fault = self._take_fault(request.command, parts.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.apply:
                self._answer(request.command, parts.path, query, body)
            if fault.status < 400:
                status, answer, headers = self._answer(request.command, parts.path, query, body)
                self._json(request, status, answer, headers)
                return
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            answer = (
                {"error": "APIRateLimitExceeded", "description": "Rate limit exceeded"}
                if fault.status == 429
                else {"error": "ServerError", "description": "Internal server error"}
            )
            self._json(request, fault.status, answer, headers)
            return
        status, answer, headers = self._answer(request.command, parts.path, query, body)
        self._json(request, status, answer, headers)
        if request.command == "PUT" and status < 300:
            self._changed()

    def _authenticated(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(given.strip(), validate=True).decode()
        except ValueError:
            return False
        return hmac.compare_digest(decoded, f"{self.email}/token:{self.token}")

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method == method) and (
                    fault.path is None or fault.path in path
                ):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            if m := _TICKET.match(path):
                ticket_id = int(m.group(1))
                if ticket_id in self.account.deleted or ticket_id not in self.account.tickets:
                    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}
                if method == "GET":
                    return 200, {"ticket": self.ticket(ticket_id)}, {}
                if method == "PUT":
                    return self._update(ticket_id, body)
            if (m := _COMMENTS.match(path)) and method == "GET":
                ticket_id = int(m.group(1))
                if ticket_id in self.account.deleted or ticket_id not in self.account.tickets:
                    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}
                comments = self.comments(ticket_id)
                return 200, {"comments": comments, "count": len(comments)}, {}
            if (m := _USER.match(path)) and method == "GET":
                user = self.account.users.get(int(m.group(1)))
                if user is None:
                    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}
                return 200, {"user": dict(user)}, {}
            if (m := _ORG.match(path)) and method == "GET":
                org = self.account.organizations.get(int(m.group(1)))
                if org is None:
                    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}
                return 200, {"organization": dict(org)}, {}
            if path in ("/api/v2/users/search.json", "/api/v2/users/search") and method == "GET":
                text = (query.get("query") or [""])[0]
                email = text.removeprefix("email:").strip().lower()
                users = [
                    dict(u) for u in self.account.users.values() if u["email"].lower() == email
                ]
                return 200, {"users": users, "count": len(users), "next_page": None}, {}
            if path in ("/api/v2/search/count.json", "/api/v2/search/count") and method == "GET":
                return 200, {"count": self._count((query.get("query") or [""])[0])}, {}
        return 404, {"error": "InvalidEndpoint", "description": "Not found"}, {}

    def _update(self, ticket_id: int, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        ticket = self.account.tickets[ticket_id]
        if ticket["status"] == "closed":
            return (
                422,
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {
                        "status": [{"description": "Status: closed prevents ticket update"}]
                    },
                },
                {},
            )
        change = (body or {}).get("ticket") if isinstance(body, dict) else None
        if not isinstance(change, dict):
            return 400, {"error": "InvalidValue", "description": "ticket is required"}, {}
        events: list[dict[str, Any]] = []
        comment = change.get("comment")
        if isinstance(comment, dict) and comment.get("body"):
            author = int(comment.get("author_id") or self.api_user)
            if author not in self.account.users:
                return 422, {"error": "RecordInvalid", "description": "author invalid"}, {}
            comment_id = self.add_comment(
                ticket_id, author, str(comment["body"]), public=bool(comment.get("public", True))
            )
            events.append(
                {
                    "id": comment_id,
                    "type": "Comment",
                    "author_id": author,
                    "body": comment["body"],
                    "public": bool(comment.get("public", True)),
                }
            )
        if change.get("status"):
            events.append(
                {"id": self._next(), "type": "Change", "field_name": "status",
                 "value": change["status"], "previous_value": ticket["status"]}
            )  # fmt: skip
            ticket["status"] = change["status"]
        for tag in change.get("additional_tags") or ():
            if tag not in ticket["tags"]:
                ticket["tags"].append(tag)
        ticket["updated_at"] = _iso(datetime.now(UTC))
        audit = {
            "id": self._next(),
            "ticket_id": ticket_id,
            "created_at": ticket["updated_at"],
            "author_id": self.api_user,
            "events": events,
        }
        return 200, {"ticket": self.ticket(ticket_id), "audit": audit}, {}

    def _count(self, text: str) -> int:
        """Tickets matching `type:ticket organization:N created>ISO` (the parts given)."""
        org = re.search(r"organization(?:_id)?:(\d+)", text)
        since = re.search(r"created>(\S+)", text)
        after = datetime.fromisoformat(since.group(1).replace("Z", "+00:00")) if since else None
        count = 0
        for ticket_id, ticket in self.account.tickets.items():
            if ticket_id in self.account.deleted:
                continue
            if org and ticket["organization_id"] != int(org.group(1)):
                continue
            created = datetime.fromisoformat(ticket["created_at"].replace("Z", "+00:00"))
            if after and created <= after:
                continue
            count += 1
        return count

    @staticmethod
    def _json(
        request: BaseHTTPRequestHandler,
        status: int,
        answer: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        send_bytes(
            request, status, json.dumps(answer).encode(), "application/json; charset=utf-8", headers
        )
