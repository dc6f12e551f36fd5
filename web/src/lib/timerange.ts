// Time ranges of the dashboard: presets, zoom and pan, datetime-local conversion.

export type Preset = "hour" | "day" | "week" | "custom";

export interface TimeRange {
  /** Inclusive start, epoch milliseconds. */
  from: number;
  /** Exclusive end, epoch milliseconds. */
  to: number;
  preset: Preset;
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const WEEK = 7 * DAY;

export const PRESETS: { id: Exclude<Preset, "custom">; label: string; span: number }[] = [
  { id: "hour", label: "Last hour", span: HOUR },
  { id: "day", label: "Last day", span: DAY },
  { id: "week", label: "Last week", span: WEEK },
];

export function presetSpan(preset: Exclude<Preset, "custom">): number {
  return PRESETS.find((p) => p.id === preset)!.span;
}

/** The preset's range ending at `end` (now by default). */
export function presetRange(preset: Exclude<Preset, "custom">, end: number = Date.now()): TimeRange {
  return { from: end - presetSpan(preset), to: end, preset };
}

/** A custom range, with the ends in order; null when they are equal or invalid. */
export function customRange(a: number, b: number): TimeRange | null {
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === b) return null;
  return { from: Math.min(a, b), to: Math.max(a, b), preset: "custom" };
}

/**
 * The range a dashboard opens with: the last week ending now, or, when the latest point is
 * older than that, the week ending just after the latest point.
 */
export function defaultRange(latestMs: number | null, now: number = Date.now()): TimeRange {
  if (latestMs !== null && latestMs < now - WEEK) {
    return latestWeek(latestMs);
  }
  return presetRange("week", now);
}

/** The week ending just after `latestMs` (the "Show latest data" button). */
export function latestWeek(latestMs: number): TimeRange {
  const end = latestMs + 1000;
  return { from: end - WEEK, to: end, preset: "custom" };
}

/** Moves a range by a fraction of its span (negative: earlier). */
export function pan(range: TimeRange, fraction: number): TimeRange {
  const shift = Math.round((range.to - range.from) * fraction);
  return { from: range.from + shift, to: range.to + shift, preset: "custom" };
}

/** Scales a range around its middle (factor 2: zoom out to twice the span). */
export function zoom(range: TimeRange, factor: number): TimeRange {
  const middle = (range.from + range.to) / 2;
  const half = ((range.to - range.from) * factor) / 2;
  const from = Math.round(middle - Math.max(half, 500));
  const to = Math.round(middle + Math.max(half, 500));
  return { from, to, preset: "custom" };
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** Epoch ms → the value of an `<input type="datetime-local">` in local time. */
export function toDatetimeLocal(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** An `<input type="datetime-local">` value (local time) → epoch ms, or null. */
export function fromDatetimeLocal(text: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(text.trim());
  if (!match) return null;
  const [, y, mo, d, h, mi, s, frac] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0), Number((frac ?? "0").padEnd(3, "0")));
  return Number.isNaN(date.getTime()) ? null : date.getTime();
}

/** RFC 3339 in UTC with milliseconds, as the API's `from`/`to` accept. */
export function toRfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/** Whether two ranges are the same. */
export function sameRange(a: TimeRange, b: TimeRange): boolean {
  return a.from === b.from && a.to === b.to && a.preset === b.preset;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 instant (`2026-05-20T12:00:00Z`, `…T14:00:00.5+02:00`) → epoch ms, or null.
 * Dates alone and other forms Date.parse would guess at are refused. */
export function parseRfc3339(text: string): number | null {
  // A `+` of an offset left unencoded in a query string reads back as a space.
  const trimmed = text.trim().replace(/ (\d{2}:\d{2})$/, "+$1");
  const match = RFC3339.exec(trimmed);
  if (!match) return null;
  const [, date, time, fraction, zone] = match;
  // Date.parse reads milliseconds; finer digits are cut rather than trusted to the engine.
  const ms = fraction ? `.${fraction.slice(0, 3).padEnd(3, "0")}` : "";
  const parsed = Date.parse(`${date}T${time}${ms}${zone.toUpperCase()}`);
  return Number.isNaN(parsed) ? null : parsed;
}

/** The custom range of a dashboard link's `?from=…&to=…` (alert notifications link so), or
 * null when the query has no valid pair. */
export function rangeFromSearch(search: string): TimeRange | null {
  const params = new URLSearchParams(search);
  const from = params.get("from");
  const to = params.get("to");
  if (from === null || to === null) return null;
  const a = parseRfc3339(from);
  const b = parseRfc3339(to);
  return a === null || b === null ? null : customRange(a, b);
}
