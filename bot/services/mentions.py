"""What `@vp ...` in a channel asks for, and the answer: one dispatcher for every command.

Outside a war room the bot says what it is for; inside, each command goes to the service that
owns it. Drafts stream their own messages, so for them there is no text to post.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.errors import InvalidInput, NotAWarRoom, Unavailable
from bot.domain.facts import FactKind, Impact
from bot.domain.tickets import ticket_command
from bot.services.drafting import DraftDesk
from bot.services.escalations import Escalations
from bot.services.room import RoomChanges
from bot.services.tickets import TicketLinks
from bot.slack import blocks
from bot.slack.mentions import Mention, duration_option
from bot.slack.parse import parse_user_mention
from bot.slack.text import inert, mention, slack_time
from bot.store import Store


@dataclass
class Mentions:
    store: Store
    escalations: Escalations
    room: RoomChanges
    desk: DraftDesk
    # The support desk's tickets; None when no desk is configured.
    tickets: TicketLinks | None = None

    def first_delivery(self, event_id: str) -> bool:
        """False for an event Slack already delivered (it retries what it thinks we missed)."""
        return not event_id or self.store.first_delivery(event_id)

    def may_tell_bot(self, bot: str) -> bool:
        """Whether a refusal may be posted for `bot` now. A bot sees no ephemeral message, so
        its refusals go in its thread, but one a minute at most: a bot caught in a loop must
        not fill the room with them, nor use up Slack's posting rate for the channel."""
        try:
            return self.store.take_turn(f"told:{bot}", 1, 60)
        except Unavailable:
            return False

    def answer(self, channel: str, user: str, thread: str, said: Mention) -> str | None:
        """The reply to post in the thread, or None when the work posted its own."""
        if not self.escalations.is_war_room(channel):
            # Told to the person alone: a channel that is no war room may be one shared with
            # a customer, and whatever the bot posts there, the customer reads.
            raise NotAWarRoom(blocks.OUTSIDE)
        argument = said.argument
        match said.command:
            case "status":
                return self.room.status(channel)
            case "timeline":
                return self.room.timeline(channel)
            case "done":
                return self._done(channel, user, argument)
            case "update":
                esc = self.room.record_update(channel, user, argument)
                due = self.escalations.next_update_due(esc)
                nxt = f" Next update due {slack_time(due)}." if due else ""
                return f"📝 Update recorded (internal: the customer is told the facts).{nxt}"
            case "impact" | "workaround" | "doing" | "eta" | "advice" | "fixed":
                return self._fact(channel, user, FactKind(said.command), argument)
            case "cause":
                return self._cause(channel, user, argument)
            case "action":
                return self._action(channel, user, said)
            case "resolve":
                esc = self.room.resolve(channel, user, argument)
                fixed = (
                    ""
                    if esc.facts.fixed
                    else " For the resolution notice, say what fixed it in the customer's "
                    "terms: `@vp fixed <text>`."
                )
                return f"✅ Resolved. Follow-ups are scheduled; {mention(esc.ic)} owns them.{fixed}"
            case "ic":
                new_ic = parse_user_mention(said.head)
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
            case "ticket":
                if self.tickets is None:
                    return (
                        "No support desk is set up: linking tickets needs WARROOM_ZENDESK_URL, "
                        "WARROOM_ZENDESK_EMAIL and WARROOM_ZENDESK_TOKEN."
                    )
                remove, refs = ticket_command(argument)
                if remove:
                    return self.tickets.unlink(channel, user, refs)
                return self.tickets.link(channel, user, refs)
            case "help":
                return blocks.HELP
            case _:
                if not said.text:
                    return blocks.HELP
                self.desk.answer(channel, user, said.text, thread_ts=thread)
                return None

    def _done(self, channel: str, user: str, argument: str) -> str:
        what = argument.split()[0].strip("`") if argument else ""
        if not what:
            raise InvalidInput("Say which step or action item: `done <step-id>`, `done A1`.")
        if ACTION_ID.fullmatch(what):
            changed = self.room.complete_action(channel, user, what)
            return (
                f"✅ `{what.upper()}` done." if changed else f"`{what.upper()}` was already done."
            )
        _, changed = self.room.mark_done(channel, what, user)
        return f"✅ `{what}` marked done." if changed else f"`{what}` was already done."

    def _fact(self, channel: str, user: str, kind: FactKind, argument: str) -> str:
        text, since = duration_option(argument, "since")
        first, _, rest = text.strip().partition(" ")
        if kind is FactKind.IMPACT and first.lower() == "ended":
            esc = self.room.end_impact(channel, user, since, rest.strip())
            ended = esc.facts.impact.ended if esc.facts.impact else None
            when = f" at {slack_time(ended)}" if ended else ""
            return (
                f"✅ Recorded: the impact ended{when}. Letters now say so, in the past tense. "
                "Wrong time? `impact ended --since 30m` or `impact ended 15:05`."
            )
        esc = self.room.record_fact(channel, user, kind, text, since)
        if kind is FactKind.WORKAROUND and esc.facts.no_workaround:
            return "✅ Recorded: there is no workaround. Letters say so instead of asking for one."
        if kind is FactKind.IMPACT and esc.facts.impact is not None:
            return _impact_recorded(esc.facts.impact)
        return f"✅ Recorded what the customer may be told ({_FACT_NAMES[kind]})."

    def _cause(self, channel: str, user: str, argument: str) -> str:
        first, _, rest = argument.partition(" ")
        if first.lower() == "confirmed":
            esc = self.room.confirm_cause(channel, user, rest)
            cause = esc.facts.confirmed_cause
            told = inert(cause.text) if cause else ""
            return f"✅ Cause confirmed: {told}. Customer updates may now state it."
        self.room.suspect_cause(channel, user, argument)
        return (
            "📝 Cause noted as suspected: internal until the IC or a VP confirms it "
            "(`cause confirmed`)."
        )

    def _action(self, channel: str, user: str, said: Mention) -> str:
        """`action @owner what is to be done [--due 3d]`."""
        # The owner is the first word as Slack sent it (a mention whole, however many words
        # its name has); the text is what follows it, never a split of the name as read.
        owner = parse_user_mention(said.head)
        text, due = duration_option(said.tail, "due")
        # `--prevention`: taken on so it does not happen again (the resolution notice says so).
        text, marked = _PREVENTION.subn(" ", text)
        esc = self.room.add_action(channel, user, owner, text.strip(), due, prevention=bool(marked))
        item = esc.actions[-1]
        when = f", due {slack_time(item.due_at)}" if item.due_at else ""
        return f"📌 Action item `{item.id}` for {mention(owner)}{when}."


_FACT_NAMES = {
    FactKind.IMPACT: "the impact",
    FactKind.WORKAROUND: "the workaround",
    FactKind.DOING: "what we are doing",
    FactKind.ETA: "the ETA",
    FactKind.ADVICE: "what the customer should do",
    FactKind.FIXED: "what fixed it",
}

_BEGAN = {
    "since": "as you gave it with `--since`",
    "text": "read from the time in your text, in the account's time zone",
    "declared": "the declaration, since no start was given",
}


def _impact_recorded(impact: Impact) -> str:
    """The start shown back, so the person can confirm it or correct it."""
    said = (
        f"✅ Recorded what the customer may be told (the impact). It began "
        f"{slack_time(impact.began)} "
        f"({_BEGAN.get(impact.began_from, '')}): letters give this one start. "
    )
    if impact.stated_began is not None:
        return said + (
            f"⚠️ Your text says {slack_time(impact.stated_began)}, which disagrees: record it "
            "again with the right time."
        )
    return said + "Wrong? Record it again with `--since 2h`."


_PREVENTION = re.compile(r"(?:^|\s)--prevention(?=\s|$)")
ACTION_ID = re.compile(r"[Aa][0-9]+")
