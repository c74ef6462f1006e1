"""Browser and documents (浏览器与文档): security headers on every answer, docs served without a CDN,
a bounded ``X-Request-ID``, and one error model with the real status codes on every operation.

Real HTTP through each of the four apps (ASGI transport; none of these answers touches the database)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from services.dispatch.action_bodies import SuperviseBody
from services.dispatch.app import create_app as create_dispatch
from services.dispatch.dashboard import STATIC_DIR
from services.dispatch.settings import DispatchSettings
from services.grid.app import create_app as create_grid
from services.grid.settings import GridSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings

STAFF = orjson.dumps({"t-admin": {"role": "admin", "township": "*"}}).decode()
ADMIN = {"Authorization": "Bearer t-admin"}
COMMON: dict[str, Any] = {
    "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    "staff_tokens": STAFF,
    "service_token": "t-admin",
    "log_json": False,
}


def apps() -> dict[str, FastAPI]:
    return {
        "intake": create_intake(IntakeSettings(**COMMON, api_keys='{"12345": ["k"]}', phone_hash_salt="s")),
        "dispatch": create_dispatch(DispatchSettings(**COMMON)),
        "grid": create_grid(GridSettings(**COMMON)),
        "metrics": create_metrics(MetricsSettings(**COMMON)),
    }


@pytest.fixture(scope="module")
async def clients() -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    opened = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        for name, app in apps().items()
    }
    try:
        yield opened
    finally:
        for client in opened.values():
            await client.aclose()


def csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    return {d.split(" ", 1)[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";")) if d}


async def test_the_dashboard_page_is_protected_by_csp_and_frame_rules(clients: dict[str, httpx.AsyncClient]) -> None:
    for path in ("/dashboard/", "/dashboard/js/app.js", "/dashboard/css/dashboard.css"):
        response = await clients["dispatch"].get(path)
        assert response.status_code == 200, path
        policy = csp(response)
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", policy
        assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_dashboard_builds_its_page_without_html_strings_or_inline_styles() -> None:
    """What the CSP enforces in the browser, checked in the source: no HTML parsing, no eval, no
    inline style attributes (styles go through CSSOM), no inline script in the page."""
    for path in (STATIC_DIR / "js").glob("*.js"):
        text = path.read_text(encoding="utf-8")
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert banned not in text, f"{path.name} uses {banned}"
        assert not re.search(r"""setAttribute\(\s*["']style""", text), path.name
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page and "<style" not in page


@pytest.mark.parametrize("service", ["intake", "dispatch", "grid", "metrics"])
async def test_api_answers_are_not_stored_and_carry_the_headers(
    clients: dict[str, httpx.AsyncClient], service: str
) -> None:
    openapi = await clients[service].get("/openapi.json")
    health = await clients[service].get("/healthz")
    if service == "dispatch":  # the dashboard's own API is an API answer too
        me = await clients[service].get("/dashboard/api/me", headers=ADMIN)
        assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    protected = await clients[service].get(
        {
            "intake": "/v1/events/00000000-0000-0000-0000-000000000000/raw",
            "dispatch": "/v1/cases",
            "grid": "/v1/counties",
            "metrics": "/v1/schemes",
        }[service]
    )
    assert protected.status_code == 401
    for response in (openapi, health, protected):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert csp(response)["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("service", ["intake", "dispatch", "grid", "metrics"])
async def test_docs_load_nothing_from_outside_the_service(clients: dict[str, httpx.AsyncClient], service: str) -> None:
    client = clients[service]
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would fetch its logo from a CDN
    for page in ("/docs",):
        response = await client.get(page)
        assert response.status_code == 200
        html = response.text
        assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", html), html
        assets = re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", html)
        assert assets, html
        for asset in assets:
            loaded = await client.get(asset)
            assert loaded.status_code == 200 and len(loaded.content) > 1000, asset
        assert csp(response)["frame-ancestors"] == "'none'"
    assert "cdn.jsdelivr.net" not in (await client.get("/docs")).text


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("req-2026.12:04_abc", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("x" * 100_000, False),
        ("<script>alert(1)</script>", False),
        ("has space", False),
        ("line\tbreak", False),
        ("中文编号", False),
    ],
)
async def test_the_request_id_is_echoed_only_when_short_and_plain(
    clients: dict[str, httpx.AsyncClient], sent: str, echoed: bool
) -> None:
    response = await clients["grid"].get("/healthz", headers={"X-Request-ID": sent.encode("utf-8")})
    assert response.status_code == 200
    answered = response.headers["x-request-id"]
    assert (answered == sent) is echoed
    assert re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", answered)


@pytest.mark.parametrize("service", ["intake", "dispatch", "grid", "metrics"])
async def test_every_operation_declares_the_error_model_and_its_status_codes(
    clients: dict[str, httpx.AsyncClient], service: str
) -> None:
    document = (await clients[service].get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "ErrorResponse" in schemas and "HTTPValidationError" not in schemas
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            where = f"{service} {method.upper()} {path}"
            assert "503" in responses, where
            secured = bool(operation.get("security")) or any(
                p.get("in") == "header" and p["name"].lower() == "x-api-key" for p in operation.get("parameters", [])
            )
            if secured:
                assert {"401", "403"} <= set(responses), where
            if "{" in path:
                assert "404" in responses, where
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, where
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    model = "Readiness" if (path, code) == ("/readyz", "503") else "ErrorResponse"  # the report
                    assert schema == {"$ref": f"#/components/schemas/{model}"}, (where, code, schema)
            success = [c for c in responses if c.startswith("2")]
            assert success, where


async def test_a_422_names_the_field_and_never_echoes_the_input(clients: dict[str, httpx.AsyncClient]) -> None:
    response = await clients["intake"].post(
        "/v1/events/12345",
        json={"ticket_no": "t-1", "content": "13812345678 " * 50},
        headers={"X-API-Key": "k"},
    )
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"detail"}
    assert all(set(e) == {"loc", "msg", "type"} for e in body["detail"])
    assert ["body", "received_at"] in [e["loc"] for e in body["detail"]]
    assert "13812345678" not in response.text


async def test_a_body_that_is_not_utf8_json_is_422_not_400(clients: dict[str, httpx.AsyncClient]) -> None:
    response = await clients["metrics"].put(
        "/v1/ratings/2026-11/330127101/u1",
        content=b"9[-\xff\xfeax\x00",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize(
    ("service", "url", "loc"),
    [
        ("dispatch", "/v1/cases?source_id=a%00b", ["query", "source_id"]),
        ("metrics", "/v1/indicators?period=2026-11&unit=u%00", ["query", "unit"]),
        ("grid", "/v1/units?township=%00", ["query", "township"]),
        ("metrics", "/v1/schemes/a%00b", ["path"]),
    ],
)
async def test_a_nul_character_in_the_path_or_query_is_422_naming_it(
    clients: dict[str, httpx.AsyncClient], service: str, url: str, loc: list[str]
) -> None:
    response = await clients[service].get(url, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc and "NUL" in response.json()["detail"][0]["msg"]


async def test_a_nul_character_in_a_staff_body_is_422_naming_the_field(clients: dict[str, httpx.AsyncClient]) -> None:
    response = await clients["metrics"].put(
        "/v1/ratings/2026-11/330127101/u1", json={"rating": 90, "note": "好\u0000"}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert "note" in response.text and "NUL" in response.text
    with pytest.raises(ValidationError, match=r"note: NUL character"):
        SuperviseBody.model_validate({"expected_version": 1, "note": "督办\u0000"})


async def test_a_refused_request_still_carries_its_request_id(clients: dict[str, httpx.AsyncClient]) -> None:
    response = await clients["dispatch"].get("/v1/cases?q=%00", headers={**ADMIN, "X-Request-ID": "probe-42"})
    assert response.status_code == 422
    assert response.headers["x-request-id"] == "probe-42"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("service", "url", "headers"),
    [
        ("dispatch", "/dashboard/api/calendar?from=9999-01-01&to=9999-12-31", {}),
        ("dispatch", "/dashboard/api/calendar?from=0001-01-01&to=0001-12-31", {}),
        ("dispatch", f"/v1/cases?cursor={2**70}", {}),
        ("dispatch", f"/v1/stream?after={2**70}&max_events=1", {}),
        ("dispatch", "/v1/stream?max_events=1", {"Last-Event-ID": str(2**70)}),
        ("metrics", f"/v1/scores/hotline_three_rates/2026-11/u1/cases?offset={2**70}", {}),
    ],
)
async def test_out_of_range_numbers_and_dates_are_422_before_any_work(
    clients: dict[str, httpx.AsyncClient], service: str, url: str, headers: dict[str, str]
) -> None:
    response = await clients[service].get(url, headers={**ADMIN, **headers})
    assert response.status_code == 422, response.text[:300]
