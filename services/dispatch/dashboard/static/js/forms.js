// The action dialog: one <dialog>, its form built from rules.FORMS, posting
// POST /v1/cases/{id}/actions/{action} with the case's version (optimistic concurrency).

import { api } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { countyDepartments, unitName, unitsForTownship } from "./jurisdiction.js";
import { ACTION_LABELS } from "./labels.js";
import { FORMS } from "./rules.js";

function unitOptions(detail, { departmentsOnly = false } = {}) {
  const groups = [];
  if (departmentsOnly) {
    groups.push(["县级部门", countyDepartments()]);
  } else {
    const { own, agencies, departments } = unitsForTownship(detail.township);
    groups.push(["本乡镇单位", own], ["派驻机构", agencies], ["县级部门", departments]);
  }
  const exclude = new Set([detail.unit, ...(detail.cohandlers || [])].filter(Boolean));
  return [
    h("option", { value: "" }, "请选择…"),
    ...groups.filter(([, list]) => list.length).map(([name, list]) => h("optgroup", { label: name },
      list.filter((u) => !exclude.has(u.id)).map((u) => h("option", { value: u.id }, u.name)))),
  ];
}

function field(spec, detail) {
  const id = `f-${spec.name}`;
  let input;
  switch (spec.type) {
    case "textarea":
      input = h("textarea", { id, name: spec.name, required: spec.required || null, maxlength: 2000 });
      break;
    case "datetime":
      input = h("input", { id, name: spec.name, type: "datetime-local", required: spec.required || null });
      break;
    case "bool":
      return h("fieldset", { class: "radio-row", style: "border:0;padding:0;margin:8px 0 0" },
        h("legend", { class: "small muted" }, spec.label),
        spec.options.map(([value, text], i) => h("label", {},
          h("input", { type: "radio", name: spec.name, value, checked: i === 0 }), text)));
    case "select":
      input = h("select", { id, name: spec.name, required: spec.required || null },
        spec.options.map(([value, text]) => h("option", { value }, text)));
      break;
    case "unit":
      input = h("select", { id, name: spec.name, required: spec.required || null }, unitOptions(detail));
      break;
    case "department":
      input = h("select", { id, name: spec.name, required: spec.required || null },
        unitOptions(detail, { departmentsOnly: true }));
      break;
    default:
      input = h("input", { id, name: spec.name, type: "text", required: spec.required || null });
  }
  return [h("label", { for: id }, spec.label, spec.required ? " *" : ""), input];
}

function bodyOf(form, specs) {
  const data = new FormData(form);
  const body = {};
  for (const spec of specs) {
    const raw = data.get(spec.name);
    if (raw === null || raw === "") continue;
    if (spec.type === "bool") body[spec.name] = raw === "true";
    else if (spec.type === "datetime") body[spec.name] = `${raw.length === 16 ? `${raw}:00` : raw}+08:00`;
    else body[spec.name] = String(raw).trim();
  }
  return body;
}

/**
 * Ask for the action's fields and perform it. Resolves to the API answer, or null when cancelled.
 */
export function performAction(detail, action) {
  const dialog = document.getElementById("dialog");
  const form = document.getElementById("dialog-form");
  const spec = FORMS[action] || { fields: [] };
  const error = h("div", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn", value: "ok", "data-submit": action },
    `确认${ACTION_LABELS[action]}`);
  mount(form,
    h("h2", {}, `${ACTION_LABELS[action]}`),
    h("div", { class: "small muted" }, `案件 ${detail.source_id}（当前主办：${detail.unit ? unitName(detail.unit) : "无"}）`),
    spec.confirm ? h("p", {}, spec.confirm) : null,
    spec.fields.map((f) => field(f, detail)),
    error,
    h("div", { class: "dialog-buttons" },
      h("button", { type: "button", class: "btn btn-secondary", onclick: () => dialog.close("cancel") }, "取消"),
      submit));

  return new Promise((resolve) => {
    let result = null;
    const onSubmit = async (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      submit.disabled = true;
      error.textContent = "";
      try {
        result = await api(`/v1/cases/${detail.id}/actions/${action}`, {
          method: "POST",
          body: { ...bodyOf(form, spec.fields), expected_version: detail.version },
        });
        toast(`${ACTION_LABELS[action]}成功`, "ok");
        dialog.close("ok");
      } catch (err) {
        error.textContent = err.message;
        submit.disabled = false;
      }
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", () => {
      form.removeEventListener("submit", onSubmit);
      resolve(result);
    }, { once: true });
    dialog.showModal();
    form.querySelector("textarea, input, select")?.focus();
  });
}
