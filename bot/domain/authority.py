"""Who may do what in an escalation: the roles a person holds in it, and the refusal wording.

Pure. Roles are `ic` (the incident commander), `vp` (a VP on record), `declarer` (who opened
it) and `room` (anyone in the war room's channel). Everyday actions (a step done, an update,
asking for or editing a draft) are for the roles in `everyday_roles` of warroom.yaml, the
room by default; decisive ones (handing over the IC, resolving, approving an update) for
those in `authorized_roles`, the IC, the VPs and the declarer by default.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.errors import NotAllowed
from bot.domain.escalation import Escalation

ROLES = ("ic", "vp", "declarer", "room")
_ROLE_NAMES = {"ic": "the incident commander", "vp": "a VP", "declarer": "the declarer"}


def roles_of(esc: Escalation, user: str) -> set[str]:
    """The roles `user` holds by the escalation's record (`room` is Slack's to say)."""
    held = set()
    if user == esc.ic:
        held.add("ic")
    if user in esc.vps:
        held.add("vp")
    if user == esc.declarer:
        held.add("declarer")
    return held


def may_act(esc: Escalation, user: str, roles: Iterable[str]) -> bool:
    """Whether `user` holds one of `roles` (ic, vp, declarer) in this escalation."""
    return bool(roles_of(esc, user) & set(roles))


def who(roles: Iterable[str]) -> str:
    """`the incident commander, a VP or the declarer`: the roles as a sentence says them."""
    roles = tuple(roles)
    if "room" in roles:
        return "the people in this war room"
    names = [_ROLE_NAMES[r] for r in roles]
    if len(names) <= 1:
        return "".join(names) or "nobody"
    return ", ".join(names[:-1]) + " or " + names[-1]


def check(held: Iterable[str], roles: Iterable[str], what: str) -> None:
    """Raise NotAllowed, with a message for the person, unless one of `held` is in `roles`."""
    roles = tuple(roles)
    if not set(held) & set(roles):
        raise NotAllowed(f"Sorry — only {who(roles)} may {what}. Nothing was changed.")
