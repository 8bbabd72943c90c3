"""Zendesk's Support API as a `Desk`: tickets, their requesters and organisations, agents by
email, the organisation's ticket count, and a public comment added to a ticket.

Authenticated with an API token (`{email}/token:{token}`, Basic). Every call has a timeout;
a 429 is waited out for its `Retry-After` when that is short (`max_wait`), a 5xx or a timeout
on a read is tried again a bounded number of times; past those the call raises
`DeskUnavailable`. A write is never sent twice here: a write whose answer is lost raises
`Unsure`, and its caller looks at the ticket before trying again (see `letters.py`).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx2

from bot.desk.desk import (
    DeskError,
    DeskRefused,
    DeskUnavailable,
    Person,
    Ticket,
    TicketGone,
    Unsure,
)

log = logging.getLogger(__name__)

# Seconds: connecting, and each read or write on the socket.
TIMEOUT = httpx2.Timeout(10.0, connect=3.0, pool=3.0)
# A Retry-After longer than this is not waited out: the call fails and is tried later.
MAX_WAIT = 10.0
# Reads are tried this many times in all on a 5xx, a timeout or no connection.
READ_TRIES = 3


class ZendeskDesk:
    name = "Zendesk"

    def __init__(
        self,
        account_url: str,
        email: str,
        token: str,
        *,
        api_url: str | None = None,
        timeout: httpx2.Timeout = TIMEOUT,
        max_wait: float = MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`account_url` is https://{subdomain}.zendesk.com, the address of the links agents
        open; `api_url` where the API is called, when not there (a proxy, the tests)."""
        self.account_url = account_url.rstrip("/")
        self.max_wait = max_wait
        self.sleep = sleep
        self.client = httpx2.Client(
            base_url=(api_url or account_url).rstrip("/"),
            auth=httpx2.BasicAuth(f"{email}/token", token),
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "warroom"},
        )

    def close(self) -> None:
        self.client.close()

    # --- reads --------------------------------------------------------------------------

    def ticket_url(self, ticket_id: int) -> str:
        return f"{self.account_url}/agent/tickets/{ticket_id}"

    def ticket(self, ticket_id: int) -> Ticket:
        raw = self._get(f"/api/v2/tickets/{ticket_id}.json", what=f"ticket {ticket_id}")["ticket"]
        tags = tuple(str(t) for t in raw.get("tags") or ())
        if raw.get("status") == "closed" and "closed_by_merge" in tags:
            raise TicketGone(f"Ticket {ticket_id} was merged into another ticket.", merged=True)
        requester = None
        if raw.get("requester_id"):
            requester = self._person(int(raw["requester_id"]))
        org_id = raw.get("organization_id")
        org_name = None
        if org_id:
            try:
                org = self._get(f"/api/v2/organizations/{int(org_id)}.json", what="an organisation")
                org_name = str(org["organization"].get("name") or "")
            except DeskRefused:  # deleted since; the ticket still names its id
                org_name = None
        return Ticket(
            id=int(raw["id"]),
            url=self.ticket_url(int(raw["id"])),
            subject=str(raw.get("subject") or raw.get("raw_subject") or ""),
            status=str(raw.get("status") or ""),
            priority=raw.get("priority"),
            tags=tags,
            requester=requester,
            organization_id=int(org_id) if org_id else None,
            organization=org_name,
            created_at=_when(raw.get("created_at")),
        )

    def has_tag(self, ticket_id: int, tag: str) -> bool:
        raw = self._get(f"/api/v2/tickets/{ticket_id}.json", what=f"ticket {ticket_id}")
        return tag in (raw["ticket"].get("tags") or ())

    def agent_by_email(self, email: str) -> Person | None:
        found = self._get(
            "/api/v2/users/search.json", params={"query": f"email:{email}"}, what="an agent"
        )
        for user in found.get("users") or ():
            person = _person(user)
            if person.staff and person.email.lower() == email.lower():
                return person
        return None

    def count_since(self, organization_id: int, since: datetime) -> int:
        found = self._get(
            "/api/v2/search/count.json",
            params={"query": _org_query(organization_id, since)},
            what="the organisation's tickets",
        )
        return int(found.get("count") or 0)

    def search_url(self, organization_id: int, since: datetime) -> str:
        query = urllib.parse.quote(_org_query(organization_id, since))
        return f"{self.account_url}/agent/search/1?type=ticket&q={query}"

    def _person(self, user_id: int) -> Person:
        return _person(self._get(f"/api/v2/users/{user_id}.json", what="a person")["user"])

    # --- the write ----------------------------------------------------------------------

    def add_public_comment(
        self, ticket_id: int, body: str, *, author_id: int, status: str | None, tags: list[str]
    ) -> int:
        change: dict[str, Any] = {
            "comment": {"body": body, "public": True, "author_id": author_id},
            "additional_tags": tags,
        }
        if status:
            change["status"] = status
        answer = self._call(
            "PUT",
            f"/api/v2/tickets/{ticket_id}.json",
            what=f"ticket {ticket_id}",
            json={"ticket": change},
            tries=1,
        )
        events = (answer.get("audit") or {}).get("events") or ()
        return next((int(e["id"]) for e in events if e.get("type") == "Comment"), 0)

    def set_status(self, ticket_id: int, status: str) -> None:
        # The same however often it is sent: a lost answer may be sent again.
        self._call(
            "PUT",
            f"/api/v2/tickets/{ticket_id}.json",
            what=f"ticket {ticket_id}",
            json={"ticket": {"status": status}},
            tries=1,
        )

    # --- the wire -----------------------------------------------------------------------

    def _get(self, path: str, *, what: str, params: dict[str, str] | None = None) -> Any:
        return self._call("GET", path, what=what, params=params, tries=READ_TRIES)

    def _call(self, method: str, path: str, *, what: str, tries: int, **kwargs: Any) -> Any:
        """The JSON answer, or a DeskError. Only reads are tried more than once on a fault
        (`tries`); a 429 is waited out either way, since nothing was done."""
        write = method != "GET"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx2.TimeoutException:
                if write:
                    raise Unsure(f"Zendesk did not answer in time about {what}.") from None
                if attempt < tries:
                    continue
                raise DeskUnavailable(f"Zendesk did not answer in time about {what}.") from None
            except httpx2.TransportError as e:
                # Nothing was sent when the connection could not be made; after that, maybe.
                if write and not isinstance(e, httpx2.ConnectError):
                    raise Unsure(f"Zendesk's answer about {what} was lost.") from None
                if attempt < tries:
                    self.sleep(0.5 * attempt)
                    continue
                raise DeskUnavailable(f"Zendesk cannot be reached ({what}).") from None
            status = response.status_code
            if status == 429:
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait <= self.max_wait and attempt < max(tries, 3):
                    log.info("Zendesk rate-limited a call; waiting %.0f s", wait)
                    self.sleep(wait)
                    continue
                raise DeskUnavailable(f"Zendesk is rate-limiting us ({what}); trying later.")
            if status >= 500:
                if write:
                    raise Unsure(f"Zendesk failed ({status}) on {what}.")
                if attempt < tries:
                    self.sleep(0.5 * attempt)
                    continue
                raise DeskUnavailable(f"Zendesk failed ({status}) on {what}.")
            if status == 404:
                if what.startswith("ticket "):
                    raise TicketGone(f"Zendesk has no {what}: it was deleted or never existed.")
                raise DeskRefused(f"Zendesk has no {what}.")
            if status in (401, 403):
                raise DeskRefused(
                    f"Zendesk refused our credentials ({status}) on {what}: check "
                    "WARROOM_ZENDESK_EMAIL and WARROOM_ZENDESK_TOKEN."
                )
            if status == 422:
                raise DeskRefused(f"Zendesk refused the change to {what} (it may be closed).")
            if status >= 400:
                raise DeskRefused(f"Zendesk refused the call ({status}) on {what}.")
            try:
                return response.json()
            except ValueError:
                raise DeskError(f"Zendesk answered {what} with something unreadable.") from None


def _org_query(organization_id: int, since: datetime) -> str:
    at = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"type:ticket organization:{organization_id} created>{at}"


def _person(raw: dict[str, Any]) -> Person:
    org = raw.get("organization_id")
    return Person(
        id=int(raw["id"]),
        name=str(raw.get("name") or ""),
        email=str(raw.get("email") or ""),
        staff=raw.get("role") in ("agent", "admin"),
        organization_id=int(org) if org else None,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
