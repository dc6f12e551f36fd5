// Shaping API answers for charts and tables: aligned columns for uPlot, live points,
// sparkline paths, boxplot geometry, latest values by measure type.

import { legendLabels } from "./legend";
import type { BoxplotBox, LatestPoint, SeriesData, Tags } from "./types";

/** A stable key of a tag set: `host=lab1,room=2` (sorted), "" for none. */
export function tagsKey(tags: Tags | undefined | null): string {
  if (!tags) return "";
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}=${tags[k]}`)
    .join(",");
}

/** Columns for uPlot: x in seconds, one y column per series (null where it has no point). */
export interface Aligned {
  x: number[];
  ys: (number | null)[][];
  keys: string[];
  tags: Tags[];
  /** Legend labels: they depend on every series, so a new series may change them all. */
  labels: string[];
  /** Points received, over every series. */
  points: number;
}

/** Joins the series of a `/series` answer on their timestamps. */
export function alignSeries(measure: string, series: SeriesData[]): Aligned {
  const keys = series.map((s) => tagsKey(s.tags));
  const tags = series.map((s) => s.tags ?? {});
  const labels = legendLabels(tags.map((t) => ({ measure, tags: t })));
  const points = series.reduce((n, s) => n + Math.min(s.timestamps_ms.length, s.values.length), 0);
  if (series.length === 1) {
    const only = series[0];
    const n = Math.min(only.timestamps_ms.length, only.values.length);
    return {
      x: only.timestamps_ms.slice(0, n).map((ms) => ms / 1000),
      ys: [only.values.slice(0, n)],
      keys,
      tags,
      labels,
      points,
    };
  }
  const all = new Set<number>();
  for (const s of series) for (const ms of s.timestamps_ms) all.add(ms);
  const xs = [...all].sort((a, b) => a - b);
  const index = new Map<number, number>();
  xs.forEach((ms, i) => index.set(ms, i));
  const ys = series.map((s) => {
    const column: (number | null)[] = new Array(xs.length).fill(null);
    const n = Math.min(s.timestamps_ms.length, s.values.length);
    for (let i = 0; i < n; i++) column[index.get(s.timestamps_ms[i])!] = s.values[i];
    return column;
  });
  return { x: xs.map((ms) => ms / 1000), ys, keys, tags, labels, points };
}

/**
 * Adds one live point (epoch ms) to aligned columns, keeping x sorted; a new tag set
 * becomes a new series. Returns a new object (the input is not changed).
 */
export function appendPoint(data: Aligned, measure: string, tags: Tags | undefined, ms: number, value: number): Aligned {
  const key = tagsKey(tags);
  let keys = data.keys;
  let tagSets = data.tags;
  let labels = data.labels;
  let ys = data.ys.map((column) => column.slice());
  let column = keys.indexOf(key);
  if (column < 0) {
    keys = [...keys, key];
    tagSets = [...tagSets, tags ?? {}];
    labels = legendLabels(tagSets.map((t) => ({ measure, tags: t })));
    ys = [...ys, new Array(data.x.length).fill(null)];
    column = keys.length - 1;
  }
  const x = data.x.slice();
  const seconds = ms / 1000;
  // Usually the newest point: search from the end.
  let at = x.length;
  while (at > 0 && x[at - 1] > seconds) at--;
  if (at > 0 && x[at - 1] === seconds) {
    ys[column][at - 1] = value;
  } else {
    x.splice(at, 0, seconds);
    ys.forEach((c, i) => c.splice(at, 0, i === column ? value : null));
  }
  return { x, ys, keys, tags: tagSets, labels, points: data.points + 1 };
}

/** `x,y` pairs of an SVG polyline drawing values over `width`×`height` (y grows down). */
export function sparklinePoints(timestamps: number[], values: number[], width: number, height: number, padding = 2): string {
  const n = Math.min(timestamps.length, values.length);
  if (n === 0) return "";
  let t0 = Infinity, t1 = -Infinity, v0 = Infinity, v1 = -Infinity;
  for (let i = 0; i < n; i++) {
    t0 = Math.min(t0, timestamps[i]);
    t1 = Math.max(t1, timestamps[i]);
    v0 = Math.min(v0, values[i]);
    v1 = Math.max(v1, values[i]);
  }
  const spanT = t1 - t0 || 1;
  const spanV = v1 - v0;
  const round = (x: number) => Math.round(x * 10) / 10;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = n === 1 ? width / 2 : padding + ((timestamps[i] - t0) / spanT) * (width - 2 * padding);
    const y = spanV === 0 ? height / 2 : padding + (1 - (values[i] - v0) / spanV) * (height - 2 * padding);
    out.push(`${round(x)},${round(y)}`);
  }
  return out.join(" ");
}

/** Positions (0–100 %) of a box on an axis from `lo` to `hi`. */
export interface BoxGeometry {
  min: number;
  p25: number;
  p50: number;
  p75: number;
  max: number;
}

/** Padded axis bounds around a box's whiskers. */
export function boxDomain(box: BoxplotBox): [number, number] | null {
  if (box.min === null || box.max === null) return null;
  const span = box.max - box.min;
  const pad = span === 0 ? Math.abs(box.min) * 0.05 || 1 : span * 0.05;
  return [box.min - pad, box.max + pad];
}

/** Padded axis bounds around the whiskers of every box, so that boxes of one unit compare. */
export function sharedDomain(boxes: BoxplotBox[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const box of boxes) {
    if (box.min !== null) lo = Math.min(lo, box.min);
    if (box.max !== null) hi = Math.max(hi, box.max);
  }
  if (lo > hi) return null;
  return boxDomain({ measure: "", count: 0, min: lo, p25: null, p50: null, p75: null, max: hi });
}

/** Where a box's five numbers sit on its axis, in percent; null without figures. */
export function boxGeometry(box: BoxplotBox, domain: [number, number] | null = boxDomain(box)): BoxGeometry | null {
  if (!domain || box.min === null || box.p25 === null || box.p50 === null || box.p75 === null || box.max === null) {
    return null;
  }
  const [lo, hi] = domain;
  const at = (v: number) => (hi === lo ? 50 : Math.round(((v - lo) / (hi - lo)) * 10000) / 100);
  return { min: at(box.min), p25: at(box.p25), p50: at(box.p50), p75: at(box.p75), max: at(box.max) };
}

/** The latest point of each measure type: the newest over its series, and how many series. */
export interface LatestOfType {
  measure: string;
  value: number;
  timestampMs: number;
  series: number;
}

export function latestByType(latest: LatestPoint[]): LatestOfType[] {
  const byType = new Map<string, LatestOfType>();
  for (const point of latest) {
    const ms = Date.parse(point.timestamp);
    const seen = byType.get(point.measure_type);
    if (!seen) {
      byType.set(point.measure_type, { measure: point.measure_type, value: point.value, timestampMs: ms, series: 1 });
    } else {
      seen.series += 1;
      if (ms > seen.timestampMs) {
        seen.value = point.value;
        seen.timestampMs = ms;
      }
    }
  }
  return [...byType.values()].sort((a, b) => a.measure.localeCompare(b.measure));
}

/** The newest timestamp (ms) over every series, or null. */
export function newestTimestamp(latest: LatestPoint[]): number | null {
  let newest: number | null = null;
  for (const point of latest) {
    const ms = Date.parse(point.timestamp);
    if (!Number.isNaN(ms) && (newest === null || ms > newest)) newest = ms;
  }
  return newest;
}

/** Audit records as NDJSON text (one JSON object a line). */
export function toNdjson(records: unknown[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : "");
}
