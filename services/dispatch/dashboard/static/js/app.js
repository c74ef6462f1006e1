// 综合指挥中心 · 调度台 — entry point: sign-in, header, hash routing, the live case stream.
//
// Routes: #/queues[/<queue>]  #/case/<id>  #/perf  #/accountability  #/devolution  #/forces

import { renderAccountability } from "./accountability.js";
import { api, getToken, onUnauthorized, setToken } from "./api.js";
import { renderCase } from "./case.js";
import { renderDevolution } from "./devolution.js";
import { renderForces } from "./forces.js";
import { fmtClock, h, mount, toast } from "./dom.js";
import { countyName, divisionName, loadJurisdiction, resetJurisdiction, unitName } from "./jurisdiction.js";
import { ROLE_LABELS, label } from "./labels.js";
import { renderPerf } from "./perf.js";
import { followStream, renderQueues, resetQueues, visibleQueues } from "./queues.js";
import { openStream } from "./sse.js";
import { emit, resetListeners, store } from "./store.js";
import { WorkCalendar } from "./worktime.js";

const view = document.getElementById("view");
const topbar = document.getElementById("topbar");
const FEED_MAX = 60;
const TICK_MS = 30000;
// Who may run a what-if (POST /v1/whatif): county-wide admins and dispatchers.
const mayWhatIf = (me) => ["admin", "dispatcher"].includes(me.role) && me.township === "*";

let disposeView = null;
let stream = null;
let timers = [];

function setLive(state) {
  store.live = state;
  const el = document.getElementById("live");
  el.dataset.state = state;
  el.querySelector(".live-text").textContent = {
    connecting: "连接中", live: "实时", reconnecting: "重连中", unauthorized: "未授权",
  }[state] || state;
  if (state === "live") emit("stream-live");
}

function scopeText(me) {
  const role = label(ROLE_LABELS, me.role);
  if (me.role === "unit") return `${role} · ${unitName(me.unit)}`;
  if (me.role === "member") return `${role} · ${unitName(me.unit)} · ${me.member || ""}`;
  return `${role} · ${me.township === "*" ? "全县" : divisionName(me.township)}`;
}

function drawHeader() {
  const me = store.me;
  topbar.hidden = false;
  document.getElementById("scope").textContent = scopeText(me);
  document.getElementById("scope").dataset.role = me.role;
  const county = countyName();
  const title = `${county ? `${county}` : ""}综合指挥中心 · 调度台`;
  document.getElementById("brand-title").textContent = title;
  document.title = title;
}

function route() {
  if (!store.me) return;
  disposeView?.();
  disposeView = null;
  const hash = location.hash || "";
  const [, section, arg] = hash.split("/");
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (section === "case" ? "queues" : section || "queues"));
  }
  view.scrollTop = 0;
  if (section === "case" && arg) disposeView = renderCase(view, decodeURIComponent(arg));
  else if (section === "perf") disposeView = renderPerf(view);
  else if (section === "accountability" && !["unit", "member"].includes(store.me.role)) {
    disposeView = renderAccountability(view);
  }
  else if (section === "devolution" && mayWhatIf(store.me)) disposeView = renderDevolution(view);
  else if (section === "forces") disposeView = renderForces(view);
  else {
    const fallback = visibleQueues(store.me)[0].id;
    disposeView = renderQueues(view, arg || fallback);
  }
}

function showLogin(message) {
  topbar.hidden = true;
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    placeholder: "请输入工作人员令牌" });
  const error = h("div", { class: "form-error", role: "alert" }, message || "");
  const submit = h("button", { type: "submit", class: "btn" }, "登录");
  const form = h("form", { class: "login", "data-form": "login" },
    h("h1", {}, "综合指挥中心 · 调度台"),
    h("p", {}, "请使用工作人员令牌登录，页面仅显示本账号数据范围内的案件。"),
    h("label", { for: "token" }, "令牌"), input, error, submit,
    h("p", { class: "small", style: "margin-top:14px" }, "令牌由系统管理员发放。开发环境令牌见 make run 的启动输出。"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    const ok = await signIn(input.value.trim());
    if (!ok) {
      submit.disabled = false;
      error.textContent = "令牌无效，请检查后重试";
      input.select();
    }
  });
  mount(view, h("div", { class: "login-wrap" }, form));
  input.focus();
}

async function signIn(token) {
  if (!token) return false;
  setToken(token);
  try {
    store.me = await api("/dashboard/api/me");
  } catch (err) {
    setToken(null);
    store.me = null;
    if (err.status !== 401) toast(err.message, "error");
    return false;
  }
  await start();
  return true;
}

function signOut(message) {
  stream?.close();
  stream = null;
  timers.forEach(clearInterval);
  timers = [];
  disposeView?.();
  disposeView = null;
  resetListeners();
  resetQueues();
  resetJurisdiction();
  setToken(null);
  store.me = null;
  store.feed = [];
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  showLogin(message);
}

async function start() {
  // Calendar and jurisdiction first (names, map, working time); neither blocks the page for long.
  const [calendar] = await Promise.all([
    api("/dashboard/api/calendar").catch(() => null),
    Promise.race([loadJurisdiction(), new Promise((resolve) => setTimeout(resolve, 3000))]),
  ]);
  store.calendar = new WorkCalendar(calendar);
  loadJurisdiction().then((bundle) => {
    if (bundle) { drawHeader(); emit("jurisdiction-loaded"); }
  });
  drawHeader();
  for (const a of document.querySelectorAll("[data-nav-staff]")) a.hidden = ["unit", "member"].includes(store.me.role);
  for (const a of document.querySelectorAll("[data-nav-whatif]")) a.hidden = !mayWhatIf(store.me);
  followStream();
  stream = openStream({
    onStatus: (state) => {
      setLive(state);
      if (state === "unauthorized") signOut("令牌已失效，请重新登录");
    },
    onEvent: ({ data }) => {
      if (!data || typeof data !== "object" || !data.case_id) return;
      store.feed.unshift(data);
      store.feed.length = Math.min(store.feed.length, FEED_MAX);
      emit("case-event", data);
      emit("feed-updated");
    },
  });
  timers.push(setInterval(() => emit("tick"), TICK_MS));
  if (!location.hash || location.hash === "#/" || location.hash === "#") {
    history.replaceState(null, "", `#/queues/${visibleQueues(store.me)[0].id}`);
  }
  route();
}

function clock() {
  const el = document.getElementById("clock");
  if (el) el.textContent = `北京时间 ${fmtClock()}`;
}

window.addEventListener("hashchange", route);
document.getElementById("signout").addEventListener("click", () => signOut());
onUnauthorized(() => { if (store.me) signOut("令牌已失效，请重新登录"); });
setInterval(clock, 1000);
clock();

(async () => {
  const token = getToken();
  if (token && (await signIn(token))) return;
  showLogin();
})();
