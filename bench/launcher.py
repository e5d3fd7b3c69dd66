"""Runs one snippet *without* our harness: the in-container program of the baseline and epicbox.

It does the same work as the harness's child (import, then run the snippet as a script or
under pytest with the harness's session options, imported from the image) and nothing else:
no supervisor, no fork, no report channel. The source is passed to ``python -c`` (baseline,
snippet on stdin) or uploaded as a file (epicbox, snippet uploaded next to it). Its last
stderr line is the container's peak memory read from the memory cgroup, the same counter the
harness reports for our runs.

Usage: ``launcher.py MODE [PATH]`` with MODE ``script`` or ``pytest``; without PATH the
snippet is read from stdin and written to ``/sandbox``.
"""

import json
import os
import sys

WORKDIR = "/sandbox"
PYTEST_OUTPUT = ["-q", "-s", "--rootdir", WORKDIR]
"""Prints to the terminal; the session options are the harness's own (imported in the image)."""
PEAK_FILES = ("/sys/fs/cgroup/memory/memory.max_usage_in_bytes", "/sys/fs/cgroup/memory.peak")


def peak_bytes() -> int | None:
    """The container's peak memory (cgroup v1, then v2), or None where it is not visible."""
    for path in PEAK_FILES:
        try:
            with open(path, encoding="ascii") as handle:  # noqa: PTH123  no pathlib import cost
                return int(handle.read().strip())
        except (OSError, ValueError):
            continue
    return None


def main() -> int:
    mode = sys.argv[1]
    if len(sys.argv) > 2:
        path = sys.argv[2]
        with open(path, encoding="utf-8") as handle:  # noqa: PTH123
            source = handle.read()
    else:
        path = os.path.join(WORKDIR, "test_snippet.py" if mode == "pytest" else "main.py")  # noqa: PTH118
        source = sys.stdin.read()
        with open(path, "w", encoding="utf-8") as handle:  # noqa: PTH123
            handle.write(source)
    sys.path.insert(0, WORKDIR)
    if mode == "pytest":
        import pytest  # noqa: PLC0415  imported in the container only
        from grader_harness.protocol import PYTEST_SESSION_OPTIONS  # noqa: PLC0415

        status = int(pytest.main([path, *PYTEST_SESSION_OPTIONS, *PYTEST_OUTPUT]))
    else:
        exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path})  # noqa: S102
        status = 0
    sys.stdout.flush()
    sys.stderr.write(json.dumps({"bench_peak_bytes": peak_bytes()}) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
