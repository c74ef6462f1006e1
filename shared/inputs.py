"""Input rules every service shares (通用输入规则): no NUL character anywhere.

PostgreSQL text and jsonb cannot hold ``\\u0000``; a request carrying one is refused with 422
naming where it is — in a JSON body (:class:`NulFreeModel`, the base of request bodies) or in
the path or query string (:class:`NulFreeQueryMiddleware`) — instead of reaching the database.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi.responses import JSONResponse
from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Receive, Scope, Send

NUL_MESSAGE = "NUL character (\\u0000) is not allowed"


def nul_path(value: Any) -> list[str | int] | None:
    """Where the first NUL character in ``value`` (strings, keys, lists, dicts; no recursion) is, or ``None``."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return path
                stack.append((child, [*path, key]))
        elif isinstance(item, list | tuple):
            stack.extend((child, [*path, i]) for i, child in enumerate(item))
    return None


class NulFreeModel(BaseModel):
    """Base of request bodies: a NUL character anywhere in the input → 422 naming the field. 请求体不得含 NUL。"""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        path = nul_path(data)
        if path is not None:
            where = ".".join(str(p) for p in path) or "body"
            raise PydanticCustomError("nul_character", "{where}: " + NUL_MESSAGE, {"where": where})
        return data


class NulFreeQueryMiddleware:
    """422 for a NUL character in the path or a query parameter, naming it (pure ASGI). 路径与查询参数不得含 NUL。"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            loc: list[str] | None = None
            if "\x00" in scope.get("path", ""):
                loc = ["path"]
            query: bytes = scope.get("query_string", b"")
            if loc is None and b"%00" in query:
                for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                    if "\x00" in name or "\x00" in value:
                        loc = ["query", unquote(name).replace("\x00", "")]
                        break
            if loc is not None:
                response = JSONResponse(
                    {"detail": [{"loc": loc, "msg": NUL_MESSAGE, "type": "nul_character"}]}, status_code=422
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
