import { describe, expect, it } from "vitest";
import { ADMIN_TABS, homeOf, matchRoute, mayOpen, navFor } from "./router";

describe("routes", () => {
  it("match paths", () => {
    expect(matchRoute("/")).toEqual({ page: "overview" });
    expect(matchRoute("/experiments/12")).toEqual({ page: "dashboard", experimentId: 12 });
    expect(matchRoute("/experiments/12/?x=1")).toEqual({ page: "dashboard", experimentId: 12 });
    expect(matchRoute("/experiments/12?from=2026-05-20T11%3A00%3A00Z&to=2026-05-20T12%3A00%3A00Z")).toEqual({ page: "dashboard", experimentId: 12 });
    expect(matchRoute("/admin")).toEqual({ page: "admin", tab: "users" });
    expect(matchRoute("/admin/ingest-tokens")).toEqual({ page: "admin", tab: "ingest-tokens" });
    expect(matchRoute("/admin/sources")).toEqual({ page: "admin", tab: "sources" });
    expect(matchRoute("/admin/nope")).toEqual({ page: "not-found", path: "/admin/nope" });
    expect(matchRoute("/audit")).toEqual({ page: "audit" });
    expect(matchRoute("/settings#x")).toEqual({ page: "settings" });
    expect(matchRoute("/experiments/abc")).toEqual({ page: "not-found", path: "/experiments/abc" });
  });
});

describe("admin tabs", () => {
  it("each have a path of their own", () => {
    expect(ADMIN_TABS.map((t) => t.id)).toEqual(["users", "experiments", "associations", "measure-types", "ingest-tokens", "sources"]);
    for (const t of ADMIN_TABS) expect(matchRoute(`/admin/${t.id}`)).toEqual({ page: "admin", tab: t.id });
  });
});

describe("roles", () => {
  it("open only the pages their permissions allow", () => {
    expect(mayOpen("ADMIN", "admin")).toBe(true);
    expect(mayOpen("ADMIN", "dashboard")).toBe(false); // admins never read measures
    expect(mayOpen("ADMIN", "audit")).toBe(false);
    expect(mayOpen("SCIENTIST", "dashboard")).toBe(true);
    expect(mayOpen("SCIENTIST", "admin")).toBe(false);
    expect(mayOpen("AUDITOR", "audit")).toBe(true);
    expect(mayOpen("AUDITOR", "overview")).toBe(false);
    for (const role of ["ADMIN", "SCIENTIST", "AUDITOR"] as const) expect(mayOpen(role, "settings")).toBe(true);
  });
  it("start at their home and see their links", () => {
    expect(homeOf("AUDITOR")).toBe("/audit");
    expect(homeOf("SCIENTIST")).toBe("/");
    expect(navFor("ADMIN").map((l) => l.label)).toEqual(["Overview", "Admin", "Settings"]);
    expect(navFor("SCIENTIST").map((l) => l.label)).toEqual(["Overview", "Settings"]);
    expect(navFor("AUDITOR").map((l) => l.label)).toEqual(["Audit", "Settings"]);
  });
});
