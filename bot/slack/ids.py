"""Every action, block and callback id the app puts into Slack, in one place."""

from enum import StrEnum


class ActionId(StrEnum):
    STEP_DONE = "step_done"  # button value: the step id; the channel finds the escalation
    DRAFT_APPROVE = "draft_approve"  # button value: the draft id (state lives in Redis)
    DRAFT_EDIT = "draft_edit"
    DRAFT_REGENERATE = "draft_regenerate"
    DRAFT_SEND = "draft_send"  # button value: the draft id and version; sends the approved letter
    FACTS_FORM = "facts_form"  # button value: the escalation id; opens the facts form


class CallbackId(StrEnum):
    DECLARE_FORM = "declare_form"
    EDIT_DRAFT = "edit_draft"  # private_metadata: the draft id and the version it opened
    FACTS_FORM = "facts_form"  # private_metadata: the war room's channel id


class BlockId(StrEnum):
    # Inputs of the declaration form; each block holds one element with action_id "value".
    CUSTOMER = "customer"
    SUMMARY = "summary"
    ARR = "arr"
    CRITERIA = "criteria"
    IC = "ic"
    PRIVATE = "private"
    TICKETS = "tickets"
    DRAFT_TEXT = "draft_text"


VALUE = "value"  # action_id of the single element inside each form block
STEP_BLOCK_PREFIX = "step:"  # block_id of each protocol step's section in the brief
