"""Pure domain: environments, observations (and later challenges, comparison, verdicts)."""

from .environment import Environment, Manifest, discover, load_environment, normalize, parse_lock
from .limits import resolve_limits
from .observation import (
    CapturedStream,
    ChildReportStatus,
    CollectionError,
    EnvironmentRef,
    ExceptionInfo,
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

__all__ = [
    "CapturedStream",
    "ChildReportStatus",
    "CollectionError",
    "Environment",
    "EnvironmentRef",
    "ExceptionInfo",
    "Limits",
    "Manifest",
    "Observation",
    "RunMode",
    "RunRequest",
    "RunStatus",
    "StateStatus",
    "StateValue",
    "SyntaxErrorInfo",
    "TestOutcome",
    "TestResult",
    "discover",
    "load_environment",
    "normalize",
    "parse_lock",
    "resolve_limits",
]
