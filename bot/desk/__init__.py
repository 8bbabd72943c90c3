"""The support desk the escalation's tickets live in: a small interface (`desk.py`), Zendesk
behind it (`zendesk.py`), its signed webhooks (`webhook.py`) and letters added to a ticket
exactly once (`letters.py`). Another desk (Intercom, Freshdesk) is one more adapter of `Desk`."""
