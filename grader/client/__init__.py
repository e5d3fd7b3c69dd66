"""A Python client of the Grader API: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

    from grader.client import Client

    with Client("http://127.0.0.1:8000", api_key) as grader:
        submission = grader.submit("async-test-mastery/q4-counter-after-test", code, wait=True)
        print(submission.result.status if submission.result else submission.status)

Answers are the API's own typed models; errors are ``ApiError`` (the API said no: status,
code, message) and ``Unreachable``. Retries (429/503 after Retry-After, lost connections)
and idempotency keys are built in.
"""

from ..api.models import (
    BatchAnswer,
    EnvironmentInfo,
    ErrorDetail,
    PublicChallenge,
    PublicResult,
    PublicSubmission,
)
from ..domain.exporters import ResultFormat
from ..domain.observation import Limits, Observation, RunMode
from ..errors import ApiError, ClientError, Unreachable
from .aio import AsyncClient
from .core import RetryPolicy, RunRecord
from .sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "BatchAnswer",
    "Client",
    "ClientError",
    "EnvironmentInfo",
    "ErrorDetail",
    "Limits",
    "Observation",
    "PublicChallenge",
    "PublicResult",
    "PublicSubmission",
    "ResultFormat",
    "RetryPolicy",
    "RunMode",
    "RunRecord",
    "Unreachable",
]
