"""What the metrics routes share 路由共用: tags, the period path parameter, the app-state and role
dependencies, and the mapping of the use cases' refusals to HTTP answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from services.metrics.access import OutOfScopeError
from services.metrics.context import MetricsState
from services.metrics.periods import PERIOD_ID_PATTERN, MomentError, Period, parse_period
from services.metrics.ratings import RatingRefusedError
from services.metrics.scheme_store import UnknownSchemeError
from shared.auth import StaffPrincipal, require_roles

__all__ = [
    "TAG_ADMIN",
    "TAG_INDICATORS",
    "TAG_SCHEMES",
    "TAG_SCORES",
    "UNPROCESSABLE",
    "PeriodId",
    "Rater",
    "State",
    "metrics_state",
    "parse_period_id",
    "refusals_as_http",
]

TAG_INDICATORS = "indicators 指标"
TAG_SCHEMES = "schemes 考核方案"
TAG_SCORES = "scores 考核评分"
TAG_ADMIN = "admin 管理"

#: 422: the request is well-formed but its values are not (bad period id, group_by, rating …).
UNPROCESSABLE = 422


async def metrics_state(request: Request) -> MetricsState:
    """The app's :class:`MetricsState` (dependency). 应用状态。"""
    state: MetricsState = request.app.state.metrics
    return state


#: Route parameter type for the app's shared state 应用状态: ``state: State``.
State = Annotated[MetricsState, Depends(metrics_state)]

#: Route parameter type for a token that may enter township ratings 可录入乡镇评价: admin or township admin.
Rater = Annotated[StaffPrincipal, Depends(require_roles("admin", "township_admin"))]

#: A period id as the path names it (see :mod:`services.metrics.periods`; 2000–2099). 周期编号。
PeriodId = Annotated[
    str,
    Path(
        pattern=PERIOD_ID_PATTERN,
        description="2026-11-20, 2026-W47, 2026-11, 2026-Q4, 2026 or FROM..TO (2000–2099)",
        examples=["2026-11"],
    ),
]


def parse_period_id(period_id: str) -> Period:
    """The period a path or query names, or 422 saying why not. 解析周期编号。"""
    try:
        return parse_period(period_id)
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc


@contextmanager
def refusals_as_http() -> Iterator[None]:
    """The use cases' refusals as HTTP answers: unknown scheme 404, out of scope 403, unusable ``as_of``
    or rating 422. 业务拒绝 → HTTP 状态码。"""
    try:
        yield
    except UnknownSchemeError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except OutOfScopeError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except (MomentError, RatingRefusedError) as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from None
