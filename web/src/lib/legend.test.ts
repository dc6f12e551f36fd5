import { describe, expect, it } from "vitest";
import { LEGEND_FOLD_ABOVE, differingTagKeys, foldsLegend, legendLabels } from "./legend";

const web = (endpoint: string, ip: string, version: string) => ({
  measure: "execution_time",
  tags: { endpoint, ip, version, source: "webapp" },
});

describe("differingTagKeys", () => {
  it("keeps the keys whose value changes, sorted", () => {
    expect(differingTagKeys([{ source: "demo", host: "b" }, { source: "demo", host: "a" }])).toEqual(["host"]);
    expect(differingTagKeys([{ source: "demo" }, { source: "demo" }])).toEqual([]);
  });
  it("counts a key missing from some series as differing", () => {
    expect(differingTagKeys([{ room: "2" }, { room: "2", host: "a" }, null])).toEqual(["host", "room"]);
  });
  it("handles no series and untagged series", () => {
    expect(differingTagKeys([])).toEqual([]);
    expect(differingTagKeys([{}, undefined])).toEqual([]);
  });
});

describe("legendLabels", () => {
  it("shows only the tags that tell the series of one measure type apart", () => {
    expect(legendLabels([web("search", "10.0.0.4", "1.0"), web("search", "10.0.0.5", "1.0"), web("login", "10.0.0.4", "1.0")])).toEqual([
      "endpoint=search, ip=10.0.0.4",
      "endpoint=search, ip=10.0.0.5",
      "endpoint=login, ip=10.0.0.4",
    ]);
  });
  it("keeps the measure name when no tag differs", () => {
    expect(legendLabels([{ measure: "hertz", tags: { source: "demo" } }])).toEqual(["hertz"]);
    expect(legendLabels([{ measure: "volt" }])).toEqual(["volt"]);
    expect(legendLabels([{ measure: "volt", tags: { a: "1" } }, { measure: "volt", tags: { a: "1" } }])).toEqual(["volt", "volt"]);
  });
  it("names the measure for a series without the differing tags", () => {
    expect(legendLabels([{ measure: "volt", tags: {} }, { measure: "volt", tags: { host: "lab2" } }])).toEqual(["volt", "host=lab2"]);
  });
  it("keeps the measure name before the tags when measure types mix", () => {
    expect(
      legendLabels([
        { measure: "volt", tags: { host: "a", source: "demo" } },
        { measure: "hertz", tags: { host: "b", source: "demo" } },
        { measure: "hertz", tags: { source: "demo" } },
      ]),
    ).toEqual(["volt {host=a}", "hertz {host=b}", "hertz"]);
  });
  it("labels no series with nothing", () => {
    expect(legendLabels([])).toEqual([]);
  });
});

describe("foldsLegend", () => {
  it("folds only above the limit", () => {
    expect(LEGEND_FOLD_ABOVE).toBe(12);
    expect(foldsLegend(1)).toBe(false);
    expect(foldsLegend(12)).toBe(false);
    expect(foldsLegend(13)).toBe(true);
    expect(foldsLegend(96)).toBe(true);
  });
});
