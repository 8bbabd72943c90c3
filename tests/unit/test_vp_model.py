"""The default model is the newest Opus id the installed SDK lists."""

from __future__ import annotations

import re
import typing

from anthropic.types import Model

from agents.vp import VPAgent, newest_opus


def test_newest_opus_is_an_opus_id_of_the_sdk_and_no_other_is_newer() -> None:
    ids = [a for arg in typing.get_args(Model) for a in typing.get_args(arg) or (arg,)]
    chosen = newest_opus()
    assert chosen in ids and chosen.startswith("claude-opus-")

    def version(model_id: str) -> tuple[int, int]:
        m = re.fullmatch(r"claude-opus-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?", model_id)
        return (int(m[1]), int(m[2] or 0)) if m else (-1, -1)

    assert all(version(i) <= version(chosen) for i in ids if isinstance(i, str))


def test_the_client_is_built_once_with_explicit_limits() -> None:
    agent = VPAgent(api_key="sk-test", base_url="http://127.0.0.1:9", timeout=12, max_retries=1)
    try:
        assert agent.client is not None
        assert agent.client.timeout == 12 and agent.client.max_retries == 1
        assert str(agent.client.base_url).startswith("http://127.0.0.1:9")
        assert agent.model == newest_opus()
    finally:
        agent.close()
    assert VPAgent(api_key=None).client is None
