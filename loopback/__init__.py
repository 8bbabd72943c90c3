"""Slack and Anthropic on 127.0.0.1, and Slack's client side: for the tests, the sandbox and
the benchmarks.

``server`` is the one loopback HTTP server every fake is built on; ``slack`` is the Slack
workspace and Web API (with ``slack.client`` building the requests Slack sends an app and
``slack.driver`` sending them); ``socket_mode`` is Slack's Socket Mode endpoint; ``anthropic``
is the Messages API; ``harness`` holds what runs the app under test (an inline executor,
``warroom run`` as a process). The app under test is given to this package (an App object or
a URL): nothing here imports ``bot``, ``agents``, ``protocols`` or ``tests``.
"""
