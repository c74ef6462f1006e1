"""Log epochs on the consumer side (日志纪元): is this partition's log still the one we were reading?

A broker that restarts empty (Tansu keeps everything in memory) or loses a disk gives a partition
a new log, and the producer's outbox republishes what it kept under a new *epoch* (header
``log_epoch``, see :mod:`shared.messaging.outbox`). A consumer's position may then point into the middle of
a log it has never read: reading on from there would skip republished records. The rule, pure
bookkeeping with the I/O (seeking) left to the caller:

* Records of one fetch come from one log: an epoch that changes *inside* a fetch is the producer
  renewing it (the records before the change were republished after it), and reading goes on.
* An epoch that differs from the last record applied *at the start* of a fetch (a position kept
  across a broker restart, or taken over from PostgreSQL after one) may point anywhere in a new
  log: the partition is read again from its beginning (``rewind``; duplicates are skipped by event
  id). A fetch from offset 0 is the beginning already.
* Where a group is in each partition, and the epoch and event id it applied last there, are kept
  in PostgreSQL (``consumer_positions``: the broker's commits may be forgotten, may have been made
  against a log it lost, and Tansu drops commit metadata), so a consumer that takes a partition
  over (rebalance, restart) starts there and checks the log the same way.

Skipped records are never lost: a record the consumer jumps over in a new log is one the producer
sent before it noticed the loss, and those are republished under the new epoch too.
消费端日志纪元：同一次拉取内纪元变化属正常续读；拉取开头即与上次处理的纪元不同，则从头重读（按事件 id 去重）。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

LOG_EPOCH_HEADER = "log_epoch"
EVENT_ID_HEADER = "ce_id"


def new_epoch() -> str:
    """A fresh epoch for a partition's log (the producer's side). 新的日志纪元。"""
    return uuid.uuid4().hex


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


@dataclass(frozen=True)
class Decision:
    """``apply`` the records, or ``rewind`` the partition to its beginning (applying nothing)."""

    action: Literal["apply", "rewind"]
    records: list[Any]


@dataclass
class EpochTracker:
    """Per partition (any hashable key): the epoch and event id of the last record applied."""

    last: dict[Any, tuple[str | None, str | None]] = field(default_factory=dict)

    def forget(self, key: Any) -> None:
        self.last.pop(key, None)

    def learn(self, key: Any, epoch: str | None, event_id: str | None) -> None:
        """A partition taken over at a recorded position: what was applied last there."""
        if epoch or event_id:
            self.last[key] = (epoch, event_id)

    def check(self, key: Any, records: list[Any]) -> Decision:
        """Whether a partition's next fetch (offset order) continues the log applied so far."""
        expected, _ = self.last.get(key, (None, None))
        first = next(((r.offset, e) for r in records if (e := header(r, LOG_EPOCH_HEADER)) is not None), None)
        if expected is not None and first is not None and first[1] != expected and first[0] > 0:
            self.forget(key)
            return Decision("rewind", [])
        return Decision("apply", records)

    def applied(self, key: Any, records: list[Any]) -> None:
        """Records of ``key`` were applied (or skipped as duplicates): the last one is the reference."""
        if not records:
            return
        epoch = next((e for e in (header(r, LOG_EPOCH_HEADER) for r in reversed(records)) if e), None)
        previous_epoch, _ = self.last.get(key, (None, None))
        self.last[key] = (epoch or previous_epoch, header(records[-1], EVENT_ID_HEADER))
