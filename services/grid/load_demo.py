"""Load the demo county 青溪县 into a running grid service / 向网格服务导入示范县.

``python -m services.grid.load_demo [--url http://127.0.0.1:8003] [--token dev-admin]
[--file deploy/demo/county.json] [--wait 30]`` PUTs the bundle to ``/v1/jurisdiction``
(waiting for the service to answer first) and prints the outcome. Importing it
again changes nothing (``changed: false``). ``make run`` calls it after the
services start.

In-process: :func:`load_demo` (blocking, by URL) or :func:`put_bundle` (async, on
any ``httpx.AsyncClient``, e.g. one bound to the ASGI app in tests).
进程内调用：:func:`load_demo`（同步，按 URL）或 :func:`put_bundle`（异步，任意 httpx 客户端）。
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
#: The demo bundle. 示范县数据包。
DEMO_BUNDLE = ROOT / "deploy" / "demo" / "county.json"
DEFAULT_URL = "http://127.0.0.1:8003"
DEFAULT_TOKEN = os.environ.get("SERVICE_TOKEN", "").strip() or "dev-admin"

__all__ = ["DEFAULT_TOKEN", "DEFAULT_URL", "DEMO_BUNDLE", "LoadError", "load_demo", "main", "put_bundle", "read_bundle"]


class LoadError(RuntimeError):
    """The grid service refused the bundle (or could not be reached). 导入失败。"""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


def read_bundle(path: Path = DEMO_BUNDLE) -> bytes:
    """The bundle file's bytes (UTF-8 JSON). 读取数据包文件。"""
    return path.read_bytes()


def _outcome(response: httpx.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) else body
        problems = body.get("problems", []) if isinstance(body, dict) else []
        lines = [f"HTTP {response.status_code}: {detail}"]
        lines += [f"  {p.get('path')}: {p.get('message')}" for p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"  … {len(problems) - 50} more")
        raise LoadError("\n".join(lines), response.status_code, body)
    assert isinstance(body, dict)
    return body


async def put_bundle(client: httpx.AsyncClient, bundle: bytes, token: str = DEFAULT_TOKEN) -> dict[str, Any]:
    """PUT a bundle on ``client``; returns the import outcome or raises :class:`LoadError`.

    通过给定客户端导入数据包，返回导入结果；失败时抛出 :class:`LoadError`。
    """
    response = await client.put(
        "/v1/jurisdiction",
        content=bundle,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return _outcome(response)


def load_demo(
    url: str = DEFAULT_URL,
    token: str = DEFAULT_TOKEN,
    path: Path = DEMO_BUNDLE,
    wait_s: float = 30.0,
) -> dict[str, Any]:
    """Import the demo bundle into the grid service at ``url`` (blocking).

    向 ``url`` 处的网格服务导入示范数据包（阻塞）。Waits up to ``wait_s`` seconds
    for the service to answer ``/healthz``. 最多等待 ``wait_s`` 秒直至服务可达。
    """
    bundle = read_bundle(path)
    deadline = time.monotonic() + wait_s
    with httpx.Client(base_url=url, timeout=60) as client:
        while True:
            try:
                client.get("/healthz").raise_for_status()
                break
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if time.monotonic() >= deadline:
                    raise LoadError(f"grid service at {url} not reachable after {wait_s:.0f} s: {exc}") from exc
                time.sleep(0.5)
        response = client.put(
            "/v1/jurisdiction",
            content=bundle,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    return _outcome(response)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point. 命令行入口。"""
    parser = argparse.ArgumentParser(description="Import the demo county bundle into the grid service 导入示范县")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"grid service base URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="admin staff token (default SERVICE_TOKEN, else dev-admin)"
    )
    parser.add_argument("--file", type=Path, default=DEMO_BUNDLE, help="bundle file (default deploy/demo/county.json)")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the service (default 30)")
    args = parser.parse_args(argv)
    try:
        outcome = load_demo(args.url, args.token, args.file, args.wait)
    except LoadError as exc:
        print(f"load_demo: {exc}", file=sys.stderr)
        return 1
    what = "imported" if outcome.get("changed") else "unchanged (already current)"
    print(
        f"{outcome.get('county_code')} {outcome.get('name')}: {what}, version {outcome.get('version')}, "
        f"rules_version {outcome.get('rules_version')}"
    )
    print(json.dumps(outcome, ensure_ascii=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
