import { describe, expect, it } from "vitest";
import { checkNewToken, expiryDays, grafanaSettings, tokenState } from "./tokens";

describe("token state", () => {
  const now = 1_780_000_000_000;
  it("is live until it expires", () => {
    expect(tokenState({ expires_at: now / 1000 + 60, revoked: false }, now)).toBe("live");
    expect(tokenState({ expires_at: now / 1000, revoked: false }, now)).toBe("expired");
    expect(tokenState({ expires_at: now / 1000 - 86_400, revoked: false }, now)).toBe("expired");
  });
  it("shows revoked first", () => {
    expect(tokenState({ expires_at: now / 1000 + 60, revoked: true }, now)).toBe("revoked");
    expect(tokenState({ expires_at: now / 1000 - 60, revoked: true }, now)).toBe("revoked");
  });
});

describe("new token form", () => {
  it("reads whole days from 1 to 366", () => {
    expect(expiryDays("90")).toBe(90);
    expect(expiryDays(" 1 ")).toBe(1);
    expect(expiryDays("366")).toBe(366);
    expect(expiryDays("0")).toBeNull();
    expect(expiryDays("367")).toBeNull();
    expect(expiryDays("1.5")).toBeNull();
    expect(expiryDays("-3")).toBeNull();
    expect(expiryDays("")).toBeNull();
  });
  it("checks the name like the server", () => {
    expect(checkNewToken("  grafana-lab ", "90")).toEqual({ ok: true, body: { name: "grafana-lab", expires_in_days: 90 } });
    expect(checkNewToken("   ", "90")).toMatchObject({ ok: false });
    expect(checkNewToken("x".repeat(100), "30")).toMatchObject({ ok: true });
    expect(checkNewToken("x".repeat(101), "30")).toEqual({ ok: false, error: "The name has at most 100 characters." });
    expect(checkNewToken("é".repeat(100), "30")).toMatchObject({ ok: true });
    expect(checkNewToken("lab\u0007bell", "30")).toEqual({ ok: false, error: "The name holds printable characters only." });
    expect(checkNewToken("grafana-lab", "400")).toEqual({ ok: false, error: "The token expires in 1 to 366 days." });
  });
});

describe("grafana settings", () => {
  it("name this address and the user", () => {
    const rows = Object.fromEntries(grafanaSettings("https://monit.example.org", "phigg").map((r) => [r.setting, r.value]));
    expect(rows.URL).toBe("https://monit.example.org");
    expect(rows.User).toBe("phigg");
    expect(rows["Query language"]).toBe("InfluxQL");
  });
});
