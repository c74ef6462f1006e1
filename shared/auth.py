"""Staff authentication shared by every service (工作人员身份).

``Authorization: Bearer <token>``; tokens come from the setting
``STAFF_TOKENS`` (JSON ``{"<token>": {"role": ..., "township": ..., "unit": ..., "member": ...}}``).
The dev tokens below apply only when explicitly asked for (``ZHPT_DEV_CREDENTIALS=true``,
which ``make run`` sets and production never does) and ``STAFF_TOKENS`` is empty; a blank
or malformed setting otherwise refuses to start (开发令牌须显式开启；配置为空或有误则拒绝启动).
Every role but ``admin`` must name its township (``"*"`` = the whole county, said
explicitly). Production would put an identity provider behind the same
:class:`StaffPrincipal` interface.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

StaffRole = Literal["admin", "dispatcher", "township_admin", "unit", "hotline", "member"]

#: Dev tokens of the demo county (deploy/demo). Used only with ZHPT_DEV_CREDENTIALS=true and no STAFF_TOKENS.
DEV_STAFF_TOKENS: dict[str, dict[str, str]] = {
    "dev-admin": {"role": "admin", "township": "*"},
    "dev-dispatcher": {"role": "dispatcher", "township": "*"},
    "dev-dispatcher-qingxi": {"role": "dispatcher", "township": "330127101"},
    "dev-township-qingxi": {"role": "township_admin", "township": "330127101"},
    "dev-unit-qingxi-zfd": {"role": "unit", "township": "330127101", "unit": "330127101-zfd"},
    "dev-unit-pcs-qingxi": {"role": "unit", "township": "330127101", "unit": "pz-pcs-qingxi"},
    "dev-unit-scjgs-qingxi": {"role": "unit", "township": "*", "unit": "pz-scjgs-qingxi"},
    "dev-hotline": {"role": "hotline", "township": "*"},
    # 队员 / 负责人 of 青溪镇综合行政执法队 (deploy/demo/forces.json): tokens of role member carry their member id.
    "dev-member-qingxi-zfd-leader": {
        "role": "member",
        "township": "330127101",
        "unit": "330127101-zfd",
        "member": "330127101-zfd-m01",
    },
    "dev-member-qingxi-zfd": {
        "role": "member",
        "township": "330127101",
        "unit": "330127101-zfd",
        "member": "330127101-zfd-m02",
    },
}


#: The dev admin token; the launcher's service credential when dev credentials are on.
DEV_SERVICE_TOKEN = "dev-admin"


class StaffPrincipal(BaseModel):
    """Who is calling: role, township scope (``*`` = whole county), for roles ``unit`` and ``member`` the
    unit, and for role ``member`` (队员, a person of a unit on a mobile terminal) the member id.

    工作人员：角色、乡镇范围（``*`` 为全县）、单位/队员角色所属单位、队员角色的队员编号。"""

    model_config = ConfigDict(frozen=True)

    token_name: str = ""
    role: StaffRole
    township: str = "*"
    unit: str | None = None
    member: str | None = None

    @model_validator(mode="after")
    def _unit_needs_unit(self) -> StaffPrincipal:
        if self.role in ("unit", "member") and not self.unit:
            raise ValueError(f"role {self.role!r} needs a 'unit'")
        if self.role == "member" and not self.member:
            raise ValueError("role 'member' needs a 'member' (the member id 队员编号)")
        if self.role != "member" and self.member:
            raise ValueError("only role 'member' carries a 'member'")
        return self

    @property
    def whole_county(self) -> bool:
        return self.township == "*"

    def sees_township(self, township: str | None) -> bool:
        return self.whole_county or township == self.township


class StaffTokensError(ValueError):
    """``STAFF_TOKENS`` is blank without dev credentials, or malformed. 工作人员令牌配置有误。"""


_SHAPE = 'STAFF_TOKENS must be a JSON object {"<token>": {"role": ..., "township": ..., "unit": ...}}'


def parse_staff_tokens(raw_json: str, *, dev_credentials: bool = False) -> dict[str, StaffPrincipal]:
    """The setting → token → principal, or :class:`StaffTokensError` saying what is wrong.

    Blank (empty or only whitespace) means the dev tokens only when ``dev_credentials``.
    解析 ``STAFF_TOKENS``：为空时仅在显式开启开发凭据时使用开发令牌，否则报错。"""
    raw: Any
    if not raw_json.strip():
        if not dev_credentials:
            raise StaffTokensError(
                "STAFF_TOKENS is empty: set it (" + _SHAPE[len("STAFF_TOKENS must be ") :] + "), "
                "or set ZHPT_DEV_CREDENTIALS=true for the dev tokens (development only)"
            )
        raw = DEV_STAFF_TOKENS
    else:
        try:
            raw = orjson.loads(raw_json)
        except orjson.JSONDecodeError as exc:
            raise StaffTokensError(f"STAFF_TOKENS is not valid JSON ({exc}); {_SHAPE}") from None
    if not isinstance(raw, dict) or not raw:
        raise StaffTokensError(_SHAPE + " with at least one token")
    by_token: dict[str, StaffPrincipal] = {}
    for token, spec in raw.items():
        name = _token_name(token)
        if not token.strip() or token != token.strip():
            raise StaffTokensError(f"STAFF_TOKENS[{name!r}]: a token must be non-blank, without surrounding spaces")
        if not isinstance(spec, dict):
            raise StaffTokensError(f"STAFF_TOKENS[{name!r}]: {{role, township, unit}} expected")
        if spec.get("role") != "admin" and not str(spec.get("township") or "").strip():
            raise StaffTokensError(
                f"STAFF_TOKENS[{name!r}]: role {spec.get('role')!r} must name its township "
                '("township": "<code>", or "*" for the whole county)'
            )
        try:
            by_token[token] = StaffPrincipal(token_name=name, **spec)
        except (ValidationError, TypeError) as exc:
            raise StaffTokensError(f"STAFF_TOKENS[{name!r}]: {exc}") from None
    return by_token


class StaffDirectory:
    """Token → principal. Built once at start-up from settings. 令牌目录（启动时构建）。"""

    def __init__(self, raw_json: str, *, dev_credentials: bool = False) -> None:
        self.dev_mode = dev_credentials and not raw_json.strip()
        self._by_token = parse_staff_tokens(raw_json, dev_credentials=dev_credentials)

    def lookup(self, token: str) -> StaffPrincipal | None:
        return self._by_token.get(token)


def _token_name(token: str) -> str:
    return token if token.startswith("dev-") else token[:4] + "…"


_bearer = HTTPBearer(auto_error=False, description="Staff token: `Authorization: Bearer <token>`")


def current_staff(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> StaffPrincipal:
    directory: StaffDirectory = request.app.state.staff
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    principal = directory.lookup(credentials.credentials)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_roles(*roles: StaffRole) -> Callable[..., Coroutine[Any, Any, StaffPrincipal]]:
    """Dependency: any staff token whose role is in ``roles`` (all roles when empty)."""

    async def dependency(principal: Annotated[StaffPrincipal, Depends(current_staff)]) -> StaffPrincipal:
        if roles and principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this")
        return principal

    return dependency


#: Route parameter type for any staff token 任一工作人员令牌: ``principal: Staff``.
Staff = Annotated[StaffPrincipal, Depends(current_staff)]

#: Route parameter type for an admin token 管理员令牌: ``principal: Admin``.
Admin = Annotated[StaffPrincipal, Depends(require_roles("admin"))]
