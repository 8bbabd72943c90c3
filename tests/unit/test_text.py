"""People's text at the boundary with Slack: read once, made inert once, clipped whole (pure)."""

from __future__ import annotations

import pytest

from bot.slack.text import clip, inert, readable


@pytest.mark.parametrize(
    ("wire", "read"),
    [
        # Slack's escaping is undone once: what was typed is what is kept.
        ("AT&amp;T &lt;auth&gt; &amp;&amp; R&amp;D", "AT&T <auth> && R&D"),
        ("&amp;lt; stays as typed", "&lt; stays as typed"),
        # Typing `<!channel>` arrives escaped, and is kept as the text it was.
        ("&lt;!channel&gt; please", "<!channel> please"),
        # Entities become what the person saw.
        ("<!here> now", "@here now"),
        ("<!channel> and <!everyone>", "@channel and @everyone"),
        ("<!subteam^S0SEC|@security> look", "@security look"),
        ("<!subteam^S0SEC> look", "@S0SEC look"),
        ("ask <@U0DANA|dana>", "ask @dana"),
        ("in <#C0SUP|support>", "in #support"),
        # A link's label with the address beside it: no text passes for another address.
        ("see <https://evil.example/x|status page>", "see status page (https://evil.example/x)"),
        ("see <https://status.example.com>", "see https://status.example.com"),
        # What Slack linked itself shows as typed.
        ("<http://acme.com|acme.com> down", "acme.com down"),
        ("mail <mailto:ops@acme.com|ops@acme.com>", "mail ops@acme.com"),
    ],
)
def test_readable(wire: str, read: str) -> None:
    assert readable(wire) == read


def test_mentions_without_a_label_are_read_by_name() -> None:
    names = {"U0DANA": "Dana Scully"}.get
    assert readable("ping <@U0DANA> and <@U0NOBODY>", names) == "ping @Dana Scully and @U0NOBODY"


def test_inert_escapes_once() -> None:
    assert inert("<!channel> & <https://x|y>") == "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
    assert inert(readable("&lt;auth&gt; &amp; more")) == "&lt;auth&gt; &amp; more"  # not twice


@pytest.mark.parametrize("limit", range(1, 40))
def test_clip_never_cuts_an_escape_or_an_entity(limit: int) -> None:
    text = f"{inert('a & b <c>')} <@U0BOT0123> {inert('&&&')} <#C0ROOM>"
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    body = clipped.removesuffix("…")
    assert text.startswith(body)
    for fragment in ("&am", "&a", "&l", "&g", "&lt", "&gt", "<@U0BO", "<#C0"):
        if body.endswith(fragment):
            pytest.fail(f"{clipped!r} ends inside an escape or an entity")
    assert body.count("<") == body.count(">")


def test_clip_leaves_short_text_alone() -> None:
    assert clip("fits", 10) == "fits"
