"""The sandbox's fictional organisation: its people, groups, channels, warroom.yaml and the
account facts the VP agent grounds its drafts on.

Everything here is made up; the ids follow Slack's shapes so the bot's validation accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopback.slack import SlackEmulator

BOT_USER_ID = "U0WARROOM"
BOT_NAME = "vp"  # the bot's display name, as in slack-manifest.yaml
TEAM_NAME = "Northwind Support"
TEAM_DOMAIN = "northwind-support"


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    real_name: str
    title: str


PEOPLE = (
    Person("U0SUPLEAD", "dana", "Dana Whitfield", "Support Lead"),
    Person("U0INCCMDR", "ivan", "Ivan Petrov", "Incident Commander"),
    Person("U0INCCMD2", "olga", "Olga Brandt", "Incident Commander"),
    Person("U0VPSUPRT", "victoria", "Victoria Hale", "VP of Customer Support"),
    Person("U0CSMGR01", "carla", "Carla Mendes", "Customer Success Manager"),
    Person("U0ENGINE1", "erin", "Erin Okafor", "Site Reliability Engineer"),
    Person("U0SECENG1", "sam", "Sam Reyes", "Security Engineer"),
    Person("U0LEGAL01", "lee", "Lee Park", "Legal Counsel"),
)
SUPPORT_LEAD, IC, IC2, VP, CSM, ENGINEER, SECURITY, LEGAL = (p.id for p in PEOPLE)

GROUPS = {"S0SECURTY": ("security", [SECURITY]), "S0LEGALTM": ("legal", [LEGAL])}

EXEC_CHANNEL = "exec-escalations"
SUPPORT_CHANNEL = "support"

# The customer's side: Acme Corp's own Slack organisation, a channel shared with it (Slack
# Connect) and its executive, whose inbox the sandbox's mail server keeps.
CUSTOMER_TEAM = "T0ACMECRP"
CUSTOMER_NAME = "Acme Corp"
CUSTOMER_PERSON = Person("U0ACMEMLE", "morgan", "Morgan Lee", "VP Engineering, Acme Corp")
CUSTOMER_EMAIL = "morgan.lee@acme.example"
SHARED_CHANNEL = "acme-corp-northwind"
# Where the letters come from and the customer's replies go (WARROOM_MAIL_FROM, _REPLY_TO).
MAIL_FROM = "updates@northwind.example"
MAIL_REPLY_TO = "support@northwind.example"

CONFIG: dict[str, Any] = {
    "vp": [VP],
    "incident_commanders": [IC, IC2],
    "exec_channel": EXEC_CHANNEL,
    "responders": {
        "arr_churn_risk": [CSM],
        "multi_customer_outage": [ENGINEER],
        "systemic_product_failure": [ENGINEER],
        "security_incident": ["S0SECURTY"],
        "legal_regulatory": ["S0LEGALTM"],
    },
}

CUSTOMERS: dict[str, Any] = {
    "customers": [
        {
            "name": "Acme Corp",
            "arr": 250000,
            "tier": "enterprise",
            "executive_contact": "Morgan Lee, VP Engineering",
            "email": CUSTOMER_EMAIL,
            "cc": ["carla@northwind.example"],
            "csm": CSM,
            "notes": "Checkout is their revenue path; they expect updates every hour.",
        },
        {
            "name": "Globex",
            "arr": 480000,
            "tier": "strategic",
            "executive_contact": "Priya Natarajan, CTO",
            "email": "priya.natarajan@globex.example",
            "csm": CSM,
            "notes": "Runs an EU flash sale every first Thursday; renewal is next quarter.",
        },
    ]
}


def person_email(name: str) -> str:
    """The email of a sandbox person's Slack profile (their handle at Northwind): the bot
    finds a signer's Zendesk agent by it."""
    return f"{name}@northwind.example"


def new_emulator(*, bot_token: str) -> SlackEmulator:
    return SlackEmulator(
        bot_user_id=BOT_USER_ID,
        bot_name=BOT_NAME,
        bot_token=bot_token,
        team_id="T0NORTHWD",
        team_name=TEAM_NAME,
        team_domain=TEAM_DOMAIN,
    )


def seed(emulator: SlackEmulator) -> None:
    """The people, groups and channels of the workspace."""
    for p in PEOPLE:
        emulator.add_user(
            p.id, p.name, real_name=p.real_name, title=p.title, email=person_email(p.name)
        )
    for group_id, (handle, members) in GROUPS.items():
        emulator.add_usergroup(group_id, handle, members)
    emulator.add_channel(SUPPORT_CHANNEL, members=[p.id for p in PEOPLE])
    emulator.add_channel(EXEC_CHANNEL, members=[VP, SUPPORT_LEAD])
    # Acme Corp's executive, in their own organisation, and the channel shared with it.
    p = CUSTOMER_PERSON
    emulator.add_user(p.id, p.name, real_name=p.real_name, title=p.title, team_id=CUSTOMER_TEAM)
    shared = emulator.add_channel(SHARED_CHANNEL, members=[VP, CSM, SUPPORT_LEAD])
    emulator.share_channel(shared, CUSTOMER_TEAM, CUSTOMER_NAME)
    emulator.join(shared, p.id)
    emulator.add_message(
        shared,
        CSM,
        "Welcome, Morgan: this channel is shared between Acme Corp and Northwind Support. "
        "During an escalation our updates come here and by email.",
    )
    emulator.add_message(
        SUPPORT_CHANNEL,
        SUPPORT_LEAD,
        "Welcome to the sandbox! Declare an escalation with "
        "`/escalate Acme Corp: checkout fails --arr 250k`, then talk to the bot in its war "
        "room with `@vp help`. Switch people at the top right.",
    )


def shared_channel(emulator: SlackEmulator) -> str:
    """The id of the channel shared with Acme Corp (seeded by `seed`)."""
    found = emulator.channel_by_name(SHARED_CHANNEL)
    if found is None:
        raise LookupError(f"#{SHARED_CHANNEL} is not seeded")
    return found.id


def write_files(folder: Path, *, slack_connect: str | None = None) -> tuple[Path, Path]:
    """warroom.yaml and the memory folder (with the account facts: Acme Corp's shared
    channel is `slack_connect`, when given); their paths."""
    config = folder / "warroom.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False), encoding="utf-8")
    memory = folder / "Agent_Memory"
    insights = memory / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True, exist_ok=True)
    customers = [dict(c) for c in CUSTOMERS["customers"]]
    if slack_connect:
        for entry in customers:
            if entry["name"] == CUSTOMER_NAME:
                entry["slack_connect"] = slack_connect
    insights.write_text(yaml.safe_dump({"customers": customers}, sort_keys=False), "utf-8")
    return config, memory
