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
