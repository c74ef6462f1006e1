"""Messaging (消息): how events leave a service and reach another, with PostgreSQL as the log of record.

* :mod:`~shared.messaging.topics` — create the registry's topics.
* :mod:`~shared.messaging.partitioner` — Kafka's murmur2 partitioner, vectorised.
* :mod:`~shared.messaging.publisher` — the producer that survives outages and reports placements.
* :mod:`~shared.messaging.outbox` — the transactional outbox and its relay.
* :mod:`~shared.messaging.retention` — published rows kept until consumed; lost logs republished.
* :mod:`~shared.messaging.consumer` — the consumer runner (commit after the transaction, DLQ, rewind).
* :mod:`~shared.messaging.epochs` — the consumer's log-epoch rule (pure).
* :mod:`~shared.messaging.tables` — processed-message keys and consumer positions.
"""
