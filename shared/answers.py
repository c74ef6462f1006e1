"""Response models (应答模型): what each operation answers, documented in OpenAPI.

Every success answer has a model here or in ``services/<name>/answers.py``. They are
*documentation* models — :func:`documented` puts them in the OpenAPI document without
re-validating every answer at run time (list routes answer hundreds of rows; the hot paths
serialise with orjson) — and ``make test``'s schemathesis run checks the real answers against
them. Models allow extra keys: an answer may grow a field before its model does, never lose one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import error_responses


class Answer(BaseModel):
    """Base of the response models: documented fields, extra keys allowed. 应答模型基类。"""

    model_config = ConfigDict(extra="allow")


def documented(
    model: type[BaseModel],
    *errors: int,
    status: int = 200,
    description: str = "OK",
    extra: dict[int | str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Route keyword arguments documenting ``model`` as the ``status`` answer (and ``errors``).
    为接口声明应答模型及错误码（不在运行时重复校验）。"""
    return {
        "response_model": None,
        "responses": {
            status: {"model": model, "description": description},
            **error_responses(*errors),
            **(extra or {}),
        },
    }


class Health(Answer):
    """``/healthz``: the process is alive. 进程存活。"""

    status: str = Field(examples=["ok"])
    service: str


class CheckState(Answer):
    """One readiness check. 单项就绪检查。"""

    ok: bool
    required: bool
    detail: str


class Readiness(Answer):
    """``/readyz``: ready (200) or not (503), with every check. 就绪状态。"""

    status: str = Field(description="ready | degraded | not_ready")
    service: str
    checks: dict[str, CheckState]
