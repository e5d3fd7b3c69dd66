"""The worker's unit tests run on a Redis of their own: they leave submissions running in
processes without a heartbeat, which the sweepers of a session's real workers would pick up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grader.testing import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("worker-redis"))
    server.start()
    yield server
    server.stop(graceful=False)
