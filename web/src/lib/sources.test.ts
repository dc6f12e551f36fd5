import { describe, expect, it } from "vitest";
import {
  EMPTY_SOURCE_FORM, checkNewSource, editOf, historyPercent, intervalSecs, shorten, sourcePatch, sourcesPath, sourcesPollMs, urlHost,
  urlProblem,
} from "./sources";
import type { Source } from "./types";

const source: Source = {
  source_id: 3,
  experiment_id: 1,
  experiment: "web-app",
  kind: "fmd",
  url: "http://127.0.0.1:5055/dashboard",
  interval_secs: 60,
  enabled: true,
  include: null,
  has_secret: true,
  created_at: "2026-05-20T10:00:00Z",
  state: "ok",
  last_success_at: "2026-05-20T12:00:00Z",
  last_error: null,
  last_error_at: null,
  failures: 0,
  points_fetched: 1234,
  backlog: 0,
  loaded_until: "2026-05-20T12:00:00Z",
  history_from: "2026-05-01T00:00:00Z",
  next_fetch_at: "2026-05-20T12:01:00Z",
};

describe("sources path", () => {
  it("lists all or one experiment's", () => {
    expect(sourcesPath()).toBe("/sources");
    expect(sourcesPath(7)).toBe("/sources?experiment_id=7");
  });
});

describe("new source form", () => {
  const form = { ...EMPTY_SOURCE_FORM, experimentId: "1", url: " http://127.0.0.1:5055/dashboard ", secret: " s3cret\n" };
  it("reads whole seconds from 1 to 86400", () => {
    expect(intervalSecs("60")).toBe(60);
    expect(intervalSecs(" 1 ")).toBe(1);
    expect(intervalSecs("86400")).toBe(86400);
    expect(intervalSecs("86401")).toBeNull();
    expect(intervalSecs("0")).toBeNull();
    expect(intervalSecs("1.5")).toBeNull();
    expect(intervalSecs("")).toBeNull();
  });
  it("takes absolute http(s) URLs only", () => {
    expect(urlProblem("https://monit.example.org/metrics")).toBeNull();
    expect(urlProblem("")).toMatch(/Enter/);
    expect(urlProblem("127.0.0.1:5055")).not.toBeNull();
    expect(urlProblem("ftp://example.org/")).toMatch(/http/);
    expect(urlProblem("HTTP://example.org/")).toMatch(/http/);
    expect(urlProblem("http://user:pw@example.org/")).toMatch(/credentials/);
    expect(urlProblem("http://example.org/a b")).toMatch(/spaces/);
    expect(urlProblem("http:///path")).not.toBeNull();
    expect(urlProblem(`http://example.org/${"x".repeat(2048)}`)).toMatch(/2048/);
  });
  it("makes the request of a dashboard, whose token is required", () => {
    expect(checkNewSource(form)).toEqual({
      ok: true,
      body: { experiment_id: 1, kind: "fmd", url: "http://127.0.0.1:5055/dashboard", secret: "s3cret", interval_secs: 60 },
    });
    expect(checkNewSource({ ...form, secret: "  " })).toEqual({ ok: false, error: "Enter the dashboard's security token." });
    expect(checkNewSource({ ...form, experimentId: "" })).toEqual({ ok: false, error: "Choose an experiment." });
    expect(checkNewSource({ ...form, interval: "0" })).toMatchObject({ ok: false });
    // include is for Prometheus only
    const ignored = checkNewSource({ ...form, include: "^http_" });
    expect(ignored.ok && "include" in ignored.body).toBe(false);
  });
  it("makes the request of a Prometheus endpoint, with an optional token and filter", () => {
    const prometheus = { ...form, kind: "prometheus" as const, url: "http://127.0.0.1:9100/metrics", secret: "", include: " ^node_ " };
    expect(checkNewSource(prometheus)).toEqual({
      ok: true,
      body: { experiment_id: 1, kind: "prometheus", url: "http://127.0.0.1:9100/metrics", interval_secs: 60, include: "^node_" },
    });
    const withToken = checkNewSource({ ...prometheus, secret: "abc", include: "" });
    expect(withToken).toMatchObject({ ok: true, body: { secret: "abc" } });
    expect(withToken.ok && "include" in withToken.body).toBe(false);
  });
});

describe("source edit", () => {
  it("sends only what changed", () => {
    expect(sourcePatch(source, editOf(source))).toEqual({ ok: true, patch: null });
    expect(sourcePatch(source, { ...editOf(source), interval: "300", enabled: false })).toEqual({
      ok: true,
      patch: { interval_secs: 300, enabled: false },
    });
  });
  it("keeps the secret when blank", () => {
    expect(sourcePatch(source, { ...editOf(source), secret: "  " })).toEqual({ ok: true, patch: null });
    expect(sourcePatch(source, { ...editOf(source), secret: "new" })).toEqual({ ok: true, patch: { secret: "new" } });
  });
  it("checks a changed URL and the interval", () => {
    expect(sourcePatch(source, { ...editOf(source), url: "nope" })).toMatchObject({ ok: false });
    expect(sourcePatch(source, { ...editOf(source), url: "http://lab:5055/dashboard" })).toEqual({
      ok: true,
      patch: { url: "http://lab:5055/dashboard" },
    });
    expect(sourcePatch(source, { ...editOf(source), interval: "" })).toMatchObject({ ok: false });
  });
  it("sets and clears a Prometheus filter", () => {
    const prometheus: Source = { ...source, kind: "prometheus", include: "^node_" };
    expect(sourcePatch(prometheus, { ...editOf(prometheus), include: "" })).toEqual({ ok: true, patch: { include: "" } });
    expect(sourcePatch(prometheus, { ...editOf(prometheus), include: "^go_" })).toEqual({ ok: true, patch: { include: "^go_" } });
    expect(sourcePatch(source, { ...editOf(source), include: "^go_" })).toEqual({ ok: true, patch: null });
  });
});

describe("history", () => {
  const now = Date.parse("2026-05-21T00:00:00Z");
  const loading = { backlog: 3600, history_from: "2026-05-01T00:00:00Z", loaded_until: "2026-05-11T00:00:00Z" };
  it("is the part loaded from the first record to now", () => {
    expect(historyPercent(loading, now)).toBe(50);
    expect(historyPercent({ ...loading, loaded_until: null }, now)).toBe(0);
    expect(historyPercent({ ...loading, loaded_until: "2026-05-20T23:59:59Z" }, now)).toBe(99);
  });
  it("is whole once caught up, and unknown without a first record", () => {
    expect(historyPercent({ ...loading, backlog: 0 }, now)).toBe(100);
    expect(historyPercent({ ...loading, history_from: null }, now)).toBeNull();
  });
  it("trusts the backlog when the browser's clock is behind", () => {
    const early = Date.parse("2026-05-11T00:00:00Z");
    expect(historyPercent({ ...loading, backlog: 10 * 86_400 }, early)).toBe(50);
  });
  it("refreshes often while some history loads", () => {
    expect(sourcesPollMs([{ state: "ok", backlog: 0 }])).toBe(60_000);
    expect(sourcesPollMs([{ state: "ok", backlog: 0 }, { state: "loading", backlog: 5 }])).toBe(5_000);
    expect(sourcesPollMs(undefined)).toBe(60_000);
  });
});

describe("display", () => {
  it("names the host and shortens long errors", () => {
    expect(urlHost("http://127.0.0.1:5055/dashboard")).toBe("127.0.0.1:5055");
    expect(urlHost("not a url")).toBe("not a url");
    expect(shorten("short", 10)).toBe("short");
    expect(shorten("the dashboard refused the token", 14)).toBe("the dashboard…");
    expect([...shorten("é".repeat(20), 10)].length).toBe(10);
  });
});
