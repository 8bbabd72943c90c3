"""Reading the declaration form's submitted values (pure).

Slack does not escape what people type into a form, so values are taken as they are. The
rules a declaration must meet are `bot.domain.declaration`'s, the same as for the slash
command. Returns the declaration, or the errors to show beside each field (Slack's
`response_action: errors`), so a bad form is corrected in place and nothing is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bot.domain.declaration import Declaration, check_criteria, check_customer, check_summary
from bot.domain.errors import InvalidInput
from bot.domain.tickets import parse_ticket_refs
from bot.slack.ids import VALUE, BlockId
from bot.slack.parse import parse_amount

T = TypeVar("T")


def _element(values: dict[str, Any], block: BlockId) -> dict[str, Any]:
    return (values.get(block) or {}).get(VALUE) or {}


def read_form(
    values: dict[str, Any], declarer: str, known_criteria: tuple[str, ...]
) -> Declaration | dict[str, str]:
    errors: dict[str, str] = {}

    def field(block: BlockId, check: Callable[[], T], empty: T) -> T:
        try:
            return check()
        except InvalidInput as e:
            errors[block] = e.message
            return empty

    customer = field(
        BlockId.CUSTOMER,
        lambda: check_customer(_element(values, BlockId.CUSTOMER).get("value") or ""),
        "",
    )
    summary = field(
        BlockId.SUMMARY,
        lambda: check_summary(_element(values, BlockId.SUMMARY).get("value") or ""),
        "",
    )
    arr_text = (_element(values, BlockId.ARR).get("value") or "").strip()
    arr = field(BlockId.ARR, lambda: parse_amount(arr_text), None) if arr_text else None
    chosen = [
        str(o.get("value"))
        for o in _element(values, BlockId.CRITERIA).get("selected_options") or ()
    ]
    criteria = field(BlockId.CRITERIA, lambda: check_criteria(chosen, known_criteria), ())
    ic = _element(values, BlockId.IC).get("selected_user") or None
    private = bool(_element(values, BlockId.PRIVATE).get("selected_options"))
    tickets_text = (_element(values, BlockId.TICKETS).get("value") or "").strip()
    tickets = (
        field(BlockId.TICKETS, lambda: parse_ticket_refs(tickets_text), ()) if tickets_text else ()
    )
    if errors:
        return errors
    return Declaration(
        customer=customer,
        summary=summary,
        declarer=declarer,
        arr=arr,
        ic=ic,
        criteria=criteria,
        private=private,
        tickets=tickets,
    )
