"""Set files (``_set.yaml``): loaded beside the challenges, never as one; badge rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.domain.loader import challenge_files, load_sets
from grader.domain.sets import Badge, badge_holds
from grader.errors import ChallengeError

ROOT = Path(__file__).resolve().parents[3] / "challenges"


def test_the_seed_set_declares_its_badge() -> None:
    """async-test-mastery awards 'Async Test Mastery' for all correct; late answers do not score."""
    declared = load_sets(ROOT)["async-test-mastery"]
    assert declared.badge is not None
    assert (declared.badge.name, declared.badge.rule, declared.late_scores) == (
        "Async Test Mastery",
        "all_correct",
        False,
    )


def test_the_set_file_is_not_a_challenge() -> None:
    """Listing a set folder's challenge files leaves _set.yaml out."""
    names = [p.name for p in challenge_files([ROOT / "async-test-mastery"])]
    assert "_set.yaml" not in names
    assert len(names) == 5


def test_a_wrong_set_file_names_file_line_and_field(tmp_path: Path) -> None:
    """A typo in _set.yaml is refused at its line, like a challenge file's."""
    folder = tmp_path / "quiz"
    folder.mkdir()
    (folder / "_set.yaml").write_text("title: Quiz\nbadge:\n  name: B\n  rule: most_correct\n")
    with pytest.raises(ChallengeError) as raised:
        load_sets(tmp_path)
    assert str(raised.value).startswith(f"{folder / '_set.yaml'}:4: field 'badge.rule': ")


@pytest.mark.parametrize(
    ("badge", "passed", "score", "holds"),
    [
        (Badge(name="b"), 5, 1.0, True),
        (Badge(name="b"), 4, 0.8, False),
        (Badge(name="b", rule="min_score", min_score=0.8), 4, 0.8, True),
        (Badge(name="b", rule="min_score", min_score=0.8), 3, 0.6, False),
    ],
)
def test_badge_rules(badge: Badge, passed: int, score: float, holds: bool) -> None:
    """all_correct needs every challenge; min_score the set score."""
    assert badge_holds(badge, passed, 5, score) is holds
