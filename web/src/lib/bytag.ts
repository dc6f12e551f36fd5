// The "By tag" view of a measure type: a row per value of one of its tags (an endpoint, a
// host…) with its counts and percentiles, a boxplot per value, visits per IP, and the counts
// per time slice. Here: the requests, and the answers turned into rows, bars and lines.

import { queryString, type Query } from "./api";
import { dynamicAllowed, type Timeslice } from "./query";
import { toRfc3339, type TimeRange } from "./timerange";
import type { Bucket, LatestPoint, SeriesData } from "./types";

/** The tag of visitors' addresses: its values are counted ("unique visitors") and listed
 * ("visits per IP") when a measure type's series carry it. */
export const IP_KEY = "ip";

/** The figures of a row after its counts, in table order. */
export const FIGURES = ["mean", "p25", "p50", "p75", "p90", "p99", "min", "max"] as const;
export type Figure = (typeof FIGURES)[number];

export const FIGURE_LABELS: Record<Figure, string> = {
  mean: "Mean", p25: "p25", p50: "Median", p75: "p75", p90: "p90", p99: "p99", min: "Min", max: "Max",
};

/** How many IPs "visits per IP" lists. */
export const TOP_IPS = 20;

/** The tag keys of a measure type's series, sorted. */
export function tagKeys(latest: LatestPoint[], measure: string): string[] {
  const keys = new Set<string>();
  for (const point of latest) {
    if (point.measure_type === measure) for (const key of Object.keys(point.tags ?? {})) keys.add(key);
  }
  return [...keys].sort();
}

/** The measure types whose series carry at least one tag, sorted. */
export function taggedMeasures(latest: LatestPoint[]): string[] {
  const measures = new Set<string>();
  for (const point of latest) if (Object.keys(point.tags ?? {}).length > 0) measures.add(point.measure_type);
  return [...measures].sort();
}

/** The key to group by at first: "endpoint", else the first that is not the IP (one row per
 * visitor is rarely the point), else the first. */
export function defaultGroupKey(keys: string[]): string | null {
  if (keys.includes("endpoint")) return "endpoint";
  return keys.find((k) => k !== IP_KEY) ?? keys[0] ?? null;
}

/** The keys whose distinct values a row may count: the others than the grouping one. */
export function uniqueKeys(keys: string[], groupKey: string | null): string[] {
  return keys.filter((k) => k !== groupKey);
}

/** The key counted at first: the IP when there is one, else the first other key. */
export function defaultUniqueKey(keys: string[], groupKey: string | null): string | null {
  const others = uniqueKeys(keys, groupKey);
  return others.includes(IP_KEY) ? IP_KEY : others[0] ?? null;
}

export function distinctStatistic(key: string): string {
  return `count_distinct:tag:${key}`;
}

/** The column header of the distinct count of a key. */
export function uniqueLabel(key: string): string {
  return key === IP_KEY ? "Unique visitors" : `Unique ${key}`;
}

/** The statistics of the per-value table. */
export function byTagStatistics(uniqueKey: string | null): string[] {
  return ["count", ...(uniqueKey ? [distinctStatistic(uniqueKey)] : []), ...FIGURES];
}

/** A filter of series by tag values: each key keeps the series whose value is listed (keys
 * ANDed). */
export type TagsFilter = Record<string, string[]>;

/** The key of a value in sets and React keys; series without the tag have none. */
export function valueKey(value: string | null | undefined): string {
  return value ?? "\u0000";
}

/**
 * The filter that keeps the values not excluded, or null when none is (no filter). Series
 * without the tag cannot be listed, so any filter leaves them out.
 */
export function tagsFilter(key: string, values: (string | null)[], excluded: ReadonlySet<string>): TagsFilter | null {
  if (!values.some((v) => excluded.has(valueKey(v)))) return null;
  return { [key]: values.filter((v): v is string => v !== null && !excluded.has(valueKey(v))) };
}

export interface GroupedStatsRequest {
  measure: string;
  /** The tag whose values make the groups. */
  key: string;
  range: Pick<TimeRange, "from" | "to">;
  statistics: readonly string[];
  tags?: TagsFilter | null;
  timeslice?: Timeslice;
  isStatic?: boolean;
  tz?: string;
  /** List empty slices too (with counts of 0). */
  fill?: "null" | "zero";
}

const experimentPath = (id: number | string) => `/experiments/${encodeURIComponent(String(id))}`;

function tagsQuery(tags: TagsFilter | null | undefined): string | undefined {
  return tags && Object.keys(tags).length > 0 ? JSON.stringify(tags) : undefined;
}

/** Path and query of `/experiments/{id}/stats` grouped by a tag's values. */
export function groupedStatsPath(experimentId: number | string, request: GroupedStatsRequest): string {
  const query: Query = {
    measure: request.measure,
    from: toRfc3339(request.range.from),
    to: toRfc3339(request.range.to),
    group_by: `tag:${request.key}`,
    statistics: request.statistics.join(","),
    tags: tagsQuery(request.tags),
  };
  if (request.timeslice) {
    query.timeslice = request.timeslice;
    query.timeslice_is_static = dynamicAllowed(request.timeslice) ? request.isStatic ?? true : true;
    query.tz = request.tz;
    query.fill = request.fill;
  }
  return `${experimentPath(experimentId)}/stats${queryString(query)}`;
}

/** Path and query of `/experiments/{id}/boxplot`: a box per value of a tag. */
export function groupedBoxplotPath(
  experimentId: number | string,
  request: { measure: string; key: string; range: Pick<TimeRange, "from" | "to">; tags?: TagsFilter | null },
): string {
  const query: Query = {
    measure: request.measure,
    group_by: `tag:${request.key}`,
    from: toRfc3339(request.range.from),
    to: toRfc3339(request.range.to),
    tags: tagsQuery(request.tags),
  };
  return `${experimentPath(experimentId)}/boxplot${queryString(query)}`;
}

/** Path and query of the points per IP (of the values kept). */
export function visitsPerIpPath(
  experimentId: number | string,
  request: { measure: string; range: Pick<TimeRange, "from" | "to">; tags?: TagsFilter | null },
): string {
  return groupedStatsPath(experimentId, { ...request, key: IP_KEY, statistics: ["count"] });
}

/** A row of the per-value table. */
export interface TagRow extends Record<Figure, number | null> {
  value: string | null;
  count: number;
  /** Distinct values of the counted key; null when none is counted. */
  unique: number | null;
}

function figure(bucket: Bucket, name: string): number | null {
  const v = bucket[name];
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** One row per group of a stats answer without time slices (the first bucket of a group
 * when it has several). */
export function tagRows(buckets: Bucket[], uniqueKey: string | null): TagRow[] {
  const rows = new Map<string, TagRow>();
  for (const b of buckets) {
    const value = b.group ?? null;
    if (rows.has(valueKey(value))) continue;
    const row = { value, count: figure(b, "count") ?? 0, unique: uniqueKey ? figure(b, distinctStatistic(uniqueKey)) : null } as TagRow;
    for (const f of FIGURES) row[f] = figure(b, f);
    rows.set(valueKey(value), row);
  }
  return [...rows.values()];
}

export type SortKey = "value" | "count" | "unique" | Figure;
export interface Sort {
  key: SortKey;
  descending: boolean;
}

/** Busiest first. */
export const DEFAULT_SORT: Sort = { key: "count", descending: true };

/** The sort after clicking a column: the same column flips; another starts with the largest
 * numbers or the values A to Z. */
export function nextSort(current: Sort, key: SortKey): Sort {
  if (current.key === key) return { key, descending: !current.descending };
  return { key, descending: key !== "value" };
}

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** Rows in the sort's order; missing figures (and series without the tag) last either way,
 * ties by value. */
export function sortRows(rows: TagRow[], sort: Sort): TagRow[] {
  const sign = sort.descending ? -1 : 1;
  const byValue = (a: TagRow, b: TagRow) => {
    if (a.value === null || b.value === null) return a.value === b.value ? 0 : a.value === null ? 1 : -1;
    return collator.compare(a.value, b.value);
  };
  return [...rows].sort((a, b) => {
    if (sort.key === "value") {
      if (a.value === null || b.value === null) return byValue(a, b);
      return sign * byValue(a, b);
    }
    const x = a[sort.key];
    const y = b[sort.key];
    if (x === null || y === null) return x === y ? byValue(a, b) : x === null ? 1 : -1;
    return sign * (x - y) || byValue(a, b);
  });
}

/** The counts of each value per time slice, as lines (epoch ms, in time order). */
export function sliceCounts(buckets: Bucket[]): Map<string, SeriesData> {
  const lines = new Map<string, { ms: number; count: number }[]>();
  for (const b of buckets) {
    const ms = Date.parse(b.start);
    if (Number.isNaN(ms)) continue;
    const key = valueKey(b.group ?? null);
    let line = lines.get(key);
    if (!line) lines.set(key, (line = []));
    line.push({ ms, count: figure(b, "count") ?? 0 });
  }
  const out = new Map<string, SeriesData>();
  for (const [key, line] of lines) {
    line.sort((a, b) => a.ms - b.ms);
    out.set(key, { tags: {}, timestamps_ms: line.map((p) => p.ms), values: line.map((p) => p.count) });
  }
  return out;
}

export interface Bar {
  label: string;
  count: number;
  /** Of the largest count, for the bar's length. */
  percent: number;
}

/** The `n` largest counts as bars (ties by label), and how many values are left out. */
export function topBars(buckets: Bucket[], n: number = TOP_IPS, none = "(none)"): { bars: Bar[]; more: number } {
  const counts = new Map<string, number>();
  for (const b of buckets) {
    const label = b.group ?? none;
    counts.set(label, (counts.get(label) ?? 0) + (figure(b, "count") ?? 0));
  }
  const sorted = [...counts.entries()]
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1] || collator.compare(a[0], b[0]));
  const top = sorted.slice(0, n);
  const max = top[0]?.[1] ?? 0;
  return {
    bars: top.map(([label, count]) => ({ label, count, percent: max > 0 ? Math.round((count / max) * 1000) / 10 : 0 })),
    more: sorted.length - top.length,
  };
}
