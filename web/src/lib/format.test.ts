import { describe, expect, it } from "vitest";
import { formatAgo, formatCount, formatDuration, formatNumber, formatTime, nsToMs } from "./format";

describe("formatNumber", () => {
  it("keeps at most 4 decimals", () => {
    expect(formatNumber(110.123456)).toBe("110.1235");
    expect(formatNumber(21)).toBe("21");
    expect(formatNumber(-3.5)).toBe("-3.5");
    expect(formatNumber(1234567.891)).toBe("1,234,567.891");
  });
  it("keeps 4 significant digits below 1", () => {
    expect(formatNumber(0.000123456)).toBe("0.0001235");
    expect(formatNumber(0.5)).toBe("0.5");
  });
  it("uses exponents for tiny and huge numbers", () => {
    expect(formatNumber(1.5e-7)).toBe("1.5e-7");
    expect(formatNumber(6.02214076e23)).toBe("6.022e+23");
  });
  it("shows missing values as a dash", () => {
    expect(formatNumber(null)).toBe("—");
    expect(formatNumber(undefined)).toBe("—");
    expect(formatNumber(Number.NaN)).toBe("—");
    expect(formatNumber(0)).toBe("0");
  });
  it("groups counts", () => {
    expect(formatCount(10080)).toBe("10,080");
    expect(formatCount(null)).toBe("—");
  });
});

describe("formatTime", () => {
  const t = Date.parse("2026-05-20T12:03:07.250Z");
  it("shows the time in the zone, with its name", () => {
    expect(formatTime(t, { timeZone: "UTC" })).toBe("2026-05-20 12:03:07 UTC");
    expect(formatTime(t, { timeZone: "Europe/Paris" })).toBe("2026-05-20 14:03:07 CEST");
    expect(formatTime("2026-01-20T12:03:07Z", { timeZone: "Europe/Paris", seconds: false })).toBe("2026-01-20 13:03 CET");
    expect(formatTime(t, { timeZone: "UTC", zone: false })).toBe("2026-05-20 12:03:07");
  });
  it("passes odd input through", () => {
    expect(formatTime(null)).toBe("—");
    expect(formatTime("not a date")).toBe("not a date");
  });
});

describe("durations", () => {
  it("read naturally", () => {
    expect(formatDuration(42_000)).toBe("42 s");
    expect(formatDuration(12 * 60_000)).toBe("12 min");
    expect(formatDuration(3 * 3_600_000)).toBe("3 h");
    expect(formatDuration(3 * 86_400_000)).toBe("3 d");
    expect(formatAgo(1_000_000 - 300_000, 1_000_000)).toBe("5 min ago");
    expect(formatAgo(1_000_000, 1_000_000)).toBe("just now");
  });
  it("converts nanoseconds", () => {
    expect(nsToMs(1_653_040_000_123_456_789)).toBe(1_653_040_000_123);
  });
});
