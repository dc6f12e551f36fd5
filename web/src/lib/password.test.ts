import { describe, expect, it } from "vitest";
import { containsPersonal, looksVaried, passwordHints, passwordReady, personalParts } from "./password";

const me = ["Peter Higg", "phigg", "phigg@home.cern"];

describe("password hints", () => {
  it("split the user's data like the server", () => {
    expect(personalParts(me)).toEqual(expect.arrayContaining(["peter higg", "peter", "higg", "phigg", "phigg@home.cern", "home.cern"]));
    expect(containsPersonal("my-PHIGG-password", me)).toBe(true);
    expect(containsPersonal("Higgs boson rocks 2026", me)).toBe(true);
    expect(containsPersonal("tangerine orbit velvet", me)).toBe(false);
    // parts shorter than 4 characters do not count
    expect(containsPersonal("abc", ["abc"])).toBe(false);
  });
  it("check length, personal data, variety and confirmation", () => {
    const byId = (pw: string, confirm: string) =>
      Object.fromEntries(passwordHints(pw, confirm, me).map((h) => [h.id, h.ok]));
    expect(byId("short", "short")).toEqual({ length: false, personal: true, variety: false, match: true });
    expect(byId("tangerine orbit velvet lamp", "tangerine orbit velvet lamp")).toEqual({
      length: true, personal: true, variety: true, match: true,
    });
    expect(byId("phigg-is-the-best-1", "x").personal).toBe(false);
    expect(byId("aaaaaaaaaaaa", "aaaaaaaaaaaa").variety).toBe(false);
    expect(passwordHints("x".repeat(300), "", me)[0]).toMatchObject({ ok: false, text: "At most 256 characters" });
  });
  it("let the server judge strength but require the rest", () => {
    expect(passwordReady("old", "tangerine orbit velvet lamp", "tangerine orbit velvet lamp", me)).toBe(true);
    expect(passwordReady("", "tangerine orbit velvet lamp", "tangerine orbit velvet lamp", me)).toBe(false);
    expect(passwordReady("old", "tangerine orbit velvet lamp", "tangerine orbit", me)).toBe(false);
    expect(looksVaried("Xk7#pq2!Lm9z")).toBe(true);
  });
});
