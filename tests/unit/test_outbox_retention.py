"""When retained outbox rows may go, and when the broker has lost them (pure rules)."""

from __future__ import annotations

from shared.messaging.retention import Retained, judge, releasable_before


def retained(last_offset: int = 99, age_s: float = 60.0) -> Retained:
    return Retained("incident.reported", 3, "epoch-b", last_offset, "ev-99", age_s)


def test_released_below_the_slowest_group() -> None:
    assert releasable_before(retained(), "intact", [80, 50], grace_s=30) == 50


def test_a_group_without_a_commit_holds_everything() -> None:
    assert releasable_before(retained(), "intact", [80, None], grace_s=30) == 0
    assert releasable_before(retained(), "intact", [80, -1], grace_s=30) == 0


def test_nothing_goes_unless_the_log_was_just_read_back_whole() -> None:
    assert releasable_before(retained(), "unknown", [80], grace_s=30) == 0
    assert releasable_before(retained(), "lost", [80], grace_s=30) == 0


def test_a_young_epoch_waits_out_commits_made_against_the_lost_log() -> None:
    """A commit in flight when the broker restarted can land in the new log: not trusted at first."""
    assert releasable_before(retained(age_s=5), "intact", [80], grace_s=30) == 0
    assert releasable_before(retained(age_s=31), "intact", [80], grace_s=30) == 80


def test_a_commit_beyond_what_was_published_is_not_ours() -> None:
    assert releasable_before(retained(last_offset=99), "intact", [100], grace_s=30) == 100  # read all 0..99
    assert releasable_before(retained(last_offset=99), "intact", [101], grace_s=30) == 0


def test_judge_compares_offset_and_event() -> None:
    r = retained()
    assert judge(r, 99, "ev-99") == "intact"
    assert judge(r, 99, "another") == "lost"  # a new log refilled to that offset by others
    assert judge(r, 100, "ev-99") == "lost"
    assert judge(r, None, None) == "lost"  # out of range, partition or topic gone
