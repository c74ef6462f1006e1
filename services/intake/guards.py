"""Input guards (输入防护): what a producer record may hold before anything stores or hashes it.

Pure functions, no I/O, no recursion (a record nested a thousand levels deep must not
exhaust the interpreter's stack). A record is refused, naming the field, when

* a string or a key anywhere holds a NUL character (``\\u0000``): PostgreSQL text and
  jsonb cannot store it (文本含 NUL 字符);
* it nests deeper than :data:`MAX_DEPTH` levels (嵌套过深);
* its unknown extra keys — at the top or inside a declared object such as ``caller`` — (kept
  verbatim in intake's raw record, never sent on) are larger than
  :data:`MAX_EXTRA_BYTES` when serialised, nest deeper than :data:`MAX_EXTRA_DEPTH`, or hold a
  number outside ±2^53 (the range every JSON reader keeps exactly) (未知字段超限).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

#: Deepest nesting of a whole record (the wire formats need 3: record → attachments → item).
MAX_DEPTH = 16
#: Deepest nesting below one unknown key.
MAX_EXTRA_DEPTH = 4
#: Serialised size (approximate, UTF-8) of all unknown keys of one record together.
MAX_EXTRA_BYTES = 8 * 1024
#: Largest magnitude of a number in an unknown key.
MAX_EXTRA_NUMBER = 2**53


def _path(parts: tuple[str | int, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "record"


def record_problem(raw: dict[str, Any], *, known: Collection[tuple[str, ...]]) -> str | None:
    """The first reason to refuse ``raw`` (a message naming the field), or ``None``.

    ``known`` are the paths of the record's declared keys (``("caller", "phone")``; ``"*"`` for a
    list item: ``("attachments", "*", "url")``); any other key of a declared object is an unknown
    extra. 返回拒收原因（指明字段），无问题则为 ``None``。
    """
    extra_bytes = 0
    # (value, path, depth, depth below an unknown key or -1 outside one)
    stack: list[tuple[Any, tuple[str | int, ...], int, int]] = [(raw, (), 0, -1)]
    while stack:
        value, path, depth, extra_depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{_path(path)}: nested deeper than {MAX_DEPTH} levels"
        if extra_depth > MAX_EXTRA_DEPTH:
            where = _path(path[: len(path) - extra_depth])
            return f"{where}: an unknown key may nest at most {MAX_EXTRA_DEPTH} levels"
        in_extra = extra_depth >= 0
        if isinstance(value, str):
            if "\x00" in value:
                return f"{_path(path)}: NUL character (\\u0000) is not allowed"
            if in_extra:
                extra_bytes += len(value.encode("utf-8", "surrogatepass")) + 2
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return f"{_path(path)}: a key holds a NUL character (\\u0000)"
                if in_extra:
                    child_extra = extra_depth + 1
                else:
                    declared = (*("*" if isinstance(p, int) else p for p in path), key) in known
                    child_extra = -1 if declared else 0
                if child_extra >= 0:
                    extra_bytes += len(key.encode("utf-8", "surrogatepass")) + 4
                stack.append((item, (*path, key), depth + 1, child_extra))
        elif isinstance(value, list):
            stack.extend(
                (item, (*path, i), depth + 1, extra_depth + 1 if in_extra else -1) for i, item in enumerate(value)
            )
            extra_bytes += 2 * in_extra
        elif in_extra and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or abs(value) > MAX_EXTRA_NUMBER:
                return f"{_path(path)}: a number in an unknown key must lie within ±2^53"
            extra_bytes += 24
        elif in_extra:
            extra_bytes += 5
        if extra_bytes > MAX_EXTRA_BYTES:
            return f"unknown keys: more than {MAX_EXTRA_BYTES} bytes together (they are kept, not used)"
    return None
