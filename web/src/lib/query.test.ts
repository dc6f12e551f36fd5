import { describe, expect, it } from "vitest";
import { auditExportPath, auditPath, boxplotPath, dynamicAllowed, exportPath, seriesPath, statsPath } from "./query";

const range = { from: Date.parse("2026-05-13T12:00:00Z"), to: Date.parse("2026-05-20T12:00:00Z") };
const params = (path: string) => new URL(path, "http://x").searchParams;

describe("stats", () => {
  it("asks for every statistic over the range", () => {
    const path = statsPath(1, { measure: "degree Celsius", range });
    expect(path.startsWith("/experiments/1/stats?")).toBe(true);
    const p = params(path);
    expect(p.get("measure")).toBe("degree Celsius");
    expect(p.get("statistics")).toBe("count,mean,min,max,p50,p90,p99");
    expect(p.get("from")).toBe("2026-05-13T12:00:00.000Z");
    expect(p.get("to")).toBe("2026-05-20T12:00:00.000Z");
    expect(p.has("timeslice")).toBe(false);
    // timeslice_is_static without a timeslice is refused by the server
    expect(p.has("timeslice_is_static")).toBe(false);
    expect(p.has("tz")).toBe(false);
  });
  it("adds the timeslice, its kind and the zone", () => {
    const p = params(statsPath(7, { measure: "hertz", range, timeslice: "day", isStatic: false, tz: "Europe/Paris" }));
    expect(p.get("timeslice")).toBe("day");
    expect(p.get("timeslice_is_static")).toBe("false");
    expect(p.get("tz")).toBe("Europe/Paris");
  });
  it("keeps months on the calendar", () => {
    expect(dynamicAllowed("month")).toBe(false);
    expect(dynamicAllowed("week")).toBe(true);
    expect(dynamicAllowed("")).toBe(false);
    const p = params(statsPath(7, { measure: "hertz", range, timeslice: "month", isStatic: false, tz: "UTC" }));
    expect(p.get("timeslice_is_static")).toBe("true");
  });
});

describe("series", () => {
  it("asks for about one point per pixel, within the server's bounds", () => {
    const p = params(seriesPath(1, "hertz", range, 812.4));
    expect(p.get("points")).toBe("812");
    expect(p.get("measure")).toBe("hertz");
    expect(params(seriesPath(1, "hertz", range, 1)).get("points")).toBe("4");
    expect(params(seriesPath(1, "hertz", range, 1e9)).get("points")).toBe("100000");
  });
});

describe("exports", () => {
  it("cover the range in the format asked", () => {
    expect(exportPath(1, "csv", range)).toBe(
      "/experiments/1/measures?format=csv&from=2026-05-13T12%3A00%3A00.000Z&to=2026-05-20T12%3A00%3A00.000Z",
    );
    expect(params(exportPath(1, "ndjson", range, "hertz")).get("measure")).toBe("hertz");
    expect(boxplotPath(2, range)).toMatch(/^\/experiments\/2\/boxplot\?from=.+&to=.+$/);
  });
});

describe("audit", () => {
  it("asks for newest first only when chosen (the server's default is oldest first)", () => {
    expect(params(auditPath({ order: "desc" }, 10)).get("order")).toBe("desc");
    expect(params(auditPath({ order: "asc" }, 10)).has("order")).toBe(false);
    expect(params(auditExportPath({ order: "desc", outcome: "failure" })).get("order")).toBe("desc");
  });

  it("sends only the filters that are set", () => {
    const p = params(auditPath({ action: " auth.login ", outcome: "", actor: "", from: null }, 100));
    expect([...p.keys()]).toEqual(["action", "limit"]);
    expect(p.get("action")).toBe("auth.login");
    const q = params(auditPath({ outcome: "failure", actor: "S001", from: range.from, to: range.to }, 50, "123"));
    expect(q.get("outcome")).toBe("failure");
    expect(q.get("actor")).toBe("S001");
    expect(q.get("from")).toBe("2026-05-13T12:00:00.000Z");
    expect(q.get("cursor")).toBe("123");
    const e = params(auditExportPath({ outcome: "denied" }));
    expect(e.get("format")).toBe("ndjson");
    expect(e.has("limit")).toBe(false);
  });
});
