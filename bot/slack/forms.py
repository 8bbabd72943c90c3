"""Reading the declaration form's submitted values (pure).

Slack does not escape what people type into a form, so values are taken as they are.
Returns the declaration, or the errors to show beside each field (Slack's
`response_action: errors`), so a bad form is corrected in place and nothing is created.
"""

from __future__ import annotations

from typing import Any

from bot.domain.errors import InvalidInput
from bot.domain.escalation import Declaration
from bot.slack.ids import VALUE, BlockId
from bot.slack.parse import parse_amount


def _element(values: dict[str, Any], block: BlockId) -> dict[str, Any]:
    return (values.get(block) or {}).get(VALUE) or {}


def read_form(
    values: dict[str, Any], declarer: str, known_criteria: tuple[str, ...]
) -> Declaration | dict[str, str]:
    errors: dict[str, str] = {}
    customer = (_element(values, BlockId.CUSTOMER).get("value") or "").strip()
    summary = (_element(values, BlockId.SUMMARY).get("value") or "").strip()
    if not customer:
        errors[BlockId.CUSTOMER] = "Name the customer."
    elif len(customer) > 80:
        errors[BlockId.CUSTOMER] = "Keep the customer name to 80 characters."
    if not summary:
        errors[BlockId.SUMMARY] = "Say in a sentence what is happening."
    arr_text = (_element(values, BlockId.ARR).get("value") or "").strip()
    arr = None
    if arr_text:
        try:
            arr = parse_amount(arr_text)
        except InvalidInput as e:
            errors[BlockId.ARR] = e.message
    chosen = [
        o.get("value") for o in _element(values, BlockId.CRITERIA).get("selected_options") or ()
    ]
    unknown = [c for c in chosen if c not in known_criteria]
    if unknown:
        errors[BlockId.CRITERIA] = f"Unknown criteria: {', '.join(map(str, unknown))}."
    ic = _element(values, BlockId.IC).get("selected_user") or None
    private = bool(_element(values, BlockId.PRIVATE).get("selected_options"))
    if errors:
        return errors
    return Declaration(
        customer=customer,
        summary=summary,
        declarer=declarer,
        arr=arr,
        ic=ic,
        criteria=tuple(str(c) for c in chosen),
        private=private,
    )
