"""The consumer's log-epoch rule (pure): read on, or read the partition again from its beginning."""

from __future__ import annotations

from dataclasses import dataclass

from shared.messaging.epochs import EpochTracker


@dataclass
class Record:
    offset: int
    epoch: str | None
    event_id: str

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        pairs = [("ce_id", self.event_id.encode())]
        if self.epoch is not None:
            pairs.append(("log_epoch", self.epoch.encode()))
        return pairs


def records(first: int, epochs: str) -> list[Record]:
    """One record per character of ``epochs`` (its epoch), from offset ``first``."""
    return [Record(first + i, e, f"ev{first + i}") for i, e in enumerate(epochs)]


def test_the_same_epoch_reads_on() -> None:
    tracker = EpochTracker()
    assert tracker.check("p", records(0, "aaa")).action == "apply"
    tracker.applied("p", records(0, "aaa"))
    assert tracker.check("p", records(3, "aaa")).action == "apply"


def test_an_epoch_renewed_inside_one_fetch_reads_on() -> None:
    tracker = EpochTracker()
    tracker.applied("p", records(0, "aaa"))
    decision = tracker.check("p", records(3, "aabb"))
    assert decision.action == "apply" and len(decision.records) == 4
    tracker.applied("p", decision.records)
    assert tracker.last["p"] == ("b", "ev6")


def test_another_epoch_at_the_start_of_a_fetch_rewinds() -> None:
    """A position kept across a broker restart points into a new log: read it from the beginning."""
    tracker = EpochTracker()
    tracker.applied("p", records(0, "aaaaa"))
    decision = tracker.check("p", records(5, "bbb"))
    assert decision.action == "rewind" and decision.records == []
    # From the beginning anything goes (nothing is known any more).
    assert tracker.check("p", records(0, "abbb")).action == "apply"


def test_a_fetch_from_offset_zero_is_the_beginning_already() -> None:
    tracker = EpochTracker()
    tracker.applied("p", records(0, "aaaaa"))
    assert tracker.check("p", records(0, "bbb")).action == "apply"


def test_a_position_taken_over_from_the_database_is_checked_the_same_way() -> None:
    tracker = EpochTracker()
    tracker.learn("p", "a", "ev9")
    assert tracker.check("p", records(10, "aa")).action == "apply"
    tracker.forget("p")
    tracker.learn("p", "a", "ev9")
    assert tracker.check("p", records(10, "bb")).action == "rewind"


def test_records_without_an_epoch_prove_nothing() -> None:
    tracker = EpochTracker()
    tracker.applied("p", records(0, "aa"))
    plain = [Record(2, None, "x"), Record(3, None, "y")]
    assert tracker.check("p", plain).action == "apply"
    tracker.applied("p", plain)
    assert tracker.last["p"] == ("a", "y")
