"""What `@vp ...` in a channel asks for, and the answer: one dispatcher for every command.

Outside a war room the bot says what it is for; inside, each command goes to the service that
owns it. Drafts stream their own messages, so for them there is no text to post.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import InvalidInput
from bot.services.drafting import DraftDesk
from bot.services.escalations import Escalations
from bot.services.room import RoomChanges
from bot.slack import blocks
from bot.slack.mentions import Mention
from bot.slack.parse import parse_user_mention
from bot.slack.text import slack_time
from bot.store import Store


@dataclass
class Mentions:
    store: Store
    escalations: Escalations
    room: RoomChanges
    desk: DraftDesk

    def first_delivery(self, event_id: str) -> bool:
        """False for an event Slack already delivered (it retries what it thinks we missed)."""
        return not event_id or self.store.first_delivery(event_id)

    def answer(self, channel: str, user: str, thread: str, mention: Mention) -> str | None:
        """The reply to post in the thread, or None when the work posted its own."""
        if not self.escalations.is_war_room(channel):
            return blocks.OUTSIDE
        argument = mention.argument
        match mention.command:
            case "status":
                return self.room.status(channel)
            case "timeline":
                return self.room.timeline(channel)
            case "done":
                step = argument.split()[0].strip("`") if argument else ""
                if not step:
                    raise InvalidInput("Say which step: `done <step-id>`.")
                _, changed = self.room.mark_done(channel, step, user)
                return f"✅ `{step}` marked done." if changed else f"`{step}` was already done."
            case "update":
                esc = self.room.record_update(channel, user, argument)
                due = self.escalations.next_update_due(esc)
                nxt = f" Next update due {slack_time(due)}." if due else ""
                return f"📝 Update recorded.{nxt}"
            case "resolve":
                esc = self.room.resolve(channel, user, argument)
                return f"✅ Resolved. Follow-ups are scheduled; {mention(esc.ic)} owns them."
            case "ic":
                wire = mention.wire_argument
                new_ic = parse_user_mention(wire.split()[0] if wire else "")
                esc = self.room.reassign_ic(channel, user, new_ic)
                return f"{mention(esc.ic)} is now the incident commander."
            case "draft":
                if not argument.lower().startswith("update"):
                    raise InvalidInput("Did you mean `draft update`?")
                self.desk.draft_update(channel, user, thread_ts=thread)
                return None
            case "review":
                self.desk.review(channel, user, thread_ts=thread)
                return None
            case "help":
                return blocks.HELP
            case _:
                if not mention.text:
                    return blocks.HELP
                self.desk.answer(channel, user, mention.text, thread_ts=thread)
                return None
