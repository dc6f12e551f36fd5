import { describe, expect, it } from "vitest";
import {
  alignSeries, appendPoint, boxDomain, boxGeometry, sharedDomain, latestByType, newestTimestamp, sparklinePoints, tagsKey, toNdjson,
} from "./shape";
import type { LatestPoint } from "./types";

describe("alignSeries", () => {
  it("passes one series through in seconds", () => {
    const a = alignSeries("hertz", [{ tags: {}, timestamps_ms: [1000, 2000, 3000], values: [1, 2, 3] }]);
    expect(a.x).toEqual([1, 2, 3]);
    expect(a.ys).toEqual([[1, 2, 3]]);
    expect(a.labels).toEqual(["hertz"]);
    expect(a.points).toBe(3);
  });
  it("joins several series on their timestamps with gaps", () => {
    const a = alignSeries("volt", [
      { tags: { host: "b" }, timestamps_ms: [1000, 3000], values: [10, 30] },
      { tags: { host: "a" }, timestamps_ms: [2000, 3000], values: [2, 3] },
    ]);
    expect(a.x).toEqual([1, 2, 3]);
    expect(a.ys).toEqual([
      [10, null, 30],
      [null, 2, 3],
    ]);
    expect(a.labels).toEqual(["host=b", "host=a"]);
    expect(a.points).toBe(4);
  });
  it("handles no series", () => {
    expect(alignSeries("x", [])).toMatchObject({ x: [], ys: [], points: 0 });
  });
});

describe("appendPoint", () => {
  const base = alignSeries("hertz", [{ tags: {}, timestamps_ms: [1000, 2000], values: [1, 2] }]);
  it("appends a newer point to its series", () => {
    const b = appendPoint(base, "hertz", undefined, 3000, 3);
    expect(b.x).toEqual([1, 2, 3]);
    expect(b.ys).toEqual([[1, 2, 3]]);
    expect(b.points).toBe(3);
    expect(base.x).toEqual([1, 2]);
  });
  it("inserts a late point in order, and replaces one at the same time", () => {
    const b = appendPoint(base, "hertz", {}, 1500, 1.5);
    expect(b.x).toEqual([1, 1.5, 2]);
    expect(b.ys[0]).toEqual([1, 1.5, 2]);
    expect(appendPoint(base, "hertz", {}, 2000, 9).ys[0]).toEqual([1, 9]);
  });
  it("opens a new series for a new tag set", () => {
    const b = appendPoint(base, "hertz", { host: "lab2" }, 3000, 7);
    expect(b.keys).toEqual(["", "host=lab2"]);
    expect(b.tags).toEqual([{}, { host: "lab2" }]);
    expect(b.labels).toEqual(["hertz", "host=lab2"]);
    expect(b.ys).toEqual([
      [1, 2, null],
      [null, null, 7],
    ]);
  });
});

describe("tags", () => {
  it("have a sorted key", () => {
    expect(tagsKey({ room: "2", host: "lab1" })).toBe("host=lab1,room=2");
    expect(tagsKey(undefined)).toBe("");
  });
});

describe("sparkline", () => {
  it("spans the box, high values at the top", () => {
    expect(sparklinePoints([0, 1, 2], [0, 10, 5], 100, 20, 0)).toBe("0,20 50,0 100,10");
  });
  it("draws flat and single values in the middle", () => {
    expect(sparklinePoints([0, 1], [3, 3], 100, 20, 0)).toBe("0,10 100,10");
    expect(sparklinePoints([5], [3], 100, 20)).toBe("50,10");
    expect(sparklinePoints([], [], 100, 20)).toBe("");
  });
});

describe("boxplot", () => {
  const box = { measure: "hertz", count: 10, min: 0, p25: 25, p50: 50, p75: 75, max: 100 };
  it("places the five numbers on a padded axis", () => {
    expect(boxDomain(box)).toEqual([-5, 105]);
    const g = boxGeometry(box)!;
    expect(g.min).toBeCloseTo(4.55, 2);
    expect(g.p50).toBe(50);
    expect(g.max).toBeCloseTo(95.45, 2);
    expect(g.p25).toBeLessThan(g.p50);
    expect(g.p75).toBeGreaterThan(g.p50);
  });
  it("gives nothing for a box without figures", () => {
    expect(boxGeometry({ ...box, min: null, p25: null, p50: null, p75: null, max: null })).toBeNull();
  });
  it("pads a box of one value", () => {
    expect(boxDomain({ ...box, min: 20, max: 20 })).toEqual([19, 21]);
  });
  it("puts the boxes of one measure type on a common axis", () => {
    const other = { ...box, group: "world", min: 50, max: 300 };
    expect(sharedDomain([{ ...box, group: "hello" }, other])).toEqual([-15, 315]);
    expect(sharedDomain([{ ...box, min: null, max: null }])).toBeNull();
    expect(sharedDomain([])).toBeNull();
  });
});

describe("latest", () => {
  const latest: LatestPoint[] = [
    { measure_type: "hertz", tags: { host: "a" }, timestamp: "2026-05-20T10:00:00Z", value: 1 },
    { measure_type: "hertz", tags: { host: "b" }, timestamp: "2026-05-20T11:00:00Z", value: 2 },
    { measure_type: "degree Celsius", tags: {}, timestamp: "2026-05-20T09:00:00Z", value: 21.5 },
  ];
  it("keeps the newest value of each type", () => {
    expect(latestByType(latest)).toEqual([
      { measure: "degree Celsius", value: 21.5, timestampMs: Date.parse("2026-05-20T09:00:00Z"), series: 1 },
      { measure: "hertz", value: 2, timestampMs: Date.parse("2026-05-20T11:00:00Z"), series: 2 },
    ]);
    expect(newestTimestamp(latest)).toBe(Date.parse("2026-05-20T11:00:00Z"));
    expect(newestTimestamp([])).toBeNull();
  });
  it("writes NDJSON", () => {
    expect(toNdjson([{ a: 1 }, { b: "x" }])).toBe('{"a":1}\n{"b":"x"}\n');
    expect(toNdjson([])).toBe("");
  });
});
