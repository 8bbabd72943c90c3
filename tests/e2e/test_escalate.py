"""`/escalate` end to end: signed requests into the production Bolt app, real Redis, the real
WebClient against the loopback Slack."""

from __future__ import annotations

from datetime import timedelta

import yaml

from bot.runtime import Runtime
from bot.slack.ids import ActionId
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import T0, today


def room_calls(fake: FakeSlack) -> list[str]:
    return [c.method for c in fake.calls if c.method != "auth.test"]


def test_a_declaration_opens_a_complete_war_room(
    slack: SlackDriver, fake_slack: FakeSlack, runtime: Runtime, memory_dir
) -> None:
    reply = slack.command("Acme Corp: checkout fails for all EU users --arr 250k")

    assert reply.status == 200
    assert "Opening a war room" in reply.text and "Acme Corp" in reply.text
    name = f"esc-{today()}-acme-corp"
    channel = fake_slack.channel_by_name(name)
    assert channel is not None and not channel.is_private
    # declarer, the first IC of the rotation, the VP, arr_churn_risk's responder (ARR >= 100K)
    assert {"U0DECLARER", "U0INCCMDR", "U0VPSUPRT", "U0CSMGR01"} <= channel.members
    assert channel.topic == "Acme Corp · IC <@U0INCCMDR> · Investigating"

    # the brief is pinned, with each deadline step's absolute due time and a Done button
    assert len(channel.pins) == 1
    brief = next(m for m in channel.messages if m.ts == channel.pins[0])
    esc = runtime.store.by_channel(channel.id)
    assert esc is not None and esc.id == name and esc.brief_ts == brief.ts
    assert esc.declared_at == T0  # the runtime's clock
    due = {s.id: s.due_at for s in esc.steps}
    assert due["assessment"] - esc.declared_at == timedelta(minutes=15)
    assert due["war_room"] - esc.declared_at == timedelta(minutes=30)
    assert due["customer_communication"] - esc.declared_at == timedelta(hours=1)
    rendered = str(brief.blocks)
    for step in ("assessment", "customer_communication"):
        assert f"<!date^{int(due[step].timestamp())}^" in rendered
    buttons = [
        b["accessory"]["value"]
        for b in brief.blocks
        if b.get("accessory", {}).get("action_id") == ActionId.STEP_DONE
    ]
    assert buttons == ["assessment", "customer_communication"]  # war_room is done by opening
    assert "$250,000" in rendered

    # the exec channel is told, with a link to the room
    exec_msgs = fake_slack.messages_in("exec-escalations")
    assert len(exec_msgs) == 1 and f"<#{channel.id}>" in str(exec_msgs[0].blocks)

    # the caller is told where the room is
    answers = fake_slack.responses_to(slack.last_response_url)
    assert answers and f"<#{channel.id}>" in answers[-1]["text"] and "ready" in answers[-1]["text"]

    # the declaration is on disk as YAML
    instruction = yaml.safe_load((memory_dir / name / "instruction.yaml").read_text())
    assert instruction["customer"] == "Acme Corp"
    assert instruction["arr"] == 250_000
    assert instruction["incident_commander"] == "U0INCCMDR"
    assert instruction["criteria"] == ["arr_churn_risk"]

    kinds = [e.kind for e in runtime.store.timeline(name)]
    assert kinds == ["declared", "ic_assigned", "step_done", "war_room_ready"]

    # no more Web API calls than the room needs
    assert sorted(room_calls(fake_slack)) == sorted(
        [
            "conversations.create",
            "conversations.invite",
            "chat.postMessage",
            "conversations.setTopic",
            "chat.postMessage",
            "pins.add",
        ]
    )


def test_ic_from_both_mention_forms(slack: SlackDriver, runtime: Runtime) -> None:
    slack.command("Initrode: SSO down --ic <@U0ENGINE1|erin>")
    slack.command("Globex: exports fail --ic <@U0OTHERIC>")
    assert runtime.store.get(f"esc-{today()}-initrode").ic == "U0ENGINE1"
    assert runtime.store.get(f"esc-{today()}-globex").ic == "U0OTHERIC"


def test_ic_rotation_is_round_robin_and_shared(slack: SlackDriver, runtime: Runtime) -> None:
    for customer in ("One", "Two", "Three"):
        slack.command(f"{customer}: broken")
    ics = [runtime.store.get(f"esc-{today()}-{c}").ic for c in ("one", "two", "three")]
    assert ics == ["U0INCCMDR", "U0OTHERIC", "U0INCCMDR"]


def test_without_a_rotation_the_declarer_is_ic(
    slack: SlackDriver, runtime: Runtime, config_file
) -> None:
    config_file.write_text(yaml.safe_dump({"vp": ["U0VPSUPRT"]}))
    from bot.runtime import build_runtime
    from loopback.harness import InlineExecutor
    from tests.conftest import SIGNING_SECRET, today

    rt = build_runtime(runtime.settings, clock=runtime.clock, listener_executor=InlineExecutor())
    try:
        driver = SlackDriver(slack.fake, SIGNING_SECRET, app=rt.app)
        driver.command("Hooli: search is empty", user="U0ENGINE1")
        assert rt.store.get(f"esc-{today()}-hooli").ic == "U0ENGINE1"
    finally:
        rt.close()


def test_responders_of_each_criterion_are_invited_with_groups_expanded(
    slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    slack.command("Umbrella: customer data exposed --criteria security_incident,legal_regulatory")
    channel = fake_slack.channel_by_name(f"esc-{today()}-umbrella")
    assert {"U0SECENG1", "U0SECENG2", "U0LEGAL01"} <= channel.members
    asked = sorted(c.args["usergroup"] for c in fake_slack.calls_to("usergroups.users.list"))
    assert asked == ["S0LEGALTM", "S0SECURTY"]


def test_private_escalation_is_a_private_channel_and_exec_sees_only_a_link(
    slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    slack.command("Wayne Enterprises: breach suspected --private")
    channel = fake_slack.channel_by_name(f"esc-{today()}-wayne-enterprises")
    assert channel.is_private
    (notice,) = fake_slack.messages_in("exec-escalations")
    shown = f"{notice.text} {notice.blocks}"
    assert f"<#{channel.id}>" in shown
    assert "Wayne" not in shown and "breach" not in shown


def test_name_taken_gets_a_suffix_and_never_reuses_a_channel(
    slack: SlackDriver, fake_slack: FakeSlack, runtime: Runtime
) -> None:
    base = f"esc-{today()}-acme"
    existing = fake_slack.add_channel(base, members=["U0ENGINE1"])
    fake_slack.add_channel(f"{base}-2", archived=True)
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"{base}-3")
    assert channel is not None and "U0DECLARER" in channel.members
    assert fake_slack.channels[existing].messages == []
    assert runtime.store.get(f"{base}-3") is not None
    created = [c.args["name"] for c in fake_slack.calls_to("conversations.create")]
    assert created == [base, f"{base}-2", f"{base}-3"]


def test_accented_and_non_latin_customers_get_ascii_channel_names(
    slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    slack.command("Société Générale: payments delayed")
    assert fake_slack.channel_by_name(f"esc-{today()}-societe-generale") is not None


def test_the_same_declaration_twice_opens_one_room(
    slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    first = slack.command("Acme Corp: checkout fails")
    second = slack.command("Acme Corp: checkout fails")
    assert "Opening" in first.text
    assert "already open" in second.text
    assert len(fake_slack.calls_to("conversations.create")) == 1
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme-corp")
    assert f"<#{channel.id}>" in second.text


def test_every_mistake_is_one_line_under_a_one_line_usage(
    slack: SlackDriver, fake_slack: FakeSlack, redis_client, prefix: str
) -> None:
    reply = slack.command("Acme Corp: down --arr -5 --frobnicate --criteria nope,zzz --ic ivan")
    lines = reply.json()["text"].splitlines()
    assert len(lines) == 5, lines
    for line, needle in zip(
        lines[:-1], ["`-5`", "`--frobnicate`", "`nope` and `zzz`", "`ivan`"], strict=True
    ):
        assert line.startswith("⚠️ ") and needle in line, (needle, line)
    assert lines[-1].startswith("Usage: /escalate CUSTOMER: SUMMARY")
    assert room_calls(fake_slack) == []
    assert list(redis_client.scan_iter(match=f"{prefix}:*")) == []
    # The whole usage, with its examples, is for `/escalate help` alone.
    assert "Examples:" in slack.command("help").json()["text"]


def test_help_and_malformed_input_answer_only_the_caller_and_create_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, redis_client, prefix: str
) -> None:
    cases = {
        "help": "Usage",
        "Acme Corp checkout fails": "colon",
        "Acme: broken --severity high": "--severity",
        "Acme: broken --arr lots": "lots",
        "Acme: broken --criteria not_a_criterion": "not_a_criterion",
        "Acme: broken --ic @ivan": "mention",
        "Acme:": "summary",
    }
    for text, needle in cases.items():
        reply = slack.command(text)
        assert reply.status == 200
        body = reply.json()
        assert body["response_type"] == "ephemeral"
        assert needle.lower() in body["text"].lower(), (text, body["text"])
        assert "/escalate" in body["text"]  # the usage is shown
    assert room_calls(fake_slack) == []
    assert list(redis_client.scan_iter(match=f"{prefix}:*")) == []


def test_no_text_opens_the_form_and_submitting_it_opens_the_room(
    slack: SlackDriver, fake_slack: FakeSlack, runtime: Runtime
) -> None:
    reply = slack.command("")
    assert reply.status == 200
    (opened,) = fake_slack.calls_to("views.open")
    view = fake_slack.views[next(iter(fake_slack.views))]
    assert opened.args["view"]["callback_id"] == "declare_form"

    bad = slack.submit_view(
        view,
        {
            "customer": {"value": {"type": "plain_text_input", "value": ""}},
            "summary": {"value": {"type": "plain_text_input", "value": "down"}},
            "arr": {"value": {"type": "plain_text_input", "value": "a lot"}},
        },
    )
    assert bad.json()["response_action"] == "errors"
    assert set(bad.json()["errors"]) == {"customer", "arr"}
    assert fake_slack.calls_to("conversations.create") == []

    good_values = {
        "customer": {"value": {"type": "plain_text_input", "value": "Initech"}},
        "summary": {"value": {"type": "plain_text_input", "value": "TPS reports lost"}},
        "arr": {"value": {"type": "plain_text_input", "value": "$1.2M"}},
        "criteria": {"value": {"type": "checkboxes", "selected_options": [{"value": "media_pr"}]}},
        "ic": {"value": {"type": "users_select", "selected_user": "U0ENGINE1"}},
        "private": {"value": {"type": "checkboxes", "selected_options": []}},
    }
    assert slack.submit_view(view, good_values).status == 200
    slack.submit_view(view, good_values)  # a double submit
    assert len(fake_slack.calls_to("conversations.create")) == 1
    esc = runtime.store.get(f"esc-{today()}-initech")
    assert esc.ic == "U0ENGINE1" and esc.arr == 1_200_000
    assert esc.criteria == ("arr_churn_risk", "media_pr")
    # the declarer hears where the room is, in the app's DM
    dms = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "U0DECLARER"]
    assert dms and f"<#{esc.channel_id}>" in dms[-1].args["text"]


def test_done_button_marks_the_step_and_updates_the_brief_once(
    slack: SlackDriver, fake_slack: FakeSlack, runtime: Runtime
) -> None:
    slack.command("Acme Corp: checkout fails")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme-corp")
    slack.click(channel.id, ActionId.STEP_DONE, "assessment", user="U0INCCMDR")
    slack.click(channel.id, ActionId.STEP_DONE, "assessment", user="U0ENGINE1")
    esc = runtime.store.by_channel(channel.id)
    assert esc.step("assessment").done_by == "U0INCCMDR"
    assert len(fake_slack.calls_to("chat.update")) == 1
    brief = next(m for m in channel.messages if m.ts == esc.brief_ts)
    assert brief.edited
    values = [b.get("accessory", {}).get("value") for b in brief.blocks]
    assert "assessment" not in values
    done = [e for e in runtime.store.timeline(esc.id) if e.kind == "step_done"]
    assert [e.data["step"] for e in done] == ["war_room", "assessment"]


def test_customer_insights_supply_arr_and_the_csm(
    slack: SlackDriver, fake_slack: FakeSlack, runtime: Runtime, memory_dir
) -> None:
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True)
    insights.write_text(
        yaml.safe_dump({"customers": [{"name": "Initech", "arr": 480000, "csm": "U0ENGINE1"}]})
    )
    slack.command("INITECH: reports missing")
    esc = runtime.store.get(f"esc-{today()}-initech")
    assert esc.arr == 480000 and "arr_churn_risk" in esc.criteria
    assert "U0ENGINE1" in fake_slack.channel_by_name(esc.id).members


def test_a_forged_signature_is_refused(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    body = "command=%2Fescalate&text=Acme%3A+down&user_id=U0DECLARER"
    headers = slack.headers(body, content_type="application/x-www-form-urlencoded")
    headers["x-slack-signature"] = "v0=" + "0" * 64
    assert slack.send(body, headers).status == 401
    assert room_calls(fake_slack) == []
