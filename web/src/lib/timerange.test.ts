import { describe, expect, it } from "vitest";
import {
  DAY, HOUR, WEEK, customRange, defaultRange, fromDatetimeLocal, latestWeek, pan, parseRfc3339, presetRange, rangeFromSearch, toDatetimeLocal,
  toRfc3339, zoom,
} from "./timerange";

const now = Date.parse("2026-05-20T12:00:00Z");

describe("presets", () => {
  it("end now and span their length", () => {
    expect(presetRange("hour", now)).toEqual({ from: now - HOUR, to: now, preset: "hour" });
    expect(presetRange("day", now)).toEqual({ from: now - DAY, to: now, preset: "day" });
    expect(presetRange("week", now)).toEqual({ from: now - WEEK, to: now, preset: "week" });
  });
});

describe("default range", () => {
  it("is the last week when there is recent data", () => {
    expect(defaultRange(now - HOUR, now)).toEqual(presetRange("week", now));
    expect(defaultRange(null, now)).toEqual(presetRange("week", now));
  });
  it("is the week ending at the latest point when the data is older", () => {
    const latest = now - 30 * DAY;
    const range = defaultRange(latest, now);
    expect(range.to).toBeGreaterThan(latest);
    expect(range.to - range.from).toBe(WEEK);
    expect(range.preset).toBe("custom");
    expect(latestWeek(latest)).toEqual(range);
  });
});

describe("zoom and pan", () => {
  const r = { from: 1000_000, to: 2000_000, preset: "day" as const };
  it("pans by a fraction of the span", () => {
    expect(pan(r, 0.5)).toEqual({ from: 1500_000, to: 2500_000, preset: "custom" });
    expect(pan(r, -0.25)).toEqual({ from: 750_000, to: 1750_000, preset: "custom" });
  });
  it("zooms around the middle", () => {
    expect(zoom(r, 2)).toEqual({ from: 500_000, to: 2500_000, preset: "custom" });
    expect(zoom(r, 0.5)).toEqual({ from: 1250_000, to: 1750_000, preset: "custom" });
  });
  it("orders custom ends and refuses empty ones", () => {
    expect(customRange(5, 2)).toEqual({ from: 2, to: 5, preset: "custom" });
    expect(customRange(5, 5)).toBeNull();
    expect(customRange(Number.NaN, 5)).toBeNull();
  });
});

describe("datetime-local", () => {
  it("round-trips local minutes", () => {
    const local = new Date(2026, 4, 20, 9, 5).getTime();
    expect(toDatetimeLocal(local)).toBe("2026-05-20T09:05");
    expect(fromDatetimeLocal("2026-05-20T09:05")).toBe(local);
    expect(fromDatetimeLocal("2026-05-20T09:05:30")).toBe(local + 30_000);
  });
  it("refuses garbage", () => {
    expect(fromDatetimeLocal("")).toBeNull();
    expect(fromDatetimeLocal("yesterday")).toBeNull();
  });
  it("formats RFC 3339 in UTC", () => {
    expect(toRfc3339(now)).toBe("2026-05-20T12:00:00.000Z");
  });
});

describe("linked ranges", () => {
  it("read RFC 3339 instants, in UTC or with an offset", () => {
    expect(parseRfc3339("2026-05-20T12:00:00Z")).toBe(now);
    expect(parseRfc3339("2026-05-20t12:00:00z")).toBe(now);
    expect(parseRfc3339("2026-05-20T14:00:00+02:00")).toBe(now);
    expect(parseRfc3339("2026-05-20T12:00Z")).toBe(now);
    expect(parseRfc3339("2026-05-20T12:00:00.5Z")).toBe(now + 500);
    expect(parseRfc3339("2026-05-20T12:00:00.123456789Z")).toBe(now + 123);
    // An unencoded + reads back from a query string as a space.
    expect(parseRfc3339("2026-05-20T14:00:00 02:00")).toBe(now);
  });
  it("refuse what is not an instant", () => {
    for (const text of ["", "2026-05-20", "2026-05-20T12:00:00", "1653040000", "May 20 2026", "2026-13-40T12:00:00Z", "2026-05-20T12:00:00Zjunk"]) {
      expect(parseRfc3339(text), text).toBeNull();
    }
  });
  it("open the dashboard on the range of a notification's link", () => {
    const search = "?from=2026-05-20T11%3A00%3A00Z&to=2026-05-20T12%3A00%3A00Z";
    expect(rangeFromSearch(search)).toEqual({ from: now - HOUR, to: now, preset: "custom" });
    expect(rangeFromSearch("from=2026-05-20T11:00:00Z&to=2026-05-20T12:00:00Z")).toEqual({ from: now - HOUR, to: now, preset: "custom" });
    // The ends put in order.
    expect(rangeFromSearch("?from=2026-05-20T12:00:00Z&to=2026-05-20T11:00:00Z")).toEqual({ from: now - HOUR, to: now, preset: "custom" });
    expect(rangeFromSearch("?from=2026-05-20T13:00:00+01:00&to=2026-05-20T12:00:00Z")).toBeNull();
  });
  it("leave links without one as they were", () => {
    expect(rangeFromSearch("")).toBeNull();
    expect(rangeFromSearch("?from=2026-05-20T11:00:00Z")).toBeNull();
    expect(rangeFromSearch("?from=yesterday&to=2026-05-20T12:00:00Z")).toBeNull();
    expect(rangeFromSearch("?x=1")).toBeNull();
  });
});
