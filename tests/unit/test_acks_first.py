"""Work after the ack waits for the requests being answered, but never longer than max_wait."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bot.acks_first import AcksFirst


def test_work_starts_when_the_last_answer_is_done() -> None:
    gate = AcksFirst(ThreadPoolExecutor(2), max_wait=5)
    started = threading.Event()
    try:
        with gate.answering():
            future = gate.submit(started.set)
            time.sleep(0.05)
            assert not started.is_set()  # held back while a request is being answered
        future.result(timeout=2)
        assert started.is_set()
    finally:
        gate.shutdown()


def test_work_is_held_back_at_most_max_wait() -> None:
    gate = AcksFirst(ThreadPoolExecutor(1), max_wait=0.05)
    try:
        with gate.answering():
            assert gate.submit(lambda: 42).result(timeout=2) == 42
    finally:
        gate.shutdown()


def test_without_requests_work_starts_at_once() -> None:
    # Held back it would wait an hour: done within the wait below is done without being held.
    gate = AcksFirst(ThreadPoolExecutor(1), max_wait=3600)
    try:
        gate.submit(lambda: None).result(timeout=30)
    finally:
        gate.shutdown()
