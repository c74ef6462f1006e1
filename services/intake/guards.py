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

import functools
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


#: A node of the declared-keys tree: child name (``"*"`` for list items) → node.
Trie = dict[str, "Trie"]


@functools.cache
def _trie(known: frozenset[tuple[str, ...]]) -> Trie:
    """The declared paths as a tree, so each key is judged with one dict lookup. 声明路径树。"""
    root: Trie = {}
    for path in known:
        node = root
        for part in path:
            node = node.setdefault(part, {})
    return root


#: A path kept as a chain (parent chain, part): built only when a message names it.
Chain = tuple[Any, str | int] | None


def _path(chain: Chain) -> str:
    parts: list[str | int] = []
    while chain is not None:
        chain, part = chain
        parts.append(part)
    text = ""
    for part in reversed(parts):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "record"


def _scalar_problem(value: Any, in_extra: bool) -> tuple[str | None, int]:
    """A scalar's problem (NUL, a number out of range in an unknown key) and the bytes it adds."""
    if isinstance(value, str):
        if "\x00" in value:
            return "NUL character (\\u0000) is not allowed", 0
        return None, (len(value.encode("utf-8", "surrogatepass")) + 2) if in_extra else 0
    if not in_extra:
        return None, 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > MAX_EXTRA_NUMBER:
            return "a number in an unknown key must lie within ±2^53", 0
        return None, 24
    return None, 5


def record_problem(raw: dict[str, Any], *, known: Collection[tuple[str, ...]]) -> str | None:
    """The first reason to refuse ``raw`` (a message naming the field), or ``None``.

    ``known`` are the paths of the record's declared keys (``("caller", "phone")``; ``"*"`` for a
    list item: ``("attachments", "*", "url")``); any other key of a declared object is an unknown
    extra. Only containers go on the work stack; scalars are judged where they are found (most of
    a record is scalars). 返回拒收原因（指明字段），无问题则为 ``None``。
    """
    root = _trie(known if isinstance(known, frozenset) else frozenset(known))
    extra_bytes = 0
    # (container, path chain, depth, declared-keys node or None inside an unknown key, depth below it)
    stack: list[tuple[Any, Chain, int, Trie | None, int]] = [(raw, None, 0, root, -1)]
    while stack:
        value, chain, depth, node, extra_depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{_path(chain)}: nested deeper than {MAX_DEPTH} levels"
        if extra_depth > MAX_EXTRA_DEPTH:
            for _ in range(extra_depth):
                chain = chain[0] if chain is not None else None
            return f"{_path(chain)}: an unknown key may nest at most {MAX_EXTRA_DEPTH} levels"
        in_extra = node is None
        if isinstance(value, dict):
            entries: Any = value.items()
        elif isinstance(value, list):
            entries = enumerate(value)
        else:  # only reached for a scalar that is too deep (refused above)
            continue
        extra_bytes += 2 * in_extra
        for key, item in entries:
            if isinstance(key, str):
                if "\x00" in key:
                    return f"{_path(chain)}: a key holds a NUL character (\\u0000)"
                child = None if node is None else node.get(key)
                if child is None:
                    extra_bytes += len(key.encode("utf-8", "surrogatepass")) + 4
                below = (extra_depth + 1 if in_extra else 0) if child is None else -1
            else:  # a list item
                child = None if node is None else node.get("*", node)
                below = extra_depth + 1 if in_extra else -1
            if isinstance(item, dict | list):
                stack.append((item, (chain, key), depth + 1, child, below))
                continue
            if below > MAX_EXTRA_DEPTH or depth >= MAX_DEPTH:  # a scalar too deep: refused when popped
                stack.append((item, (chain, key), depth + 1, child, below))
                continue
            problem, size = _scalar_problem(item, child is None)
            if problem is not None:
                return f"{_path((chain, key))}: {problem}"
            extra_bytes += size
        if extra_bytes > MAX_EXTRA_BYTES:
            return f"unknown keys: more than {MAX_EXTRA_BYTES} bytes together (they are kept, not used)"
    return None
