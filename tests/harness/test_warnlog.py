"""The harness's warning filters, run options and warning log (in-process, no Docker)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images" / "harness"))

from grader_harness.warnlog import (
    MAX_WARNINGS,
    OPTIONS_FILE,
    WarningLog,
    apply_filters,
    filter_specs,
    parse_filter,
    take_options,
)

from grader.domain import Limits, RunMode, RunRequest
from grader.sandbox import protocol


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("error", ("error", "", Warning, "", 0)),
        ("ignore::DeprecationWarning", ("ignore", "", DeprecationWarning, "", 0)),
        ("e::RuntimeWarning", ("error", "", RuntimeWarning, "", 0)),
        (
            "error:coroutine 'f':RuntimeWarning:app.mod:12",
            ("error", "coroutine\\ 'f'", RuntimeWarning, "app\\.mod\\Z", 12),
        ),
        ("::UserWarning", ("default", "", UserWarning, "", 0)),
    ],
)
def test_filters_parse_as_python_dash_w_does(
    spec: str, parsed: tuple[str, str, type[Warning], str, int]
) -> None:
    """Action (or its prefix), literal message and module, category by name, line number."""
    assert parse_filter(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("explode", ValueError),
        ("error::NoSuchWarning", AttributeError),
        ("error::ValueError", ValueError),
        ("error::no_such_module.Warning", ImportError),
        ("error:a:Warning:m:1:extra", ValueError),
    ],
)
def test_bad_filters_are_refused(spec: str, error: type[Exception]) -> None:
    """Unknown actions, unknown or non-warning categories and extra fields are errors."""
    with pytest.raises(error):
        parse_filter(spec)


def test_apply_filters_later_ones_win_and_bad_ones_are_skipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``error`` then ``ignore::UserWarning`` ignores UserWarning; a bad filter is skipped."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        apply_filters(["error", "ignore::UserWarning", "error::NoSuchWarning"])
        warnings.warn("quiet", UserWarning, stacklevel=1)
        with pytest.raises(RuntimeWarning, match="loud"):
            warnings.warn("loud", RuntimeWarning, stacklevel=1)
    assert shown == []
    assert capsys.readouterr().err == (
        "Invalid -W option ignored: module 'builtins' has no attribute 'NoSuchWarning'\n"
    )


def test_the_options_file_is_read_once_and_removed(tmp_path: Path) -> None:
    """The child reads the run's options and deletes the file before the snippet runs."""
    (tmp_path / OPTIONS_FILE).write_text(json.dumps({"filterwarnings": ["error", 3]}))
    options = take_options(str(tmp_path))
    assert filter_specs(options) == ["error"]
    assert not (tmp_path / OPTIONS_FILE).exists()
    assert take_options(str(tmp_path)) == {}


def test_a_malformed_options_file_means_no_options(tmp_path: Path) -> None:
    """Not JSON, or not an object: no options, and the file is still removed."""
    (tmp_path / OPTIONS_FILE).write_text("[1, 2]")
    assert take_options(str(tmp_path)) == {}
    assert not (tmp_path / OPTIONS_FILE).exists()


def test_the_worker_writes_the_file_the_harness_reads() -> None:
    """Options travel as OPTIONS_FILE in the submission's files, only when there are any."""
    request = RunRequest(
        mode=RunMode.SCRIPT, files={"main.py": "x = 1"}, entry="main.py", filterwarnings=("error",)
    )
    line = json.loads(protocol.HarnessSubmission.of(request, Limits()).line())
    assert protocol.OPTIONS_FILE == OPTIONS_FILE
    assert protocol.MAX_WARNINGS == MAX_WARNINGS
    assert json.loads(line["files"][OPTIONS_FILE]) == {"filterwarnings": ["error"]}
    plain = request.model_copy(update={"filterwarnings": ()})
    assert set(json.loads(protocol.HarnessSubmission.of(plain, Limits()).line())["files"]) == {
        "main.py"
    }


def test_the_log_records_what_python_shows_and_still_shows_it() -> None:
    """Each warning shown is logged (the first MAX_WARNINGS kept, all counted) and printed."""
    printed: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *rest: printed.append(str(message))
        log = WarningLog()
        log.install()
        for number in range(MAX_WARNINGS + 2):
            warnings.warn(f"w{number}", UserWarning, stacklevel=1)
    assert log.total == MAX_WARNINGS + 2
    assert len(log.entries) == MAX_WARNINGS
    message, category, filename, _, when, nodeid = log.entries[0]
    assert (str(message), category, filename, when, nodeid) == (
        "w0",
        UserWarning,
        __file__,
        None,
        None,
    )
    assert len(printed) == MAX_WARNINGS + 2
