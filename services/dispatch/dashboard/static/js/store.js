// Shared page state and a tiny event bus (views subscribe to "case-event", "tick" …).

export const store = {
  /** The signed-in staff token's identity: {role, township, unit, token_name, whole_county}. */
  me: null,
  /** WorkCalendar for working-time countdowns. */
  calendar: null,
  /** Latest case events from the stream (newest first), for the live feed. */
  feed: [],
  /** Stream state: connecting | live | reconnecting | unauthorized. */
  live: "connecting",
};

const listeners = new Map();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event)?.delete(fn);
}

export function emit(event, payload) {
  for (const fn of [...(listeners.get(event) || [])]) {
    try { fn(payload); } catch (err) { console.error(err); }
  }
}

/** Remove every listener (sign-out). */
export function resetListeners() { listeners.clear(); }
