"""`@vp ...` in a war room: one app_mention listener; the work runs after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.errors import InvalidInput
from bot.drafting import DraftDesk
from bot.listeners.errors import guarded
from bot.service import EscalationService
from bot.slack import blocks
from bot.slack.mentions import parse_mention
from bot.slack.parse import parse_user_mention

_SKIP = "warroom_skip"


def register(app: App, service: EscalationService, desk: DraftDesk) -> None:
    def ack_mention(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        ack()
        # Slack redelivers events it thinks we missed: answer each event once.
        if not service.first_delivery(str(body.get("event_id") or "")):
            context[_SKIP] = True

    def answer(event: dict[str, Any], context: BoltContext) -> None:
        if context.get(_SKIP):
            return
        channel, user = event["channel"], event.get("user", "")
        thread = event.get("thread_ts") or event["ts"]

        def reply(text: str) -> None:
            service.gateway.post_text(channel, text, thread_ts=thread)

        def run() -> None:
            text = _dispatch(service, desk, channel, user, thread, event)
            if text:
                reply(text)

        guarded("answering", reply, run)

    app.event("app_mention")(ack=ack_mention, lazy=[answer])

    # The app subscribes to channel messages (for what comes next: the agent reading the room);
    # until then they are acknowledged, so Slack sees every delivery succeed.
    def ack_message(ack: Ack) -> None:
        ack()

    app.event("message")(ack_message)


def _dispatch(
    service: EscalationService,
    desk: DraftDesk,
    channel: str,
    user: str,
    thread: str,
    event: dict[str, Any],
) -> str | None:
    """The reply to post, or None when the work posted its own (drafts stream themselves)."""
    mention = parse_mention(event.get("text", ""))
    if service.store.by_channel(channel) is None:
        return blocks.OUTSIDE
    match mention.command:
        case "status":
            return service.status(channel)
        case "timeline":
            return service.timeline(channel)
        case "done":
            step = mention.argument.split()[0] if mention.argument else ""
            if not step:
                raise InvalidInput("Say which step: `done <step-id>`.")
            _, changed = service.mark_done(channel, step, user)
            return f"✅ `{step}` marked done." if changed else f"`{step}` was already done."
        case "update":
            due = service.next_update_due(service.record_update(channel, user, mention.argument))
            nxt = f" Next update due {blocks.slack_time(due)}." if due else ""
            return f"📝 Update recorded.{nxt}"
        case "resolve":
            esc = service.resolve(channel, user, mention.argument)
            return f"✅ Resolved. Follow-ups are scheduled; {blocks.mention(esc.ic)} owns them."
        case "ic":
            new_ic = parse_user_mention(mention.argument.split()[0] if mention.argument else "")
            esc = service.reassign_ic(channel, user, new_ic)
            return f"{blocks.mention(esc.ic)} is now the incident commander."
        case "draft":
            if not mention.argument.lower().startswith("update"):
                raise InvalidInput("Did you mean `draft update`?")
            desk.draft_update(channel, user, thread_ts=thread)
            return None
        case "review":
            desk.review(channel, user, thread_ts=thread)
            return None
        case "help":
            return blocks.HELP
        case _:
            if not mention.text:
                return blocks.HELP
            desk.answer(channel, user, mention.text, thread_ts=thread)
            return None
