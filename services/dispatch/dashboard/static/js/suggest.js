// 派单到人 in the case view: who to send for an accepted case (the server's suggestions, nearest first,
// each with its reasons) and one click to assign a member or team. GET /v1/forces/cases/{id}/suggestions,
// POST /v1/forces/cases/{id}/assign. Shown to the unit's account, its leader and dispatchers.

import { api } from "./api.js";
import { h, mount, toast } from "./dom.js";

const STATES = new Set(["accepted", "reopened"]);
const ROLES = new Set(["unit", "member", "dispatcher", "admin"]);

/** Whether the case view shows the suggestion card for this case and signed-in role. */
export function showsSuggestions(detail, me) {
  return STATES.has(detail.state) && ROLES.has(me?.role);
}

function row(detail, s, onDone) {
  const button = h("button", { type: "button", class: "btn btn-small", "data-assign": s.id }, "派单");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/v1/forces/cases/${detail.id}/assign`, {
        method: "POST", body: { assignee: s.id, expected_version: detail.version },
      });
      toast(`已派单给 ${s.name}`, "success");
      onDone?.();
    } catch (err) {
      button.disabled = false;
      toast(err.message, "error");
    }
  });
  const held = detail.assignee === s.id;
  return h("li", { class: "suggestion", "data-suggestion-id": s.id, "data-kind": s.kind, "data-tier": s.tier },
    h("div", {},
      h("strong", {}, s.kind === "team" ? `【编组】${s.name}` : s.name),
      s.distance_m !== null ? h("span", { class: "small muted" }, ` · 约 ${s.distance_m} 米`) : null,
      held ? h("span", { class: "badge state-accepted" }, "当前承办") : null),
    h("div", { class: "small muted" }, s.reasons.map((r) => r.split(" / ")[0]).join("；")),
    held ? null : button);
}

/** The 派单到人 card: loads the suggestions and lays them out. `onDone` after an assignment. */
export function suggestPanel(detail, { onDone } = {}) {
  const body = h("div", { class: "card-body", "data-suggestions": "loading" }, "正在计算派单建议…");
  const card = h("section", { class: "card", "data-card": "suggestions" },
    h("div", { class: "card-head" }, h("h2", {}, "派单到人（在岗力量，近者优先）")), body);
  api(`/v1/forces/cases/${detail.id}/suggestions`).then((res) => {
    body.dataset.suggestions = "loaded";
    if (!res.items.length) {
      mount(body, h("div", { class: "empty" }, "本单位暂无在岗可派人员"));
      return;
    }
    mount(body,
      detail.assignee ? h("div", { class: "small", "data-assignee": detail.assignee },
        `当前承办：${detail.assignee}（${(detail.assignees || []).length} 人）`) : null,
      h("ol", { class: "suggestions" }, res.items.map((s) => row(detail, s, onDone))));
  }).catch((err) => {
    body.dataset.suggestions = "error";
    mount(body, h("div", { class: "error-box" }, `无法获取派单建议：${err.message}`));
  });
  return card;
}
