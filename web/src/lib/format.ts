// Numbers and times for people: at most 4 decimals (4 significant digits below 1), local
// time with the zone shown.

const DEFAULT_LOCALE = "en-US";

/** A number with at most 4 decimals; tiny and huge numbers in exponent form. */
export function formatNumber(value: number | null | undefined, locale: string = DEFAULT_LOCALE): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e15 || abs < 1e-4) {
    return value.toExponential(3).replace(/\.?0+e/, "e");
  }
  if (abs >= 1) {
    return new Intl.NumberFormat(locale, { maximumFractionDigits: 4 }).format(value);
  }
  return new Intl.NumberFormat(locale, { maximumSignificantDigits: 4 }).format(value);
}

/** An integer count with grouping. */
export function formatCount(value: number | null | undefined, locale: string = DEFAULT_LOCALE): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(value);
}

/** The browser's IANA time zone. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function parts(ms: number, timeZone: string | undefined, withSeconds: boolean, withZone: boolean): Record<string, string> {
  const format = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: withSeconds ? "2-digit" : undefined,
    hourCycle: "h23",
    timeZoneName: withZone ? "short" : undefined,
  });
  const out: Record<string, string> = {};
  for (const part of format.formatToParts(new Date(ms))) out[part.type] = part.value;
  return out;
}

/** `2026-05-20 14:03:07 CEST`: local time (or `timeZone`) with the zone. */
export function formatTime(
  value: number | string | null | undefined,
  options: { timeZone?: string; seconds?: boolean; zone?: boolean } = {},
): string {
  if (value === null || value === undefined || value === "") return "—";
  const ms = typeof value === "number" ? value : Date.parse(value);
  if (Number.isNaN(ms)) return String(value);
  const p = parts(ms, options.timeZone, options.seconds ?? true, options.zone ?? true);
  const time = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${options.seconds ?? true ? `:${p.second}` : ""}`;
  return options.zone ?? true ? `${time} ${p.timeZoneName}` : time;
}

/** The short name of the zone now, such as `CEST` or `UTC`. */
export function zoneName(timeZone?: string, at: number = Date.now()): string {
  return parts(at, timeZone, false, true).timeZoneName ?? "";
}

/** A duration in words: `45 s`, `12 min`, `3 h`, `2 d`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 60_000) return `${Math.round(ms / 1000)} s`;
  if (abs < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (abs < 86_400_000 * 2) return `${formatNumber(Math.round(ms / 360_000) / 10)} h`;
  return `${formatNumber(Math.round(ms / 8_640_000) / 10)} d`;
}

/** How long ago, for "latest" values: `5 min ago`. */
export function formatAgo(ms: number, now: number = Date.now()): string {
  const delta = now - ms;
  if (delta < 0) return "in the future";
  if (delta < 5_000) return "just now";
  return `${formatDuration(delta)} ago`;
}

/** Epoch nanoseconds (the audit trail's `at_ns`) to milliseconds. */
export function nsToMs(ns: number): number {
  return Math.floor(ns / 1e6);
}
