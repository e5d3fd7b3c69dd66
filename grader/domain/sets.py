"""Challenge sets: what a folder of challenges declares as a whole, in ``<set>/_set.yaml``.

A set may declare a badge (earned once per learner, when its rule holds) and whether late
answers score for its challenges (a challenge's own ``late_scores`` wins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SET_FILE = "_set.yaml"
"""The set's own file in its folder; every other YAML file there is a challenge."""


class Badge(BaseModel):
    """A badge a set awards. ``all_correct``: every challenge passed (a late pass counts only
    where late answers score); ``min_score``: the set score reaches ``min_score``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    rule: Literal["all_correct", "min_score"] = "all_correct"
    min_score: float = Field(default=1.0, gt=0, le=1)


class ChallengeSet(BaseModel):
    """The declarations of one set (a folder without ``_set.yaml`` declares nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str = ""
    description: str = ""
    badge: Badge | None = None
    late_scores: bool = False
    """Whether an answer after its challenge's deadline scores (default: graded, not scored)."""


class EarnedBadge(BaseModel):
    """A badge as recorded for one learner: once, with the time and the submission that
    earned it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: str
    name: str
    earned_at: datetime
    submission_id: str


def badge_holds(badge: Badge, passed: int, members: int, score: float) -> bool:
    """Whether a learner with ``passed`` of ``members`` challenges (scoring passes) and this
    set score has earned ``badge``."""
    if members == 0:
        return False
    if badge.rule == "all_correct":
        return passed >= members
    return score >= badge.min_score
