"""Who may do what in an escalation: the roles a person holds in it, and the refusal wording.

Pure. Roles are `ic` (the incident commander), `vp` (a VP on record) and `declarer` (who
opened it); `authorized_roles` in warroom.yaml says which of them may take decisive actions.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.errors import NotAllowed
from bot.domain.escalation import Escalation

ROLES = ("ic", "vp", "declarer")
_ROLE_NAMES = {"ic": "the incident commander", "vp": "a VP", "declarer": "the declarer"}


def roles_of(esc: Escalation, user: str) -> set[str]:
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
    names = [_ROLE_NAMES[r] for r in roles]
    if len(names) <= 1:
        return "".join(names) or "nobody"
    return ", ".join(names[:-1]) + " or " + names[-1]


def authorize(esc: Escalation, user: str, roles: Iterable[str], what: str) -> None:
    """Raise NotAllowed, with a message for the person, unless `user` holds one of `roles`."""
    roles = tuple(roles)
    if not may_act(esc, user, roles):
        raise NotAllowed(f"Sorry — only {who(roles)} may {what}. Nothing was changed.")
