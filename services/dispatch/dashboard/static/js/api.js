// HTTP client of the dashboard: one origin (the dispatch service), the staff token in the
// Authorization header, Chinese error messages. Metrics and grid are reached through the
// dispatch service's same-origin proxies (/dashboard/api/metrics/…, /dashboard/api/grid/…).

const TOKEN_KEY = "zhpt.dashboard.token";

/** The dispatch service's root URL (the page lives at <root>/dashboard/). */
export const ROOT = new URL("../", new URL(".", document.baseURI));

let token = sessionStorage.getItem(TOKEN_KEY);
const unauthorizedHandlers = new Set();

export function getToken() { return token; }

export function setToken(value) {
  token = value || null;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when any request answers 401 (token unknown or missing). */
export function onUnauthorized(fn) { unauthorizedHandlers.add(fn); }

/** Absolute URL of a path under the dispatch service ("/v1/cases" → "http://host/v1/cases"). */
export function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), ROOT);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) value.forEach((v) => u.searchParams.append(key, v));
    else u.searchParams.set(key, String(value));
  }
  return u.toString();
}

export const metricsPath = (path) => `/dashboard/api/metrics/${path.replace(/^\//, "")}`;
export const gridPath = (path) => `/dashboard/api/grid/${path.replace(/^\//, "")}`;

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

const STATUS_ZH = {
  400: "请求无效",
  401: "令牌无效或已失效，请重新登录",
  403: "无权执行此操作",
  404: "不存在或不在您的数据范围内",
  409: "案件状态已变化（或被他人修改），请刷新后重试",
  422: "填写内容不符合要求",
  502: "上游服务暂不可达",
  503: "服务暂不可用，请稍后重试",
};

function detailOf(status, body) {
  let detail = body && typeof body === "object" ? body.detail : null;
  if (Array.isArray(detail)) {
    detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("；");
  }
  const base = STATUS_ZH[status] || `请求失败（HTTP ${status}）`;
  return detail ? `${base}：${detail}` : base;
}

/** Headers with the token. */
export function authHeaders(extra = {}) {
  return token ? { Authorization: `Bearer ${token}`, ...extra } : { ...extra };
}

/**
 * Call the API; returns parsed JSON (or the Response with {raw: true}).
 * Throws ApiError with a Chinese message on any non-2xx answer or network failure.
 */
export async function api(path, { method = "GET", body, query, raw = false, signal } = {}) {
  const headers = authHeaders({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "网络连接失败，请检查网络后重试", null);
  }
  if (response.status === 401) unauthorizedHandlers.forEach((fn) => fn());
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, detailOf(response.status, parsed), parsed);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** The file name of a download from its Content-Disposition (RFC 6266 filename* first). */
export function filenameOf(response, fallback) {
  const cd = response.headers.get("Content-Disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) {
    try { return decodeURIComponent(star[1]); } catch { /* fall through */ }
  }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  return plain ? plain[1] : fallback;
}
