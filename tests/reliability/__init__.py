"""The bad-input sweep: every public function given wrong arguments must raise a clear exception (a
ValueError or TypeError whose message names the argument), never return a silent result, crash or hang.

Each module's cases form one table, one line per case::

    case(lambda: <the call>, "<the bad value>", <exception class>, "<fragment of the message>")
"""
from __future__ import annotations

import contextlib
import re
import signal

import pytest

#: Seconds one bad call may take before it counts as a hang.
SECONDS = 10


class Hang(Exception):
    """A call still running after its time limit."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise :class:`Hang` in the block when it runs longer than ``seconds`` (SIGALRM, main thread)."""

    def handler(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def case(call, bad, exc, fragment):
    """One line of a table: ``call()`` given ``bad`` must raise ``exc`` with ``fragment`` in its message."""
    return pytest.param(call, exc, fragment, id=bad)


def check_raises(call, exc, fragment, seconds=SECONDS):
    """Assert that ``call()`` raises ``exc`` within ``seconds`` with ``fragment`` in the message."""
    with time_limit(seconds):
        with pytest.raises(exc) as info:
            call()
    message = str(info.value)
    if fragment.isidentifier():  # an argument's name: a whole word ("c" must not match "cannot")
        named = re.search(rf"(?<![\w.]){re.escape(fragment)}(?!\w)", message) is not None
    else:
        named = fragment in message
    assert named, f"the message {message!r} does not name {fragment!r}"
    return message
