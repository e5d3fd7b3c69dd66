"""A challenge that could only crash grading never reaches a learner: the real service refuses
to load it, with its file, line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from grader.api.app import create_app
from grader.errors import ChallengeError
from grader.testing import RedisServer, service_settings
from tests.conftest import OLD_ENV

BAD_REGEX = {
    "title": "Print hello",
    "kind": "output",
    "prompt": "Print hello.",
    "environment": OLD_ENV,
    "code": 'print("hello")',
    "expectation": {"output": {"match": "regex", "stdout": "(hello"}},
}


@pytest.fixture
def challenges_root(tmp_path: Path) -> Path:
    """A challenge set whose one challenge has a regex Python cannot compile."""
    folder = tmp_path / "challenges" / "broken"
    folder.mkdir(parents=True)
    (folder / "bad-regex.yaml").write_text(yaml.safe_dump(BAD_REGEX))
    return folder.parent


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own."""
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.stop(graceful=False)


def test_an_invalid_regex_never_reaches_a_learner(
    own_redis: RedisServer, challenges_root: Path
) -> None:
    """Regexes are compiled at load: the service refuses to start on such a challenge, naming
    the file, the line and the field, before any learner can submit to it. (Before, it loaded,
    and each submission to it ended failed when the comparison raised ``re.error``; a regex
    that still slipped through is a ``sandbox_error`` verdict, ``tests/worker/test_tasks.py``.)"""
    settings = service_settings(own_redis.url)
    settings.api.challenges_root = challenges_root
    path = challenges_root / "broken" / "bad-regex.yaml"
    line = next(
        number
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if text.lstrip().startswith("stdout:")
    )
    with pytest.raises(ChallengeError) as refused:
        create_app(settings)
    assert str(refused.value) == (
        f"{path}:{line}: field 'expectation.output.stdout': Value error, invalid regex "
        "'(hello': missing ), unterminated subpattern at position 0"
    )
