"""The bank's worker tasks on a real Redis with a fake sandbox: validation decides
publication; a regrade lists what changes and records it beside the old verdict."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from grader.adapters.bank import ChallengeBank
from grader.adapters.queue import queue_for
from grader.adapters.store import SubmissionStore, new_id
from grader.domain.bank import RegradeJob, RegradeRequest, RegradeStatus, RevisionStatus
from grader.domain.challenge import Challenge
from grader.domain.submission import Submission
from grader.domain.verdict import Verdict, VerdictStatus
from grader.sandbox.testing import FakeSandbox
from grader.testing import RedisServer
from tests.worker.support import ENV, PRINTS_TWO, printing, runtime_with
from worker.bank_tasks import regrade, validate_revision
from worker.runtime import Runtime
from worker.sweeper import sweep


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[SubmissionStore]:
    created = SubmissionStore.from_url(redis_server.url, retention_seconds=60)
    yield created
    created.close()


def runtime(store: SubmissionStore, sandbox: FakeSandbox, url: str) -> Runtime:
    current = runtime_with(store, sandbox, url)
    current.bank = ChallengeBank(store.client, 60)
    return current


def unique(**changes: object) -> Challenge:
    return PRINTS_TWO.model_copy(update={"id": f"c-{uuid.uuid4().hex[:8]}", **changes})


def expecting(base: Challenge, stdout: str) -> Challenge:
    """``base`` with another expected output (parsed again, as an upload would be)."""
    data = base.model_dump(mode="json", exclude_unset=True)
    data["expectation"] = {"output": {"stdout": stdout}}
    return Challenge.model_validate(data)


def published(current: Runtime, challenge: Challenge) -> str:
    assert current.bank is not None
    doc, _ = current.bank.upload(challenge, uploaded_by="teacher")
    validate_revision(current, doc.revision)
    decided = current.bank.revision(doc.revision)
    assert decided is not None and decided.status is RevisionStatus.PUBLISHED, decided
    return doc.revision


def test_a_revision_whose_claims_hold_is_published(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """Validation runs the code as ``validate`` does (3 runs) and publishes it, with a matrix."""
    sandbox = printing("2\n")
    current = runtime(store, sandbox, redis_server.url)
    challenge = unique()
    revision = published(current, challenge)
    assert current.bank is not None
    doc = current.bank.revision(revision)
    assert doc is not None and doc.report is not None and doc.matrix is not None
    assert [c.name for c in doc.report.checks] == ["code meets the expectation"]
    assert len(sandbox.runs) == 3 + len(doc.matrix.cells)
    assert current.bank.published()[1][challenge.qualified_id] == revision


def test_a_refuted_claim_rejects_with_the_diff(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """Code that prints something else: rejected, the summary and the diff say why."""
    current = runtime(store, printing("3\n"), redis_server.url)
    assert current.bank is not None
    doc, _ = current.bank.upload(unique(), uploaded_by="teacher")
    validate_revision(current, doc.revision)
    decided = current.bank.revision(doc.revision)
    assert decided is not None and decided.report is not None
    assert decided.status is RevisionStatus.REJECTED
    assert decided.summary() == f"code meets the expectation [{ENV}]: output does not match (exact)"
    assert "-2\n+3" in decided.report.checks[0].observed
    assert doc.challenge.qualified_id not in current.bank.published()[1]


def test_limits_above_the_maxima_reject_without_a_run(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A challenge asking for more than this service allows is rejected, nothing run."""
    sandbox = printing("2\n")
    current = runtime(store, sandbox, redis_server.url)
    assert current.bank is not None
    doc, _ = current.bank.upload(unique(limits={"wall_seconds": 1000}), uploaded_by="t")
    validate_revision(current, doc.revision)
    decided = current.bank.revision(doc.revision)
    assert decided is not None and decided.status is RevisionStatus.REJECTED
    assert decided.summary().startswith("limits within this service's maxima: ")
    assert sandbox.runs == []


def graded(store: SubmissionStore, challenge: Challenge, revision: str, status: str) -> str:
    submission = Submission(
        id=new_id(),
        key_id="platform",
        challenge_id=challenge.qualified_id,
        revision=revision,
        environment=ENV,
        code="print(2)",
    )
    store.create(submission)
    store.finish(submission, Verdict(status=VerdictStatus(status)))
    return submission.id


def job_for(
    current: Runtime, challenge: Challenge, *, dry_run: bool, **request: object
) -> RegradeJob:
    assert current.bank is not None
    record = current.bank.record(challenge.qualified_id)
    assert record is not None and record.published is not None
    job = RegradeJob(
        id=new_id(),
        challenge_id=challenge.qualified_id,
        to_revision=record.published,
        request=RegradeRequest.model_validate(request),
        dry_run=dry_run,
    )
    current.bank.save_job(job)
    return job


def test_a_dry_run_lists_the_changes_and_records_nothing(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """Passed under revision 1, failed under revision 2: listed; the record is untouched."""
    current = runtime(store, printing("2\n"), redis_server.url)
    first = unique()
    old = published(current, first)
    passed = graded(store, first, old, "passed")
    current.sandbox = printing("3\n")
    new = published(current, expecting(first, "3\n"))
    current.sandbox = printing("2\n")  # the learner's code still prints 2
    current_one = graded(store, first, new, "failed")  # graded with the new revision already
    job = regrade(current, job_for(current, first, dry_run=True))
    assert (job.status, job.regraded, job.unchanged) == (RegradeStatus.DONE, 1, 0)
    assert [(c.submission_id, c.before, c.after, c.from_revision) for c in job.changes] == [
        (passed, VerdictStatus.PASSED, VerdictStatus.FAILED, old)
    ]
    for submission_id in (passed, current_one):
        stored = store.get(submission_id)
        assert stored is not None and stored.regrades == []


def test_a_regrade_records_beside_the_old_verdict_once(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """Without dry_run each new verdict is kept beside the old; a redelivery adds nothing."""
    current = runtime(store, printing("2\n"), redis_server.url)
    first = unique()
    old = published(current, first)
    passed = graded(store, first, old, "passed")
    current.sandbox = printing("3\n")
    new = published(current, expecting(first, "3\n"))
    current.sandbox = printing("2\n")
    job = job_for(current, first, dry_run=False, from_revision=old)
    regrade(current, job)
    regrade(current, job.model_copy(update={"changes": [], "regraded": 0, "unchanged": 0}))
    stored = store.get(passed)
    assert stored is not None and stored.verdict is not None
    assert stored.verdict.status is VerdictStatus.PASSED
    assert [(r.job, r.revision, r.status) for r in stored.regrades] == [
        (job.id, new, VerdictStatus.FAILED)
    ]


def test_another_environment_reruns_every_revision(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """With an environment, submissions of the published revision are re-run there too."""
    sandbox = printing("2\n")
    current = runtime(store, sandbox, redis_server.url)
    first = unique()
    revision = published(current, first)
    graded(store, first, revision, "passed")
    before = len(sandbox.runs)
    job = regrade(current, job_for(current, first, dry_run=True, environment="env-b"))
    assert (job.regraded, job.unchanged, job.changes) == (1, 1, [])
    assert [env for env, _, _ in sandbox.runs[before:]] == ["env-b"]


def test_a_lost_validation_is_sent_again_by_the_sweeper(
    store: SubmissionStore, redis_server: RedisServer
) -> None:
    """A revision validating long after its task was sent gets its task again, once per due
    period; once decided, it is never sent again."""
    current = runtime(store, printing("2\n"), redis_server.url)
    assert current.bank is not None
    doc, _ = current.bank.upload(unique(), uploaded_by="teacher")  # no task sent: as if lost
    queue = queue_for(ENV)
    before = store.client.llen(queue)
    later = time.time() + current.budget.queued_stale + 1
    assert doc.revision in sweep(current, now=later).validations
    assert store.client.llen(queue) == before + 1
    assert doc.revision not in sweep(current, now=later).validations  # claimed: not yet due
    validate_revision(current, doc.revision)
    much_later = later + current.budget.queued_stale + 1
    assert doc.revision not in sweep(current, now=much_later).validations
