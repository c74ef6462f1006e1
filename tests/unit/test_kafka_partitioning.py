"""The relay's batched partitioning matches Kafka's default partitioner exactly (same partition per key)."""

from __future__ import annotations

import os
import random
import uuid

from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared.messaging.partitioner import murmur2_many


def test_murmur2_many_equals_the_kafka_client_hash_for_every_length() -> None:
    rng = random.Random(7)
    keys = [os.urandom(n) for n in range(0, 70) for _ in range(5)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(500)]
    keys += ["案件-青溪镇-0001".encode(), b"\xff" * 9, b"\x00" * 4]
    rng.shuffle(keys)
    assert murmur2_many(keys).tolist() == [murmur2(k) for k in keys]


def test_same_partition_as_the_default_partitioner() -> None:
    partitions = list(range(12))
    keys = [str(uuid.uuid4()).encode() for _ in range(300)]
    expected = [DefaultPartitioner()(k, partitions, partitions) for k in keys]
    assert [partitions[(h & 0x7FFFFFFF) % len(partitions)] for h in murmur2_many(keys).tolist()] == expected


def test_no_keys() -> None:
    assert murmur2_many([]).tolist() == []
