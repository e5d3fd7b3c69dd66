"""Hostile learner sides: lies on the channel and lying objects never make the judge pass."""

# mypy: disable-error-code="import-not-found"
# ruff: noqa: PLC0415  (each test imports the learner module its own learner side serves)

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from grader_harness.rpc import ProtocolError, RemoteError, RemoteTimeout, RpcError, SessionClosed

from .conftest import Learner, run_hidden

# Answers the import of ``solution`` with a handle, then runs the test's lie on the next request.
IMPORT_THEN = textwrap.dedent(
    """
    import os
    request = channel.receive(None)
    channel.send({"re": request["id"], "ok": {"$handle": 1, "type": ["solution", "M"], "caps": []}})
    request = channel.receive(None)
    """
)


def lie(learner: Callable[..., Learner], body: str, timeout: float = 20.0) -> Learner:
    script = IMPORT_THEN + textwrap.dedent(body) + "\ntime.sleep(60)\n"
    return learner({}, script=script, timeout=timeout)


LIES = {
    "unasked-response": (
        'channel.send({"re": request["id"] + 7, "ok": True})',
        ProtocolError,
        r"a response to request \d+, which is not awaited",
    ),
    "extra-key": (
        'channel.send({"re": request["id"], "ok": 1, "extra": 2})',
        ProtocolError,
        "a response holds exactly 're' and 'ok'",
    ),
    "string-id": ('channel.send({"re": "one", "ok": 1})', ProtocolError, "'re' must be int"),
    "not-a-message": ('channel.send({"hello": 1})', ProtocolError, "missing 'id'"),
    "deep": (
        'os.write(channel.write_fd, b"{\\"re\\": 2, \\"ok\\": " + b"[" * 100000 + b"\\n")',
        ProtocolError,
        "InvalidFrame: nested deeper than",
    ),
    "million": (
        'os.write(channel.write_fd, b\'{"re": 2, "ok": [\' + b"0," * 10**6 + b"0]}\\n")',
        ProtocolError,
        "FrameTooLarge",
    ),
    "bad-handle": (
        'channel.send({"re": request["id"], "ok": {"$handle": 5, "type": ["m"], "caps": []}})',
        ProtocolError,
        r"a handle's type is \[module, qualname\]",
    ),
    "forged-callback": (
        'channel.send({"re": request["id"], "ok": {"$callback": 3}})',
        ProtocolError,
        "unknown callback 3",
    ),
    "junk-after-data": (
        'channel.send({"re": request["id"], "ok": 5}); channel.send({"re": 99, "ok": 1})',
        ProtocolError,
        "a response to request 99",
    ),
    "exit": ("sys.exit(0)", SessionClosed, "closed"),
}


@pytest.mark.parametrize(("body", "error", "message"), list(LIES.values()), ids=list(LIES))
def test_lies_on_the_channel_end_the_session(
    learner: Callable[..., Learner], body: str, error: type[Exception], message: str
) -> None:
    """Every malformed or unasked answer is a precise RpcError; every later call fails too."""
    lie(learner, body)
    import solution

    with pytest.raises(error, match=message):
        solution.value  # noqa: B018
        solution.value  # noqa: B018  (the junk after a good answer is read here)
    with pytest.raises(error, match="the session is over"):
        solution.other  # noqa: B018


def test_a_learner_that_never_answers_times_out(learner: Callable[..., Learner]) -> None:
    """A silent learner side makes the call fail with RemoteTimeout, not hang."""
    lie(learner, "pass", timeout=1.0)
    import solution

    with pytest.raises(RemoteTimeout, match=r"did not answer within 1 s"):
        solution.value  # noqa: B018


def test_a_flood_of_requests_ends_at_the_deadline(learner: Callable[..., Learner]) -> None:
    """A learner that floods requests and reads nothing back cannot keep the judge busy."""
    flood = (
        "while True:\n"
        '    channel.send({"id": 1, "op": "call", "target": 1, "args": [], "kwargs": {}})'
    )
    lie(learner, flood, timeout=2.0)
    import solution

    with pytest.raises(RemoteTimeout):
        solution.value  # noqa: B018


LYING = textwrap.dedent(
    """
    import random, threading

    class Liar:
        def __eq__(self, other):
            return True
        def __ne__(self, other):
            return False
        def __hash__(self):
            return random.randrange(10**9)
        def __str__(self):
            return "42"
        def __bool__(self):
            return True

    class Text(str):
        def __eq__(self, other):
            return True
        __hash__ = str.__hash__

    def answer():
        return Liar()

    def text():
        return Text("nope")

    DATA = [1, 2, 3]
    go = threading.Event()

    def _mutate():
        go.wait()
        DATA.append(99)
        DATA[0] = "changed"

    worker = threading.Thread(target=_mutate, daemon=True)
    worker.start()

    def data():
        return DATA

    def mutate_now():
        go.set()
        worker.join()
        return len(DATA)

    def exit_now():
        raise SystemExit(0)

    def interrupt():
        raise KeyboardInterrupt

    def skip():
        import pytest
        pytest.skip("not today")

    def big():
        return list(range(10**6))

    class Swallow:
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return True
    """
)


def test_lying_equality_stays_on_the_learner_side(learner: Callable[..., Learner]) -> None:
    """An always-equal object or str subclass is a proxy: equal only to itself."""
    learner({"solution.py": LYING})
    import solution

    liar = solution.answer()
    assert (liar == 42) is False
    assert (liar == 42) is False
    assert (liar != 42) is True
    assert liar not in [42, "42", None]
    same = liar
    assert liar == same
    assert hash(liar) == hash(liar)
    assert str(liar) == "42"  # text to show, never data: 42 != "42"
    assert (solution.text() == "nope") is False
    assert bool(liar) is True


def test_by_value_results_are_immune_to_later_mutation(learner: Callable[..., Learner]) -> None:
    """A call's result is a snapshot: a learner thread changing it afterwards changes nothing."""
    learner({"solution.py": LYING})
    import solution

    before = solution.data()
    assert solution.mutate_now() == 4
    assert before == [1, 2, 3]
    assert solution.data() == ["changed", 2, 3, 99]


@pytest.mark.parametrize(
    ("function", "name"),
    [("exit_now", "SystemExit"), ("interrupt", "KeyboardInterrupt"), ("skip", "Skipped")],
)
def test_learner_control_flow_exceptions_are_plain_errors(
    learner: Callable[..., Learner], function: str, name: str
) -> None:
    """SystemExit, KeyboardInterrupt and pytest.skip from the learner are RemoteErrors here."""
    learner({"solution.py": LYING})
    import solution

    with pytest.raises(RemoteError) as caught:
        getattr(solution, function)()
    assert type(caught.value).__name__ == name
    assert isinstance(caught.value, Exception)
    assert not isinstance(caught.value, (SystemExit, KeyboardInterrupt, pytest.skip.Exception))


def test_a_huge_result_fails_the_call_not_the_judge(learner: Callable[..., Learner]) -> None:
    """A million-element result is a clear error for that call; the session carries on."""
    learner({"solution.py": LYING})
    import solution

    with pytest.raises(RemoteError, match="more than"):
        solution.big()
    assert solution.data() == [1, 2, 3]


def test_a_learner_exit_cannot_swallow_a_judge_assertion(learner: Callable[..., Learner]) -> None:
    """``__exit__`` returning True swallows learner errors, never the judge's AssertionError."""
    learner({"solution.py": LYING})
    import solution

    with pytest.raises(AssertionError), solution.Swallow():
        raise AssertionError("judge-side failure")
    with solution.Swallow():
        solution.exit_now()


def test_the_judge_refuses_ops_other_than_call(learner: Callable[..., Learner]) -> None:
    """A learner asking the judge for anything but a callback call gets an error answer."""
    script = textwrap.dedent(
        """
        request = channel.receive(None)
        channel.send({"id": 1, "op": "getattr", "target": 1, "name": "__globals__"})
        answer = channel.receive(None)
        ok = "error" in answer and "only answers 'call'" in answer["error"]["message"]
        channel.send({"re": request["id"], "ok": {"$handle": 1, "type": ["m", "M"], "caps": []}})
        request = channel.receive(None)
        channel.send({"re": request["id"], "ok": ok})
        time.sleep(60)
        """
    )
    learner({}, script=script)
    import solution

    assert solution.flag is True


def test_rpc_errors_share_one_base() -> None:
    """Protocol, timeout and closed-channel failures are all RpcError."""
    assert issubclass(ProtocolError, RpcError)
    assert issubclass(RemoteTimeout, RpcError)
    assert issubclass(SessionClosed, RpcError)


def test_a_result_over_the_frame_cap_fails_the_call(learner: Callable[..., Learner]) -> None:
    """A result whose frame would exceed the cap is a FrameTooLarge error for that call."""
    learner({"solution.py": "def big():\n    return ['x' * 1000] * 5000\n"})
    import solution

    with pytest.raises(RemoteError, match="over 1048576") as caught:
        solution.big()
    assert type(caught.value).__name__ == "FrameTooLarge"


def test_a_broken_protocol_never_satisfies_pytest_raises_exception(
    learner: Callable[..., Learner],
) -> None:
    """RpcError is not an Exception: breaking the channel cannot pass ``raises(Exception)``."""
    lie(learner, 'channel.send({"re": 999, "ok": True})')
    import solution

    with pytest.raises(ProtocolError):
        try:
            solution.value  # noqa: B018
        except Exception:
            pytest.fail("an RpcError was caught as an Exception")
    assert not issubclass(RpcError, Exception)


def test_a_broken_protocol_fails_hidden_tests(
    learner: Callable[..., Learner], tmp_path: Path
) -> None:
    """In a hidden pytest run, a protocol break fails the test, even under raises(Exception)."""
    lie(learner, 'channel.send({"re": 999, "ok": True})')
    hidden = textwrap.dedent(
        """
        import pytest

        def test_expects_an_error():
            with pytest.raises(Exception):
                from solution import value

        def test_later():
            from solution import other
            assert other == 1
        """
    )
    result = run_hidden(tmp_path / "judge", hidden)
    assert result.outcomes == {"test_expects_an_error": "failed", "test_later": "failed"}
    assert "ProtocolError" in result.messages["test_expects_an_error"]
