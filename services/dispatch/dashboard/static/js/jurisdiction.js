// The county's jurisdiction (辖区) as the grid service exports it (GET /v1/jurisdiction through
// the same-origin proxy): division names and boundaries for the map, units and matters for
// manual dispatch. Loaded once per sign-in; everything degrades to codes when it cannot load.

import { api, gridPath } from "./api.js";

let bundle = null;
let loading = null;
let failure = null;
const divisions = new Map();
const units = new Map();
const matters = new Map();

/** Load (once) the bundle; resolves to it, or null when the grid service cannot be reached. */
export function loadJurisdiction() {
  if (bundle) return Promise.resolve(bundle);
  if (!loading) {
    loading = api(gridPath("v1/jurisdiction"))
      .then((doc) => {
        bundle = doc;
        failure = null;
        for (const f of doc?.divisions?.features || []) divisions.set(f.properties.code, f);
        for (const u of doc?.units || []) units.set(u.id, u);
        for (const m of doc?.matters || []) matters.set(m.code, m);
        return bundle;
      })
      .catch((err) => {
        failure = err;
        loading = null;
        return null;
      });
  }
  return loading;
}

export function resetJurisdiction() {
  bundle = null; loading = null; failure = null;
  divisions.clear(); units.clear(); matters.clear();
}

export const jurisdictionError = () => failure;
export const jurisdiction = () => bundle;
export const countyName = () => bundle?.name || null;

export function division(code) { return code ? divisions.get(code) || null : null; }
export function divisionName(code) { return division(code)?.properties?.name || code || "—"; }
export function unit(id) { return id ? units.get(id) || null : null; }
export function unitName(id) { return unit(id)?.name || id || "—"; }
export function matter(code) { return code ? matters.get(code) || null : null; }
export function matterName(code) { return matter(code)?.name || code || "未定性"; }

export function townships() {
  return [...divisions.values()].filter((f) => f.properties.level === "township")
    .map((f) => ({ code: f.properties.code, name: f.properties.name }));
}

export function allMatters() { return [...matters.values()]; }

/** Divisions (features) directly or indirectly under `code`, `code` itself included. */
export function featuresUnder(code) {
  return [...divisions.values()].filter((f) => f.properties.code.startsWith(code));
}

/** Units that may serve a township: its own offices and team, agencies covering it, county departments. */
export function unitsForTownship(township) {
  const own = [];
  const agencies = [];
  const departments = [];
  for (const u of units.values()) {
    if (u.kind === "county_department") departments.push(u);
    else if (u.kind === "stationed_agency") { if (!township || (u.covers || []).includes(township)) agencies.push(u); }
    else if (!township || u.township_code === township) own.push(u);
  }
  return { own, agencies, departments };
}

export function countyDepartments() { return [...units.values()].filter((u) => u.kind === "county_department"); }

/**
 * The default jurisdiction chain (属地默认) of a matter in a township, as routing step 4 does it:
 * the devolved township unit, then the department's stationed agency covering the township, then
 * the county department. Override rules (派遣规则) are not evaluated here. Each: {unit, decided_by, exists, why_zh}.
 */
export function defaultChain(township, matterCode) {
  const m = matter(matterCode);
  if (!bundle || !m || !township) return [];
  const town = divisionName(township);
  const department = unit(m.department);
  const departmentName = department?.name || m.department;
  const chain = [];
  const devolved = (bundle.devolution?.[township] || []).includes(m.code);
  if (devolved) {
    const unitId = bundle.township_functions?.[township]?.[m.township_function] || null;
    const u = unit(unitId);
    chain.push({
      unit: unitId,
      decided_by: "devolved",
      exists: Boolean(u),
      why_zh: u ? `事项「${m.name}」已下放至${town}：由${u.name}承办` : `事项「${m.name}」已下放至${town}，但无承担该职能的单位`,
    });
  }
  const agency = [...units.values()].find(
    (u) => u.kind === "stationed_agency" && u.department === m.department && (u.covers || []).includes(township),
  );
  if (agency) {
    chain.push({
      unit: agency.id,
      decided_by: "stationed_agency",
      exists: true,
      why_zh: chain.length ? `${departmentName}派驻${town}的${agency.name}（派驻机构，候补）`
        : `事项「${m.name}」未下放至${town}：由${departmentName}派驻的${agency.name}承办`,
    });
  }
  chain.push({
    unit: m.department,
    decided_by: "county_department",
    exists: Boolean(department),
    why_zh: chain.length ? `${departmentName}（县级部门，吹哨报到，候补）` : `由${departmentName}承办（吹哨报到）`,
  });
  const seen = new Set();
  return chain.filter((c) => c.unit && !seen.has(c.unit) && seen.add(c.unit));
}
