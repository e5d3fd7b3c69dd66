"""The pure domain: environments, challenges, observations, comparison, verdicts, grading.

No I/O beyond reading files it is pointed at; no Docker, Redis, Celery or HTTP. Everything a
run produces is data (``Observation``); everything decided about it is data (``Verdict``).
"""

from .challenge import Challenge, Expectation, Kind, Option
from .compare import compare, grade_choice
from .environment import Environment, Manifest, discover, load_environment, normalize, parse_lock
from .grading import grade, refusal, request_for
from .limits import resolve_limits
from .loader import load_challenge, load_challenges
from .observation import (
    CapturedStream,
    CaseRun,
    ChildReportStatus,
    CollectionError,
    EnvironmentRef,
    ExceptionInfo,
    LearnerCode,
    Limits,
    Observation,
    RunMode,
    RunRequest,
    RunStatus,
    StateStatus,
    StateValue,
    SyntaxErrorInfo,
    TestOutcome,
    TestResult,
)
from .sandbox import Sandbox
from .submission import Role, Submission, SubmissionRequest, SubmissionStatus
from .validation import ChallengeReport, MatrixRow, matrix_row, validate
from .verdict import TestVerdict, Verdict, VerdictStatus

__all__ = [
    "CapturedStream",
    "CaseRun",
    "Challenge",
    "ChallengeReport",
    "ChildReportStatus",
    "CollectionError",
    "Environment",
    "EnvironmentRef",
    "ExceptionInfo",
    "Expectation",
    "Kind",
    "LearnerCode",
    "Limits",
    "Manifest",
    "MatrixRow",
    "Observation",
    "Option",
    "Role",
    "RunMode",
    "RunRequest",
    "RunStatus",
    "Sandbox",
    "StateStatus",
    "StateValue",
    "Submission",
    "SubmissionRequest",
    "SubmissionStatus",
    "SyntaxErrorInfo",
    "TestOutcome",
    "TestResult",
    "TestVerdict",
    "Verdict",
    "VerdictStatus",
    "compare",
    "discover",
    "grade",
    "grade_choice",
    "load_challenge",
    "load_challenges",
    "load_environment",
    "matrix_row",
    "normalize",
    "parse_lock",
    "refusal",
    "request_for",
    "resolve_limits",
    "validate",
]
