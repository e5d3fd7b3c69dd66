"""The challenge bank on a real redis-server: seeding, revisions, publication, the cached view."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from grader.adapters.bank import ChallengeBank, PublishedChallenges, challenge_for
from grader.adapters.redis_keys import BANK_SUBMISSIONS
from grader.adapters.store import SubmissionStore, new_id
from grader.domain.bank import RevisionStatus, revision_of
from grader.domain.challenge import Challenge
from grader.domain.submission import Submission
from grader.domain.validation import ChallengeReport, Check
from grader.errors import Conflict, NotFound
from grader.testing import RedisServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own: every test starts from an empty bank."""
    created = RedisServer(tmp_path_factory.mktemp("bank-redis"))
    created.start()
    yield created
    created.stop(graceful=False)


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(server.url)
    connection.flushdb()
    yield connection
    connection.close()


@pytest.fixture
def bank(client: redis.Redis) -> ChallengeBank:
    return ChallengeBank(client, retention_seconds=60)


def challenge(ident: str = "hello", text: str = "hello") -> Challenge:
    return Challenge.model_validate(
        {
            "set": "demo",
            "id": ident,
            "title": "Greeting",
            "kind": "output",
            "prompt": "Print it.",
            "code": f"print({text!r})",
            "expectation": {"output": {"stdout": f"{text}\n"}},
        }
    )


def report(ok: bool, qid: str = "demo/hello") -> ChallengeReport:
    check = Check(name="code meets the expectation", ok=ok, detail="" if ok else "differs")
    return ChallengeReport(challenge=qid, kind="output", checks=(check,))


def test_seeding_happens_once_whoever_starts_first(bank: ChallengeBank) -> None:
    """Of eight processes seeding at once exactly one writes; all then see the whole set."""
    bundled = [challenge("a"), challenge("b")]
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(bank.seed(bundled))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    version, published = bank.published()
    assert published == {c.qualified_id: revision_of(c) for c in bundled}
    assert version == 1
    assert bank.seed([challenge("c")]) is False  # never again, even with other files


def test_an_upload_validates_before_it_is_published(bank: ChallengeBank) -> None:
    """A new challenge is validating and unpublished until a passing report is recorded."""
    doc, new = bank.upload(challenge(), uploaded_by="teacher")
    assert (doc.status, new) == (RevisionStatus.VALIDATING, True)
    assert bank.published()[1] == {}
    decided = bank.record_validation(doc.revision, report(True), None)
    assert decided is not None and decided.status is RevisionStatus.PUBLISHED
    assert bank.published()[1] == {"demo/hello": doc.revision}
    record = bank.record("demo/hello")
    assert record is not None
    assert (record.head, record.published, record.revisions) == (
        doc.revision,
        doc.revision,
        [doc.revision],
    )


def test_a_failing_report_rejects_and_keeps_the_old_revision_published(
    bank: ChallengeBank,
) -> None:
    """A refuted revision is rejected; learners keep the revision published before it."""
    first, _ = bank.upload(challenge(), uploaded_by="teacher")
    bank.record_validation(first.revision, report(True), None)
    second, new = bank.upload(challenge(text="bye"), uploaded_by="teacher")
    assert new is True and second.revision != first.revision
    decided = bank.record_validation(second.revision, report(False), None)
    assert decided is not None and decided.status is RevisionStatus.REJECTED
    assert decided.summary() == "code meets the expectation: differs"
    assert bank.published()[1] == {"demo/hello": first.revision}
    assert bank.record_validation(second.revision, report(True), None) == decided  # decided


def test_the_same_content_again_is_unchanged(bank: ChallengeBank) -> None:
    """Uploading the head's exact content stores nothing new."""
    first, _ = bank.upload(challenge(), uploaded_by="teacher")
    again, new = bank.upload(challenge(), uploaded_by="teacher")
    assert (again.revision, new) == (first.revision, False)


def test_a_revision_that_could_not_be_validated_is_validated_again(bank: ChallengeBank) -> None:
    """After our failure (``error``) the same content uploaded again is validating anew."""
    doc, _ = bank.upload(challenge(), uploaded_by="teacher")
    failed = bank.record_validation(doc.revision, None, None, error="engine down")
    assert failed is not None and failed.status is RevisionStatus.ERROR
    assert failed.summary() == "engine down"
    again, new = bank.upload(challenge(), uploaded_by="teacher")
    assert (again.status, new) == (RevisionStatus.VALIDATING, True)
    assert again.error is None


def test_a_superseded_revision_that_passes_is_not_published(bank: ChallengeBank) -> None:
    """Validations finishing out of order never publish an upload that a newer one replaced."""
    old, _ = bank.upload(challenge(), uploaded_by="teacher")
    newer, _ = bank.upload(challenge(text="bye"), uploaded_by="teacher")
    bank.record_validation(old.revision, report(True), None)
    assert bank.published()[1] == {}
    bank.record_validation(newer.revision, report(True), None)
    assert bank.published()[1] == {"demo/hello": newer.revision}


def test_back_to_a_published_revision_republishes_it(bank: ChallengeBank) -> None:
    """Reverting to content validated before publishes it again without a new validation."""
    first, _ = bank.upload(challenge(), uploaded_by="teacher")
    bank.record_validation(first.revision, report(True), None)
    second, _ = bank.upload(challenge(text="bye"), uploaded_by="teacher")
    bank.record_validation(second.revision, report(True), None)
    back, new = bank.upload(challenge(), uploaded_by="teacher")
    assert (back.status, new) == (RevisionStatus.PUBLISHED, True)
    assert bank.published()[1] == {"demo/hello": first.revision}


def test_create_refuses_an_existing_challenge(bank: ChallengeBank) -> None:
    """POST semantics: a challenge that exists is a conflict (PUT replaces it)."""
    bank.upload(challenge(), uploaded_by="teacher", create=True)
    with pytest.raises(Conflict, match="PUT /v1/challenges/demo/hello replaces it"):
        bank.upload(challenge(text="bye"), uploaded_by="teacher", create=True)


def test_retiring_unpublishes_and_keeps_every_revision(bank: ChallengeBank) -> None:
    """A retired challenge leaves the published map; its revisions stay readable."""
    doc, _ = bank.upload(challenge(), uploaded_by="teacher")
    bank.record_validation(doc.revision, report(True), None)
    retired = bank.retire("demo/hello")
    assert (retired.retired, retired.published) == (True, None)
    assert bank.published()[1] == {}
    kept = bank.revision(doc.revision)
    assert kept is not None and kept.challenge == challenge()
    with pytest.raises(NotFound):
        bank.retire("demo/nothing")


def test_the_cached_view_follows_every_change(bank: ChallengeBank, client: redis.Redis) -> None:
    """Two processes' views: one publishes, the other sees it on its next read, no restart."""
    api = PublishedChallenges(ChallengeBank(client, 60), [challenge("seeded")])
    worker = PublishedChallenges(ChallengeBank(client, 60), [challenge("seeded")])
    assert list(api) == ["demo/seeded"]
    assert set(worker) == {"demo/seeded"}
    doc, _ = bank.upload(challenge(), uploaded_by="teacher")
    assert worker.get("demo/hello") is None
    bank.record_validation(doc.revision, report(True), None)
    assert worker.get("demo/hello") == challenge()
    assert worker.revision("demo/hello") == doc.revision
    assert len(api) == 2
    bank.retire("demo/hello")
    assert "demo/hello" not in worker
    assert sorted(api.keys()) == ["demo/seeded"]


def test_a_submission_is_graded_with_its_own_revision(
    bank: ChallengeBank, client: redis.Redis
) -> None:
    """The revision a submission recorded is used even after a newer one is published."""
    view = PublishedChallenges(bank)
    first, _ = bank.upload(challenge(), uploaded_by="teacher")
    bank.record_validation(first.revision, report(True), None)
    second, _ = bank.upload(challenge(text="bye"), uploaded_by="teacher")
    bank.record_validation(second.revision, report(True), None)
    assert challenge_for(view, "demo/hello", first.revision) == challenge()
    assert challenge_for(view, "demo/hello", None) == challenge(text="bye")
    assert challenge_for(view, "demo/hello", "0" * 16) == challenge(text="bye")
    assert challenge_for(view, "demo/other", first.revision) is None


def test_stored_submissions_are_indexed_by_challenge(
    bank: ChallengeBank, client: redis.Redis
) -> None:
    """What a regrade re-runs: every stored submission of the challenge, oldest first."""
    store = SubmissionStore(client, retention_seconds=60)
    ids = []
    for _ in range(3):
        submission = Submission(id=new_id(), key_id="k", challenge_id="demo/hello", code="x")
        store.create(submission)
        ids.append(submission.id)
    assert bank.submissions_of("demo/hello", 10) == ids
    assert bank.submissions_of("demo/hello", 2) == ids[1:]
    assert 0 < client.ttl(f"{BANK_SUBMISSIONS}demo/hello") <= 60
    bank.forget_submissions("demo/hello", ids[:1])
    assert bank.submissions_of("demo/hello", 10) == ids[1:]


def test_a_revision_reads_back_as_the_same_challenge(bank: ChallengeBank) -> None:
    """Stored as written: rules that depend on which fields were set still hold on reading."""
    hidden = Challenge.model_validate(
        {
            "set": "demo",
            "id": "tests",
            "title": "T",
            "kind": "tests",
            "mode": "pytest",
            "prompt": "P",
            "code": "def f():\n    return 1\n",
            "expectation": {
                "tests": {"file": "test_hidden.py", "code": "def test_f():\n    pass\n"}
            },
        }
    )
    doc, _ = bank.upload(hidden, uploaded_by="teacher")
    read = bank.revision(doc.revision)
    assert read is not None and read.challenge == hidden
    assert revision_of(read.challenge) == doc.revision
