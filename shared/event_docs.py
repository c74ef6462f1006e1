"""``docs/events.md``, rendered from the event contract (:mod:`shared.events`): every topic, its key,
partitions and consumer groups, and every payload's fields. 由事件契约生成的事件与主题文档。

``python -m shared.event_docs > docs/events.md`` (``make docs``); a test fails when the file and the
models differ.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from shared.events import SCHEMA_VERSION, TOPICS, EventEnvelope, dlq_topic


def render_docs() -> str:
    """Markdown reference of every topic and payload, generated from the models."""
    lines = [
        "# Events and topics",
        "",
        "Generated from `shared/events.py` by `python -m shared.event_docs > docs/events.md`;",
        "a test fails when this file and the models differ.",
        "",
        f"Envelope (schema_version {SCHEMA_VERSION}): CloudEvents-style attributes, also sent as Kafka",
        "headers `ce_id`, `ce_type`, `ce_source`, `ce_time`, `ce_schema_version`, `correlation_id`,",
        "and the producer's log epoch of the record's partition, `log_epoch` (consumers commit it with",
        "their offsets so a commit made against a log the broker lost is recognised).",
        "Every consumed topic has a dead-letter topic `<topic>.dlq`: the original value and headers plus",
        "`dlq_reason`, `dlq_consumer`, `dlq_original_topic`, `dlq_original_partition`, `dlq_original_offset`.",
        "",
        "| field | type | description |",
        "|---|---|---|",
    ]
    lines += _field_rows(EventEnvelope[BaseModel])
    for spec in TOPICS.values():
        lines += [
            "",
            f"## `{spec.name}`",
            "",
            spec.description,
            "",
            f"- key: {spec.key}",
            f"- partitions: {spec.partitions}",
            "- kept in the producer's outbox until consumed by: "
            + (", ".join(f"`{g}`" for g in spec.consumer_groups) or "(per-replica groups: kept for the retention)"),
            f"- dead letters: `{dlq_topic(spec.name)}`",
            "- event types: " + ", ".join(f"`{t}`" for t in spec.event_types),
        ]
        seen: set[type[BaseModel]] = set()
        for model in spec.event_types.values():
            if model in seen:
                continue
            seen.add(model)
            lines += _model_section(model)
    return "\n".join(lines) + "\n"


def _model_section(model: type[BaseModel]) -> list[str]:
    lines = [
        "",
        f"### payload `{model.__name__}`",
        "",
        (model.__doc__ or "").strip().splitlines()[0],
        "",
        "| field | type | description |",
        "|---|---|---|",
    ]
    lines += _field_rows(model)
    nested = [a for f in model.model_fields.values() for a in _nested_models(f.annotation)]
    for sub in dict.fromkeys(nested):
        lines += ["", f"#### `{sub.__name__}`", "", "| field | type | description |", "|---|---|---|"]
        lines += _field_rows(sub)
    return lines


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out.append(annotation)
    for arg in getattr(annotation, "__args__", ()) or ():
        out += _nested_models(arg)
    return out


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or re.sub(r"(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", str(annotation))


def _field_rows(model: type[BaseModel]) -> list[str]:
    rows = []
    for name, f in model.model_fields.items():
        req = "" if f.is_required() else " (optional)"
        desc = (f.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `{_type_name(f.annotation)}`{req} | {desc} |")
    return rows


if __name__ == "__main__":  # pragma: no cover
    print(render_docs(), end="")
