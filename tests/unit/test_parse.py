"""Unit tests of bot.slack.parse: the /escalate grammar, amounts, mentions and channel names."""

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.declaration import MAX_CUSTOMER, MAX_SUMMARY
from bot.domain.errors import InvalidInput
from bot.domain.naming import channel_name, slugify
from bot.slack.parse import (
    USAGE,
    USAGE_HINT,
    Declare,
    Help,
    InvalidCommand,
    OpenForm,
    parse_amount,
    parse_escalate,
    parse_user_mention,
)
from bot.slack.text import unescape

KNOWN = (
    "arr_churn_risk",
    "multi_customer_outage",
    "security_incident",
    "legal_regulatory",
    "media_pr",
    "systemic_product_failure",
)
DAY = datetime.date(2026, 11, 25)
CHANNEL_RE = re.compile(r"^esc-\d{8}-[a-z0-9]+(-[a-z0-9]+)*$")


def declare(
    customer: str = "Acme Corp",
    summary: str = "checkout fails",
    *,
    arr: int | None = None,
    ic: str | None = None,
    criteria: tuple[str, ...] = (),
    private: bool = False,
) -> Declare:
    return Declare(customer, summary, arr, ic, criteria, private)


def error_of(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_escalate(text, KNOWN)
    return caught.value.message


# --- Help and the form --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "   \t\n  "])
def test_no_text_opens_the_form(text: str) -> None:
    assert parse_escalate(text, KNOWN) == OpenForm()


@pytest.mark.parametrize("text", ["help", "HELP", "  Help  ", "\thElP\n", "--help", "-h"])
def test_help_in_any_case(text: str) -> None:
    assert parse_escalate(text, KNOWN) == Help()


def test_help_as_a_customer_name_is_a_declaration() -> None:
    assert parse_escalate("help: me", KNOWN) == declare("help", "me")


def test_usage_shows_grammar_flags_and_examples() -> None:
    for part in ("/escalate", "--arr", "--ic", "--criteria", "--private", "250k", "$1.2M"):
        assert part in USAGE
    assert "/escalate Acme Corp: checkout fails for all EU users --arr 250k" in USAGE
    assert "no text opens a form" in USAGE
    assert "<" not in USAGE and "&" not in USAGE  # safe to post without Slack escaping


def test_the_usage_hint_is_one_line_of_the_usage() -> None:
    assert "\n" not in USAGE_HINT
    assert USAGE_HINT.startswith(USAGE.splitlines()[0])
    assert "/escalate help" in USAGE_HINT


def test_every_usage_example_parses() -> None:
    examples = [line.strip() for line in USAGE.splitlines() if line.startswith("  /escalate ")]
    assert len(examples) >= 2
    for example in examples:
        # Slack sends a picked person as a mention, not as the typed `@dana`.
        text = example.removeprefix("/escalate ").replace("@dana", "<@U0DANA01|dana>")
        assert isinstance(parse_escalate(text, KNOWN), Declare), example


# --- Declarations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The SPEC's grammar and its examples.
        (
            "Acme Corp: checkout fails for all EU users --arr 250k",
            declare(summary="checkout fails for all EU users", arr=250_000),
        ),
        ("Acme Corp: checkout fails", declare()),
        ("Acme Corp: checkout fails --arr 250000", declare(arr=250_000)),
        ("Acme Corp: checkout fails --arr $1.2M", declare(arr=1_200_000)),
        ("Acme Corp: checkout fails --ic <@U123|ivan>", declare(ic="U123")),
        ("Acme Corp: checkout fails --ic <@U123>", declare(ic="U123")),
        ("Acme Corp: checkout fails --ic <@W0ENTERP1|ivan>", declare(ic="W0ENTERP1")),
        ("Acme Corp: checkout fails --private", declare(private=True)),
        (
            "Acme Corp: checkout fails --criteria security_incident,legal_regulatory",
            declare(criteria=("security_incident", "legal_regulatory")),
        ),
        (
            "Initech: data leak --arr 480k --ic <@U0INCCMDR|ic> "
            "--criteria security_incident,media_pr --private",
            declare(
                "Initech",
                "data leak",
                arr=480_000,
                ic="U0INCCMDR",
                criteria=("security_incident", "media_pr"),
                private=True,
            ),
        ),
        # Whitespace: around the colon, between words, no space after the colon.
        ("  Acme Corp :   checkout   fails  ", declare()),
        ("Acme Corp:checkout fails", declare()),
        ("Acme   Corp: checkout fails", declare()),
        # Only the first colon separates; later ones belong to the summary.
        ("Acme Corp: checkout: fails", declare(summary="checkout: fails")),
        ("Acme Corp: down since 10:30 UTC", declare(summary="down since 10:30 UTC")),
        # Slack escaping.
        ("AT&amp;T: billing &lt;broken&gt;", declare("AT&T", "billing <broken>")),
        ("Müller &amp; Söhne GmbH: checkout fails", declare("Müller & Söhne GmbH")),
        ("Acme Corp: R&amp;D &amp;&amp; API down", declare(summary="R&D && API down")),
        # Mentions, channels and links in the summary are kept as people read them, inert.
        (
            "Acme Corp: <@U0REPORT|dana> says <#C0SUPPRT|support> is flooded",
            declare(summary="@dana says #support is flooded"),  # as read: no live mention
        ),
        # The summary may begin with `--` that is not a flag.
        ("Acme Corp: -- checkout fails", declare(summary="-- checkout fails")),
        ("Acme Corp: --> checkout fails", declare(summary="--> checkout fails")),
        ("Acme Corp: checkout fails --5", declare(summary="checkout fails --5")),
        ("Acme Corp: checkout fails —again", declare(summary="checkout fails —again")),
    ],
)
def test_declarations(text: str, expected: Declare) -> None:
    assert parse_escalate(text, KNOWN) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Acme Corp: --arr 250k --private checkout fails",  # before
        "Acme Corp: checkout --arr 250k --private fails",  # between
        "Acme Corp: checkout fails --arr 250k --private",  # after
        "Acme Corp: --private checkout --arr 250k fails",  # mixed
        "Acme Corp: checkout fails --arr=250k --private",  # --flag=value
        "Acme Corp: --arr=250k checkout --private fails",
        "Acme Corp: checkout fails --ARR 250k --Private",  # flag names in any case
        "Acme Corp: checkout fails —arr 250k —private",  # em dash from smart punctuation
        "Acme Corp: checkout fails \u2013arr 250k \u2013private",  # en dash
    ],
)
def test_flags_anywhere_after_the_colon(text: str) -> None:
    assert parse_escalate(text, KNOWN) == declare(arr=250_000, private=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Acme Corp: checkout fails --ic=<@U123|ivan>", declare(ic="U123")),
        ("Acme Corp: --ic=<@U123> checkout fails", declare(ic="U123")),
        ("Acme Corp: checkout fails --criteria=media_pr", declare(criteria=("media_pr",))),
        ("Acme Corp: checkout fails --arr=$1,200,000", declare(arr=1_200_000)),
        # A mention whose label has spaces stays one token.
        ("Acme Corp: --ic <@U123|Ivan Petrov> checkout fails", declare(ic="U123")),
    ],
)
def test_flag_values(text: str, expected: Declare) -> None:
    assert parse_escalate(text, KNOWN) == expected


@pytest.mark.parametrize(
    ("text", "criteria", "summary"),
    [
        ("x --criteria media_pr,legal_regulatory", ("media_pr", "legal_regulatory"), "x"),
        # Spaces after (or before) commas continue the list...
        ("x --criteria media_pr, legal_regulatory", ("media_pr", "legal_regulatory"), "x"),
        ("x --criteria media_pr ,legal_regulatory", ("media_pr", "legal_regulatory"), "x"),
        ("x --criteria media_pr , legal_regulatory", ("media_pr", "legal_regulatory"), "x"),
        (
            "x --criteria=media_pr, legal_regulatory, security_incident",
            ("media_pr", "legal_regulatory", "security_incident"),
            "x",
        ),
        # ...and nothing else does: the words after the list stay in the summary.
        ("x --criteria media_pr, legal_regulatory y z", ("media_pr", "legal_regulatory"), "x y z"),
        ("x --criteria media_pr more words", ("media_pr",), "x more words"),
        ("--criteria media_pr, legal_regulatory x", ("media_pr", "legal_regulatory"), "x"),
        # A trailing comma before the next flag or the end is a slip, not a criterion.
        ("x --criteria media_pr, --private", ("media_pr",), "x"),
        ("x --criteria media_pr,", ("media_pr",), "x"),
        ("x --criteria media_pr,,legal_regulatory", ("media_pr", "legal_regulatory"), "x"),
        # De-duplicated, order kept, spelled as the protocol spells it.
        ("x --criteria media_pr,arr_churn_risk,media_pr", ("media_pr", "arr_churn_risk"), "x"),
        ("x --criteria Media_PR,media-pr", ("media_pr",), "x"),
        ("x --criteria Security-Incident", ("security_incident",), "x"),
    ],
)
def test_criteria(text: str, criteria: tuple[str, ...], summary: str) -> None:
    parsed = parse_escalate(f"Acme Corp: {text}", KNOWN)
    assert isinstance(parsed, Declare)
    assert (parsed.criteria, parsed.summary) == (criteria, summary)


def test_arr_does_not_add_criteria_by_itself() -> None:
    # Adding arr_churn_risk for ARR >= $100K is the domain's rule, not the parser's.
    parsed = parse_escalate("Acme Corp: checkout fails --arr 5M", KNOWN)
    assert isinstance(parsed, Declare) and parsed.criteria == ()


def test_criteria_may_be_any_collection() -> None:
    parsed = parse_escalate("Acme Corp: x --criteria b,a", frozenset({"a", "b"}))
    assert isinstance(parsed, Declare) and parsed.criteria == ("b", "a")


@pytest.mark.parametrize(
    ("text", "customer", "summary"),
    [
        # A link that Slack made of the customer's domain: its colon is not the separator.
        ("<http://acme.com|acme.com>: checkout fails", "acme.com", "checkout fails"),
        ("<https://acme.com>: checkout fails", "https://acme.com", "checkout fails"),
        ("https://acme.com: checkout fails", "https://acme.com", "checkout fails"),
        # Emoji shortcodes around the customer are decoration.
        (":rotating_light: Acme Corp: checkout fails", "Acme Corp", "checkout fails"),
        (":wave::skin-tone-2: Acme Corp: checkout fails", "Acme Corp", "checkout fails"),
        ("Acme Corp :fire:: checkout fails", "Acme Corp", "checkout fails"),
        ("Acme Corp: :fire: checkout fails", "Acme Corp", ":fire: checkout fails"),
        # A colon inside a word is still the separator.
        ("Acme:down: checkout fails", "Acme", "down: checkout fails"),
        # Full-width colon, as CJK keyboards type it.
        ("株式会社トヨタ\uff1a決済が失敗", "株式会社トヨタ", "決済が失敗"),
        ("株式会社トヨタ: 決済が失敗", "株式会社トヨタ", "決済が失敗"),
    ],
)
def test_where_the_customer_ends(text: str, customer: str, summary: str) -> None:
    parsed = parse_escalate(text, KNOWN)
    assert isinstance(parsed, Declare)
    assert (parsed.customer, parsed.summary) == (customer, summary)


def test_limits_are_inclusive() -> None:
    customer = "C" * MAX_CUSTOMER
    summary = "s" * MAX_SUMMARY
    assert parse_escalate(f"{customer}: {summary}", KNOWN) == declare(customer, summary)


def test_limits_count_unescaped_characters() -> None:
    customer = "&amp;" * MAX_CUSTOMER
    parsed = parse_escalate(f"{customer}: x", KNOWN)
    assert isinstance(parsed, Declare) and parsed.customer == "&" * MAX_CUSTOMER


# --- Errors -------------------------------------------------------------------------------


ERROR_CASES = [
    # No customer.
    ("checkout fails for all EU users", ["customer name must come first", "colon"]),
    ("Acme Corp checkout fails --arr 250k", ["customer name must come first", "colon"]),
    ("Acme outage since 10:30", ["customer name must come first"]),
    (": checkout fails", ["customer name", "empty"]),
    (":fire:: checkout fails", ["customer name", "empty"]),
    ("   : checkout fails", ["customer name", "empty"]),
    ("--private Acme Corp: checkout fails", ["`--private`", "before the colon"]),
    ("Acme outage --arr 5k since 10am: x", ["`--arr`", "before the colon"]),
    ("C" * (MAX_CUSTOMER + 1) + ": x", ["81 characters", "80"]),
    # No summary.
    ("Acme Corp:", ["summary", "empty", "Acme Corp"]),
    ("Acme Corp:   ", ["summary", "empty"]),
    ("Acme Corp: --arr 250k --private", ["summary", "empty"]),
    ("Acme Corp: " + "s" * (MAX_SUMMARY + 1), ["2001 characters", "2000"]),
    # Unknown flags.
    ("Acme Corp: x --foo", ["Unknown flag", "`--foo`", "--arr", "--private"]),
    ("Acme Corp: x --foo=bar", ["Unknown flag", "`--foo`"]),
    ("Acme Corp: x --aar 250k", ["`--aar`", "Did you mean --arr?"]),
    ("Acme Corp: x --priv", ["`--priv`", "Did you mean --private?"]),
    ("Acme Corp: x --verbose", ["`--verbose`"]),
    # A flag given twice.
    ("Acme Corp: x --arr 1k --arr 2k", ["`--arr`", "twice"]),
    ("Acme Corp: x --private --private", ["`--private`", "twice"]),
    ("Acme Corp: x --arr 1k —arr 2k", ["`--arr`", "twice"]),
    ("Acme Corp: x --ic <@U1> --IC=<@U2>", ["`--ic`", "twice"]),
    ("Acme Corp: x --criteria media_pr --criteria=media_pr", ["`--criteria`", "twice"]),
    # A flag missing its value.
    ("Acme Corp: x --arr", ["`--arr`", "needs a value"]),
    ("Acme Corp: x --arr --private", ["`--arr`", "needs a value"]),
    ("Acme Corp: x --arr=", ["`--arr`", "needs a value"]),
    ("Acme Corp: x --ic", ["`--ic`", "needs a value"]),
    ("Acme Corp: x --ic --arr 5k", ["`--ic`", "needs a value"]),
    ("Acme Corp: x --criteria", ["`--criteria`", "needs a value"]),
    ("Acme Corp: x --criteria=", ["`--criteria`", "needs a value"]),
    ("Acme Corp: x --criteria ,", ["--criteria", "at least one"]),
    # A value where none belongs.
    ("Acme Corp: x --private=yes", ["`--private`", "takes no value"]),
    # Bad amounts, with the flag named.
    ("Acme Corp: x --arr lots", ["--arr", "`lots`", "250k"]),
    ("Acme Corp: x --arr -5k", ["--arr", "`-5k`", "negative"]),
    ("Acme Corp: x --arr 5kk", ["--arr", "`5kk`", "more than one unit"]),
    # Bad IC.
    ("Acme Corp: x --ic @ivan", ["--ic", "`@ivan`", "not a Slack mention", "pick"]),
    ("Acme Corp: x --ic ivan", ["--ic", "`ivan`", "not a Slack mention"]),
    ("Acme Corp: x --ic <!subteam^S0SECURTY|@security>", ["`@security`", "one person"]),
    ("Acme Corp: x --ic <!subteam^S0SECURTY>", ["user group", "one person"]),
    ("Acme Corp: x --ic <!here>", ["`@here`", "one person"]),
    ("Acme Corp: x --ic <#C123|general>", ["`#general`", "channel"]),
    # Unknown criteria: named, with the known ids listed.
    ("Acme Corp: x --criteria outage", ["`outage`", *KNOWN]),
    ("Acme Corp: x --criteria media_pr,outage", ["`outage`", "Known criteria"]),
    ("Acme Corp: x --criteria media_pr, outage", ["`outage`", "Known criteria"]),
    ("Acme Corp: x --criteria security_incidnet", ["Did you mean security_incident?"]),
    # A summary word after a trailing comma is read as a criterion: refused, not lost.
    ("Acme Corp: x --criteria media_pr, customers angry", ["`customers`"]),
]


@pytest.mark.parametrize(("text", "mentions"), ERROR_CASES)
def test_errors_say_what_is_wrong(text: str, mentions: list[str]) -> None:
    message = error_of(text)
    for part in mentions:
        assert part in message, (part, message)


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(InvalidCommand) as caught:
        parse_escalate(text, KNOWN)
    return caught.value.problems


def test_every_mistake_is_reported_in_the_order_typed() -> None:
    problems = problems_of("Acme Corp: --foo x --arr lots --criteria nope --ic ivan")
    assert len(problems) == 4
    for problem, needle in zip(problems, ["`--foo`", "`lots`", "`nope`", "`ivan`"], strict=True):
        assert needle in problem, (needle, problems)
    assert [p for p in problems_of("Acme Corp: --arr lots") if "`lots`" in p or "summary" in p]
    assert len(problems_of("Acme Corp: --arr lots")) == 2  # and the empty summary


def test_the_flags_are_checked_without_the_colon_too() -> None:
    problems = problems_of("Acme Corp checkout fails --arr -5 --frobnicate")
    assert len(problems) == 3
    assert "colon" in problems[0] and "negative" in problems[1] and "`--frobnicate`" in problems[2]


def test_flags_before_the_colon_are_named_together() -> None:
    (problem,) = problems_of("--private --arr 5k Acme: x")
    assert "`--private` and `--arr` come before the colon" in problem


def test_a_flag_given_three_times_is_reported_once() -> None:
    problems = problems_of("Acme Corp: x --arr 1k --arr lots --arr=2k")
    assert problems == ("`--arr` is given twice; give it once.",)


def test_each_unknown_criterion_is_named_and_the_known_listed_once() -> None:
    (problem,) = problems_of("Acme Corp: x --criteria nope,zzz,media_pr,securty_incident,nope")
    assert "Unknown criteria `nope`, `zzz` and `securty_incident`." in problem
    assert "Did you mean security_incident for `securty_incident`?" in problem
    assert problem.count("multi_customer_outage") == 1
    assert problem.count("`nope`") == 1


def test_a_message_after_check_flag_goes_on_in_lowercase() -> None:
    assert problems_of("Acme Corp: x --arr -5") == (
        "Check --arr: the amount `-5` is negative; it must be more than zero. Write it in "
        "dollars, like 250000, 250,000, 250k, $1.2M or 2B.",
    )
    assert problems_of("Acme Corp: x --ic ivan")[0].startswith("Check --ic: `ivan` is not")


# Many mistakes at once, and each kind of mistake alone: every message they produce is checked
# for its grammar.
_MISTAKES = [
    "Acme Corp checkout fails --arr -5 --foo --criteria nope,zzz --ic ivan",
    "--private Acme: --arr 0 --arr 1 --ic --criteria , --private=yes",
    ": --arr=$ --ic <!subteam^S1> --criteria Security-Incidnet,zzz",
    "C" * (MAX_CUSTOMER + 1) + ": " + "s" * (MAX_SUMMARY + 1) + " --ic <#C1|general>",
    "Acme: x --arr 5kk --ic <!here> —arr 3",
    "Acme: x --arr 1001b --ic @dana --priv",
    "Acme: x --arr 0.4 --ic <!subteam^S1|@sec>",
    "Acme: x --arr \u22125k --criteria media_pr, customers angry",
]


def _grammar_problems(message: str) -> list[str]:
    """What is wrong with the grammar of a problem message, if anything."""
    wrong = []
    check = re.match(r"Check --[a-z]+: (.)", message)
    if check and not (check.group(1).islower() or check.group(1) == "`"):
        wrong.append("the sentence after 'Check --flag:' goes on in lowercase")
    if not check and not (message[0].isupper() or message[0] == "`"):
        wrong.append("a sentence starts with a capital or a quoted token")
    if not message.endswith((".", "?")):
        wrong.append("a sentence ends with a full stop or a question mark")
    if "  " in message or message != message.strip() or "\n" in message:
        wrong.append("one line, single spaces")
    # What the person typed, quoted back in backticks, is theirs: its punctuation is not ours.
    ours = re.sub(r"`[^`]*`", "`x`", message).replace("…", "")
    if re.search(r"\.\.(?!\.)|\s[.,;:?]|[,;]\.|\.\s*\.", ours):
        wrong.append("no doubled or stray punctuation")
    return wrong


@pytest.mark.parametrize("text", [*_MISTAKES, *(case[0] for case in ERROR_CASES)])
def test_every_message_is_plain_correct_english(text: str) -> None:
    for problem in problems_of(text):
        assert not _grammar_problems(problem), (problem, _grammar_problems(problem))


def test_the_grammar_check_catches_the_old_mistakes() -> None:
    assert _grammar_problems("Check --arr: The amount `-5` is negative.")
    assert _grammar_problems("the amount is negative.")
    assert _grammar_problems("The amount is  negative.")
    assert _grammar_problems("The amount is negative")
    assert _grammar_problems("The summary is empty; .")
    assert not _grammar_problems("The summary after `;.:` is empty.")


def test_echoed_broadcasts_do_not_notify() -> None:
    message = error_of("Acme Corp: x --ic <!channel>")
    assert "<!channel>" not in message and "`@channel`" in message


def test_long_tokens_are_shortened_in_messages() -> None:
    message = error_of("Acme Corp: x --" + "f" * 500)
    assert len(message) < 200


def test_unknown_criterion_when_none_are_configured() -> None:
    with pytest.raises(InvalidInput, match="none are configured"):
        parse_escalate("Acme Corp: x --criteria media_pr", ())


# --- Amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dollars"),
    [
        ("250000", 250_000),
        ("250,000", 250_000),
        ("250k", 250_000),
        ("250K", 250_000),
        ("$250k", 250_000),
        ("$1.2M", 1_200_000),
        ("1.5m", 1_500_000),
        ("2b", 2_000_000_000),
        ("2B", 2_000_000_000),
        ("$1,200,000", 1_200_000),
        ("1.25M", 1_250_000),
        ("1.15M", 1_150_000),  # a float would give 1,149,999
        ("1,500k", 1_500_000),
        ("0.5k", 500),
        (".5M", 500_000),
        ("$ 3 k", 3_000),
        ("  42  ", 42),
        ("99.5", 100),  # to the nearest dollar, halves up
        ("99.49", 99),
        ("1.2345678k", 1_235),
        ("0.5", 1),
        ("1000B", 10**12),  # the largest accepted
        ("1,000,000,000,000", 10**12),
        ("007", 7),
    ],
)
def test_amounts(text: str, dollars: int) -> None:
    assert parse_amount(text) == dollars


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5k", "negative"),
        ("-250000", "negative"),
        ("$-5k", "negative"),
        ("\u22125k", "negative"),
        ("0", "zero"),
        ("$0k", "zero"),
        ("0.000", "zero"),
        ("0.4", "less than a dollar"),
        ("lots", "not an amount"),
        ("$", "not an amount"),
        ("k", "not an amount"),
        ("1.2.3", "not an amount"),
        ("1,5m", "not an amount"),
        ("25,00", "not an amount"),
        ("1 000", "not an amount"),
        ("5 USD", "not an amount"),
        ("1e6", "not an amount"),
        ("١٢٣", "not an amount"),
        ("250kk", "more than one unit"),
        ("5km", "more than one unit"),
        ("1.2MM", "more than one unit"),
        ("2bk", "more than one unit"),
        ("1001b", "more than $1,000,000,000,000"),
        ("1000000000001", "more than $1,000,000,000,000"),
        ("9" * 400, "more than $1,000,000,000,000"),
    ],
)
def test_bad_amounts(text: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_amount(text)
    message = caught.value.message
    assert why in message
    assert "250k" in message and "$1.2M" in message  # the accepted forms
    if text.strip() and len(text) < 30:
        assert f"`{text.strip()}`" in message


@given(st.integers(min_value=1, max_value=10**12))
def test_whole_dollars_read_back_in_any_grouping(dollars: int) -> None:
    assert parse_amount(str(dollars)) == dollars
    assert parse_amount(f"${dollars:,}") == dollars


@given(st.text(max_size=40))
def test_parse_amount_only_raises_invalid_input(text: str) -> None:
    try:
        dollars = parse_amount(text)
    except InvalidInput:
        return
    assert 1 <= dollars <= 10**12


# --- Mentions and escaping ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "user"),
    [
        ("<@U123|ivan>", "U123"),
        ("<@U123>", "U123"),
        ("  <@U0INCCMDR|ivan.petrov>  ", "U0INCCMDR"),
        ("<@W0ENTERP1>", "W0ENTERP1"),
        ("<@W0ENTERP1|ivan>", "W0ENTERP1"),
        ("<@U123|Ivan Petrov>", "U123"),
    ],
)
def test_user_mentions(text: str, user: str) -> None:
    assert parse_user_mention(text) == user


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("", ["No person"]),
        ("@ivan", ["`@ivan`", "not a Slack mention", "pick the person"]),
        ("ivan", ["`ivan`", "not a Slack mention"]),
        ("U123", ["`U123`", "not a Slack mention"]),
        ("<@U123", ["not a Slack mention"]),
        ("<@C123>", ["not a Slack mention"]),
        ("<@U123|ivan> <@U456|dana>", ["not a Slack mention"]),
        ("<!subteam^S123|@team>", ["`@team`", "user group", "IC must be one person"]),
        ("<!here>", ["`@here`", "one person"]),
        ("<!channel>", ["`@channel`", "one person"]),
        ("<#C123|general>", ["`#general`", "channel"]),
    ],
)
def test_not_user_mentions(text: str, mentions: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_user_mention(text)
    for part in mentions:
        assert part in caught.value.message, (part, caught.value.message)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("AT&amp;T", "AT&T"),
        ("a &lt;b&gt; c", "a <b> c"),
        ("&amp;lt;", "&lt;"),  # one pass: the user typed `&lt;` literally
        ("&amp;&amp;", "&&"),
        ("no escapes", "no escapes"),
        ("&quot; &#39; &nbsp;", "&quot; &#39; &nbsp;"),  # Slack escapes only three
    ],
)
def test_unescape(text: str, plain: str) -> None:
    assert unescape(text) == plain


# --- Slugs and channel names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "slug"),
    [
        ("Acme Corp", "acme-corp"),
        ("Müller & Söhne GmbH", "muller-sohne-gmbh"),
        ("Société Générale", "societe-generale"),
        ("Ωmega", "omega"),
        ("Газпром нефть", "gazprom-neft"),
        ("İstanbul Ærø", "istanbul-aero"),
        ("Straße", "strasse"),
        ("AT&T", "at-t"),
        ("  --Acme__Corp!!  ", "acme-corp"),
        ("ACME.COM", "acme-com"),
        ("\uff21\uff43\uff4d\uff45", "acme"),  # full-width Latin
        ("3M", "3m"),
        ("🔥🚀", "customer"),
        ("!!!", "customer"),
        ("", "customer"),
    ],
)
def test_slugs(customer: str, slug: str) -> None:
    assert slugify(customer) == slug


@pytest.mark.parametrize("customer", ["株式会社トヨタ", "日本", "مرحبا", "한국"])
def test_other_scripts_slug_to_ascii(customer: str) -> None:
    slug = slugify(customer)
    assert slug and slug != "customer"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug


def test_slugify_does_not_cut() -> None:
    assert slugify("a" * 300) == "a" * 300


@pytest.mark.parametrize(
    ("customer", "attempt", "name"),
    [
        ("Acme Corp", 1, "esc-20261125-acme-corp"),
        ("Acme Corp", 2, "esc-20261125-acme-corp-2"),
        ("Acme Corp", 3, "esc-20261125-acme-corp-3"),
        ("Acme Corp", 10, "esc-20261125-acme-corp-10"),
        ("Müller & Söhne GmbH", 1, "esc-20261125-muller-sohne-gmbh"),
        ("🔥", 1, "esc-20261125-customer"),
        ("🔥", 2, "esc-20261125-customer-2"),
        # The prefix `esc-20261125-` is 13 characters, leaving 67 for the slug.
        ("a" * 67, 1, "esc-20261125-" + "a" * 67),
        ("a" * 68, 1, "esc-20261125-" + "a" * 67),
        ("a" * 67, 2, "esc-20261125-" + "a" * 65 + "-2"),
        ("a" * 67, 10, "esc-20261125-" + "a" * 64 + "-10"),
        # A cut that would end in `-` drops it.
        ("a" * 66 + " b", 1, "esc-20261125-" + "a" * 66),
        ("a" * 64 + " bcd", 2, "esc-20261125-" + "a" * 64 + "-2"),
        ("a" * 63 + " bcd", 10, "esc-20261125-" + "a" * 63 + "-10"),
    ],
)
def test_channel_names(customer: str, attempt: int, name: str) -> None:
    assert channel_name(DAY, customer, attempt) == name
    assert len(name) <= 80


def test_channel_name_at_exactly_80_characters() -> None:
    for attempt in (1, 2, 10, 999):
        assert len(channel_name(DAY, "x" * 200, attempt)) == 80


def test_channel_name_pads_the_date() -> None:
    assert channel_name(datetime.date(987, 1, 2), "Acme") == "esc-09870102-acme"


def test_channel_name_accepts_a_datetime() -> None:
    moment = datetime.datetime(2026, 11, 25, 23, 59, tzinfo=datetime.UTC)
    assert channel_name(moment, "Acme") == "esc-20261125-acme"


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        channel_name(DAY, "Acme", attempt)


@given(
    day=st.dates(),
    customer=st.text(max_size=200),
    attempt=st.integers(min_value=1, max_value=999),
)
def test_channel_names_are_always_valid(day: datetime.date, customer: str, attempt: int) -> None:
    name = channel_name(day, customer, attempt)
    assert CHANNEL_RE.fullmatch(name), name
    assert len(name) <= 80
    assert name.endswith(f"-{attempt}") or attempt == 1


# --- Arbitrary text -----------------------------------------------------------------------

# Pieces of the grammar and of Slack's wire format, so generated text reaches deep paths.
_PIECES = st.sampled_from(
    [
        ":", "\uff1a", " ", "  ", "\t", ",", ", ", "=", "-", "--", "—", "<", ">", "|", "@", "#",
        "!", "^", "$", ".", "&amp;", "&lt;", "&gt;", "&", "help", "Acme", "x", "k", "M", "b",
        "1", "250", "1.2", "0", "--arr", "--ic", "--criteria", "--private", "--foo", "—arr",
        "<@U123|ivan>", "<@U123>", "<@W9>", "<!subteam^S1|@team>", "<!here>", "<#C1|g>",
        "<http://a.b|a.b>", ":fire:", "10:30", "https://", "media_pr", "security_incident",
    ]
)  # fmt: skip


@given(st.text(max_size=300))
def test_parse_escalate_only_raises_invalid_input_on_any_text(text: str) -> None:
    _check_parse(text)


@given(st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=40).map("".join))
def test_parse_escalate_only_raises_invalid_input_on_near_misses(text: str) -> None:
    _check_parse(text)


def _check_parse(text: str) -> None:
    try:
        parsed = parse_escalate(text, KNOWN)
    except InvalidCommand as exc:
        assert exc.problems
        for problem in exc.problems:
            assert not _grammar_problems(problem), (problem, _grammar_problems(problem))
        return
    if isinstance(parsed, Declare):
        assert 0 < len(parsed.customer) <= MAX_CUSTOMER
        assert 0 < len(parsed.summary) <= MAX_SUMMARY
        assert set(parsed.criteria) <= set(KNOWN)
        assert len(set(parsed.criteria)) == len(parsed.criteria)
        assert parsed.arr is None or 1 <= parsed.arr <= 10**12
        assert CHANNEL_RE.fullmatch(channel_name(DAY, parsed.customer))
