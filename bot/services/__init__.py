"""The bot's services: one module per concern, each built with exactly what it uses.

`escalations` is the one way an escalation's state changes (saved with its events, its timers
following); `briefing` keeps the pinned brief and the topic in step with it. On those stand
`declaring` (a declaration becomes a war room), `room` (changes people make in the room),
`timers` (reminders, nudges, follow-ups, the digest), `drafting` (the VP agent's drafts),
`home` (App Home and the weekly digest) and `mentions` (what `@vp ...` asks for).
"""
