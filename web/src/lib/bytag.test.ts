import { describe, expect, it } from "vitest";
import {
  DEFAULT_SORT, byTagStatistics, defaultGroupKey, defaultUniqueKey, groupedBoxplotPath, groupedStatsPath, nextSort, sliceCounts, sortRows,
  tagKeys, tagRows, taggedMeasures, tagsFilter, topBars, uniqueKeys, uniqueLabel, valueKey, visitsPerIpPath, type Sort,
} from "./bytag";
import type { Bucket, LatestPoint } from "./types";

const range = { from: Date.parse("2026-05-13T12:00:00Z"), to: Date.parse("2026-05-20T12:00:00Z") };
const params = (path: string) => new URL(path, "http://x").searchParams;

const latest: LatestPoint[] = [
  { measure_type: "second", tags: { endpoint: "hello", ip: "10.0.0.1" }, timestamp: "2026-05-20T11:00:00Z", value: 0.1 },
  { measure_type: "second", tags: { endpoint: "world", ip: "10.0.0.2", version: "1.2" }, timestamp: "2026-05-20T11:00:00Z", value: 0.2 },
  { measure_type: "volt", tags: {}, timestamp: "2026-05-20T11:00:00Z", value: 3 },
  { measure_type: "hertz", tags: { source: "demo" }, timestamp: "2026-05-20T11:00:00Z", value: 50 },
];

describe("tag keys", () => {
  it("come from the series of the measure type", () => {
    expect(tagKeys(latest, "second")).toEqual(["endpoint", "ip", "version"]);
    expect(tagKeys(latest, "volt")).toEqual([]);
    expect(taggedMeasures(latest)).toEqual(["hertz", "second"]);
  });
  it("group by endpoint first, rarely by IP", () => {
    expect(defaultGroupKey(["endpoint", "ip", "version"])).toBe("endpoint");
    expect(defaultGroupKey(["host", "ip"])).toBe("host");
    expect(defaultGroupKey(["ip"])).toBe("ip");
    expect(defaultGroupKey([])).toBeNull();
  });
  it("count distinct IPs when there are, another key otherwise, nothing without one", () => {
    expect(uniqueKeys(["endpoint", "ip", "version"], "endpoint")).toEqual(["ip", "version"]);
    expect(defaultUniqueKey(["endpoint", "ip", "version"], "endpoint")).toBe("ip");
    expect(defaultUniqueKey(["endpoint", "version"], "endpoint")).toBe("version");
    expect(defaultUniqueKey(["source"], "source")).toBeNull();
    expect(uniqueLabel("ip")).toBe("Unique visitors");
    expect(uniqueLabel("version")).toBe("Unique version");
  });
});

describe("requests", () => {
  it("ask for the table's statistics grouped by the tag", () => {
    const p = params(groupedStatsPath(1, { measure: "second", key: "endpoint", range, statistics: byTagStatistics("ip") }));
    expect(p.get("group_by")).toBe("tag:endpoint");
    expect(p.get("statistics")).toBe("count,count_distinct:tag:ip,mean,p25,p50,p75,p90,p99,min,max");
    expect(p.get("from")).toBe("2026-05-13T12:00:00.000Z");
    expect(p.has("tags")).toBe(false);
    expect(p.has("timeslice")).toBe(false);
    expect(byTagStatistics(null)).toEqual(["count", "mean", "p25", "p50", "p75", "p90", "p99", "min", "max"]);
  });
  it("filter by tag values as JSON", () => {
    const tags = { endpoint: ["hello", "wörld"] };
    const path = visitsPerIpPath(1, { measure: "second", range, tags });
    expect(path).toContain("tags=%7B%22endpoint%22%3A%5B%22hello%22%2C%22w%C3%B6rld%22%5D%7D");
    const p = params(path);
    expect(JSON.parse(p.get("tags")!)).toEqual(tags);
    expect(p.get("group_by")).toBe("tag:ip");
    expect(p.get("statistics")).toBe("count");
  });
  it("slice with the dashboard's timeslice", () => {
    const p = params(
      groupedStatsPath(1, { measure: "second", key: "endpoint", range, statistics: ["count"], timeslice: "month", isStatic: false, tz: "UTC", fill: "zero" }),
    );
    expect(p.get("timeslice")).toBe("month");
    expect(p.get("timeslice_is_static")).toBe("true");
    expect(p.get("fill")).toBe("zero");
  });
  it("ask for a box per value", () => {
    const p = params(groupedBoxplotPath(3, { measure: "second", key: "endpoint", range }));
    expect(p.get("measure")).toBe("second");
    expect(p.get("group_by")).toBe("tag:endpoint");
    expect(p.has("tags")).toBe(false);
  });
});

describe("filter", () => {
  const values = ["hello", "world", null];
  it("is none while every value is kept", () => {
    expect(tagsFilter("endpoint", values, new Set())).toBeNull();
    expect(tagsFilter("endpoint", values, new Set(["gone"]))).toBeNull();
  });
  it("lists the values kept", () => {
    expect(tagsFilter("endpoint", values, new Set(["world"]))).toEqual({ endpoint: ["hello"] });
    expect(tagsFilter("endpoint", values, new Set([valueKey(null)]))).toEqual({ endpoint: ["hello", "world"] });
    expect(tagsFilter("endpoint", values, new Set(["hello", "world"]))).toEqual({ endpoint: [] });
  });
});

const buckets: Bucket[] = [
  { start: "2026-05-13T12:00:00Z", group: "hello", count: 3, "count_distinct:tag:ip": 2, mean: 1.5, p25: 1, p50: 1.5, p75: 2, p90: 2, p99: 2, min: 1, max: 2 },
  { start: "2026-05-13T12:00:00Z", group: "world", count: 10, "count_distinct:tag:ip": 1, mean: 0.5, p25: 0.1, p50: 0.5, p75: 0.9, p90: 1, p99: 1, min: 0, max: 1 },
  { start: "2026-05-13T12:00:00Z", group: null, count: 1, "count_distinct:tag:ip": 0, mean: 7, p25: 7, p50: 7, p75: 7, p90: 7, p99: 7, min: 7, max: 7 },
];

describe("rows", () => {
  it("one per value, with the distinct count asked for", () => {
    const rows = tagRows(buckets, "ip");
    expect(rows.map((r) => r.value)).toEqual(["hello", "world", null]);
    expect(rows[0]).toMatchObject({ count: 3, unique: 2, mean: 1.5, p50: 1.5, max: 2 });
    expect(tagRows(buckets, null)[0].unique).toBeNull();
    expect(tagRows([{ start: "x", group: "a", count: 0, mean: null }], null)[0]).toMatchObject({ count: 0, mean: null, p99: null });
  });
  it("sort by any column, missing figures and the tagless series last", () => {
    const rows = tagRows(buckets, "ip");
    const order = (s: Sort) => sortRows(rows, s).map((r) => r.value);
    expect(order(DEFAULT_SORT)).toEqual(["world", "hello", null]);
    expect(order({ key: "count", descending: false })).toEqual([null, "hello", "world"]);
    expect(order({ key: "value", descending: false })).toEqual(["hello", "world", null]);
    expect(order({ key: "value", descending: true })).toEqual(["world", "hello", null]);
    const missing = [...rows, { ...rows[0], value: "zzz", mean: null }];
    expect(sortRows(missing, { key: "mean", descending: true }).map((r) => r.value)).toEqual([null, "hello", "world", "zzz"]);
    expect(sortRows(missing, { key: "mean", descending: false }).map((r) => r.value)).toEqual(["world", "hello", null, "zzz"]);
  });
  it("sort values as people read numbers", () => {
    const rows = ["v10", "v9", "V1"].map((value) => ({ ...tagRows(buckets, null)[0], value }));
    expect(sortRows(rows, { key: "value", descending: false }).map((r) => r.value)).toEqual(["V1", "v9", "v10"]);
  });
  it("flip on the same column, start large on another", () => {
    expect(nextSort(DEFAULT_SORT, "count")).toEqual({ key: "count", descending: false });
    expect(nextSort(DEFAULT_SORT, "p99")).toEqual({ key: "p99", descending: true });
    expect(nextSort(DEFAULT_SORT, "value")).toEqual({ key: "value", descending: false });
  });
});

describe("slices and bars", () => {
  it("line up each value's counts per slice in time order", () => {
    const lines = sliceCounts([
      { start: "2026-05-14T00:00:00Z", group: "hello", count: 4 },
      { start: "2026-05-13T00:00:00Z", group: "hello", count: 2 },
      { start: "2026-05-13T00:00:00Z", group: "world", count: 0 },
      { start: "2026-05-13T00:00:00Z", group: null, count: 1 },
    ]);
    expect(lines.get("hello")).toEqual({ tags: {}, timestamps_ms: [Date.parse("2026-05-13T00:00:00Z"), Date.parse("2026-05-14T00:00:00Z")], values: [2, 4] });
    expect(lines.get("world")!.values).toEqual([0]);
    expect(lines.get(valueKey(null))!.values).toEqual([1]);
  });
  it("keep the largest counts, relative to the first", () => {
    const ips: Bucket[] = Array.from({ length: 25 }, (_, i) => ({ start: "s", group: `10.0.0.${i}`, count: i }));
    const { bars, more } = topBars(ips, 20);
    expect(bars.length).toBe(20);
    expect(bars[0]).toEqual({ label: "10.0.0.24", count: 24, percent: 100 });
    expect(bars[1].percent).toBe(95.8);
    // 10.0.0.0 counts nothing: neither a bar nor left out
    expect(more).toBe(4);
    expect(topBars([{ start: "s", group: "b", count: 2 }, { start: "s", group: "a", count: 2 }, { start: "s", group: null, count: 1 }]).bars.map((b) => b.label)).toEqual([
      "a",
      "b",
      "(none)",
    ]);
  });
});
