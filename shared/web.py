"""Browser-facing hardening shared by every service (浏览器安全头与离线文档).

* :class:`SecurityHeadersMiddleware` — every answer carries ``X-Content-Type-Options: nosniff``,
  frame protection (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``), a
  ``Content-Security-Policy`` (the dashboard: only its own scripts, styles, images and
  connections — no inline script, no ``eval``; it builds every element with ``textContent``)
  and ``Referrer-Policy: no-referrer``. API answers (everything but the static files of the
  dashboard and the docs) carry ``Cache-Control: no-store``: they hold personal and case data.
* :func:`offline_app` — the FastAPI app with ``/docs`` (Swagger UI) served from the service
  itself with the assets of the ``fastapi-offline`` package: county intranets have no internet,
  so no CDN.
* :func:`clean_request_id` — an incoming ``X-Request-ID`` is echoed and logged only when it is
  short and plain (letters, digits, ``-_.:``), otherwise a fresh one is used.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Where the docs' assets (Swagger UI, ReDoc) are served. 文档静态资源路径。
DOCS_ASSETS = "/static-offline-docs"
#: Paths whose answers are static files (cacheable); everything else is an API answer (no-store).
STATIC_PREFIXES = ("/dashboard/", DOCS_ASSETS + "/")
#: … except the dashboard's own API (who am I, the calendar, the proxies). 调度台接口不缓存。
API_UNDER_STATIC = "/dashboard/api/"

#: The dashboard and every API answer: own origin only, nothing inline, no frames.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Swagger UI's page starts with one inline script (FastAPI's ``get_swagger_ui_html``) and its widgets
#: use inline styles; still nothing from outside the service.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: Longest accepted ``X-Request-ID``. 请求编号最大长度。
MAX_REQUEST_ID = 128


def clean_request_id(raw: bytes) -> str:
    """The caller's request id when plain and at most :data:`MAX_REQUEST_ID` characters, else a new UUID.
    请求编号仅接受短而规整的取值，否则另生成。"""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return str(uuid.uuid4())
    return text if _REQUEST_ID.match(text) else str(uuid.uuid4())


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP answer (pure ASGI: streams stay streams). 安全响应头。"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        docs = path == "/docs"
        static = path.startswith(STATIC_PREFIXES) and not path.startswith(API_UNDER_STATIC)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else DEFAULT_CSP)
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def offline_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose ``/docs`` loads its assets from the service (no CDN).
    离线接口文档：Swagger UI 与 ReDoc 资源由服务自身提供。"""
    # No /redoc: ReDoc fetches its logo from a CDN; /docs (Swagger UI) is the one documentation page.
    return FastAPIOffline(static_url=DOCS_ASSETS, redoc_url=None, **kwargs)
