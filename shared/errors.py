"""One error model for every service (统一错误模型) and the status codes each operation declares.

Every error answer is ``{"detail": "<message>"}`` or, for 422, ``{"detail": [{"loc", "msg",
"type"}, ...]}`` naming each failing field — never the input back (it may be huge, deeply
nested or personal). :func:`document_errors` documents, on every operation of an app,
the codes it can really answer with: 401/403 where a credential is checked, 404 where the path
names a resource, 422 where parameters or a body are validated, 503 when the database is down,
plus whatever the route declares itself (409, 413, 415 …).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class FieldError(BaseModel):
    """One failing field 字段错误: where (``loc``), why (``msg``) and the error kind (``type``)."""

    loc: list[str | int] = Field(description="path to the field, e.g. ['body', 'caller', 'phone']")
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error answer 错误响应: a message, or for 422 the list of failing fields.
    Some answers add context (e.g. intake's 409 names the first ``event_id``)."""

    model_config = ConfigDict(extra="allow")

    detail: str | list[FieldError]


#: Largest value of a PostgreSQL ``integer`` column: integer parameters that reach one are bounded by it.
MAX_INT32 = 2**31 - 1
#: Largest value of a PostgreSQL ``bigint`` (ids, cursors, offsets).
MAX_INT64 = 2**63 - 1

#: Descriptions of the error codes (错误码说明).
ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "missing or unknown credential 未认证",
    403: "the credential may not do this, or not in this township 无权限",
    404: "no such resource 不存在",
    409: "conflicts with the resource's current state 状态冲突",
    413: "body too large 请求体过大",
    415: "content type is not application/json 内容类型不支持",
    422: "invalid parameters or body; each failing field is named 参数或请求体无效",
    502: "the upstream service did not answer (dashboard proxy) 上游服务不可达",
    503: "database unavailable, retry later (Retry-After) 暂不可用",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for ``codes`` with the shared error model."""
    return {code: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error dicts → ``FieldError`` dicts (no input echoed, JSON-safe)."""
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]


def is_bad_data(exc: BaseException) -> bool:
    """Whether the database refused a value (SQLSTATE class 22: out of range, untranslatable, …) —
    input that slipped past validation, a 422 rather than a 500. 数据库拒收的取值（输入问题）。"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.exceptions.DataError | OverflowError):
            return True
        if isinstance(current, asyncpg.PostgresError) and str(getattr(current, "sqlstate", "")).startswith("22"):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


#: The answer to :func:`is_bad_data`: never the value itself (it may be personal).
BAD_DATA_DETAIL = "a value cannot be stored (out of range or not representable) 取值无法存储"


async def bad_data_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 for a value the database refused (the safety net behind validation)."""
    return JSONResponse({"detail": BAD_DATA_DETAIL}, status_code=422)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette/FastAPI ``HTTPException`` → the error model; FastAPI's 400 for a body it cannot decode
    (not UTF-8, not JSON) is a 422 naming the body, like every other invalid input."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": "body is not valid UTF-8 JSON", "type": "json_invalid"}]},
            status_code=422,
        )
    return await http_exception_handler(request, exc)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each failing field, without the input."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)


_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _checks_credential(operation: dict[str, Any]) -> bool:
    return bool(operation.get("security")) or any(
        p.get("in") == "header" and str(p.get("name", "")).lower() == "x-api-key"
        for p in operation.get("parameters", [])
    )


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the shared error model and the codes each operation can answer with, in an OpenAPI
    document: 401/403 where a credential is checked, 404 where the path names a resource, 422 where
    parameters or a body are validated, 503 everywhere (database down); codes a route declared itself
    (409, 413, 415 …) get the error model too. 为每个接口声明统一错误模型及其实际可能返回的状态码。"""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["FieldError"] = FieldError.model_json_schema()
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    error_schema.pop("$defs", None)
    schemas["ErrorResponse"] = error_schema
    for gone in ("HTTPValidationError", "ValidationError"):
        schemas.pop(gone, None)
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            codes = {503}
            if _checks_credential(operation):
                codes |= {401, 403}
            if "{" in path:
                codes.add(404)
            if operation.get("parameters") or operation.get("requestBody"):
                codes.add(422)
            for code in codes:
                responses.setdefault(str(code), {})
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    response["description"] = (
                        response.get("description")
                        if response.get("description") and response.get("description") != "Validation Error"
                        else ERROR_DESCRIPTIONS.get(int(code), "error")
                        if code.isdigit()
                        else "error"
                    )
                    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                    if not schema or "HTTPValidationError" in str(schema.get("$ref", "")):
                        response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
    return document
