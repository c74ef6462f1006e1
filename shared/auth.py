"""Staff authentication shared by every service (工作人员身份).

``Authorization: Bearer <token>``; tokens come from the setting
``STAFF_TOKENS`` (JSON ``{"<token>": {"role": ..., "township": ..., "unit": ...}}``).
When it is empty the dev tokens below apply (``make run`` prints them) and a
warning is logged. Production would put an identity provider behind the same
:class:`StaffPrincipal` interface.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal

import orjson
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

StaffRole = Literal["admin", "dispatcher", "township_admin", "unit", "hotline"]

#: Dev tokens of the demo county (deploy/demo). Used only when STAFF_TOKENS is empty.
DEV_STAFF_TOKENS: dict[str, dict[str, str]] = {
    "dev-admin": {"role": "admin", "township": "*"},
    "dev-dispatcher": {"role": "dispatcher", "township": "*"},
    "dev-dispatcher-qingxi": {"role": "dispatcher", "township": "330127101"},
    "dev-township-qingxi": {"role": "township_admin", "township": "330127101"},
    "dev-unit-qingxi-zfd": {"role": "unit", "township": "330127101", "unit": "330127101-zfd"},
    "dev-unit-pcs-qingxi": {"role": "unit", "township": "330127101", "unit": "pz-pcs-qingxi"},
    "dev-hotline": {"role": "hotline", "township": "*"},
}


class StaffPrincipal(BaseModel):
    """Who is calling: role, township scope (``*`` = whole county) and, for role ``unit``, the unit."""

    model_config = ConfigDict(frozen=True)

    token_name: str = ""
    role: StaffRole
    township: str = "*"
    unit: str | None = None

    @model_validator(mode="after")
    def _unit_needs_unit(self) -> StaffPrincipal:
        if self.role == "unit" and not self.unit:
            raise ValueError("role 'unit' needs a 'unit'")
        return self

    @property
    def whole_county(self) -> bool:
        return self.township == "*"

    def sees_township(self, township: str | None) -> bool:
        return self.whole_county or township == self.township


class StaffDirectory:
    """Token → principal. Built once at start-up from settings."""

    def __init__(self, raw_json: str) -> None:
        self.dev_mode = not raw_json.strip()
        raw: Any = DEV_STAFF_TOKENS if self.dev_mode else orjson.loads(raw_json)
        if not isinstance(raw, dict):
            raise ValueError("STAFF_TOKENS must be a JSON object {token: {role, township, unit}}")
        self._by_token: dict[str, StaffPrincipal] = {}
        for token, spec in raw.items():
            try:
                self._by_token[token] = StaffPrincipal(token_name=_token_name(token), **spec)
            except (ValidationError, TypeError) as exc:
                raise ValueError(f"STAFF_TOKENS[{_token_name(token)}]: {exc}") from exc

    def lookup(self, token: str) -> StaffPrincipal | None:
        return self._by_token.get(token)


def _token_name(token: str) -> str:
    return token if token.startswith("dev-") else token[:4] + "…"


_bearer = HTTPBearer(auto_error=False, description="Staff token: `Authorization: Bearer <token>`")


def current_staff(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
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

    async def dependency(principal: StaffPrincipal = Depends(current_staff)) -> StaffPrincipal:
        if roles and principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this")
        return principal

    return dependency
