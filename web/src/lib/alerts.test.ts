import { describe, expect, it } from "vitest";
import {
  alertRulesPath, chartRules, conditionSummary, emptyRuleForm, firingIntervals, formOf, formatPairs, groupKey, historyPath,
  historySignature, mergeIntervals, parseDuration, parseLabels, parsePairs, perTagNote, receiverParts, ruleRequest, rulePatch,
  type RuleForm,
} from "./alerts";
import type { AlertEvent, RuleHistory, RuleView } from "./types";

const rule: RuleView = {
  rule_id: 4,
  experiment_id: 1,
  name: "vibration high",
  measure: "hertz",
  tags: {},
  statistic: "mean",
  window: "5m",
  op: ">",
  threshold: 120,
  absent_for: null,
  for: "1m",
  interval: "30s",
  group_by: null,
  labels: { severity: "page" },
  description: "",
  state: "inactive",
  last_value: 110.5,
  last_evaluated_at: "2026-05-20T12:00:00Z",
  last_error: null,
  alerts: [],
  created_by: "S001",
  created_at: "2026-05-20T10:00:00Z",
  updated_at: "2026-05-20T10:00:00Z",
};

const absence: RuleView = {
  ...rule,
  rule_id: 5,
  name: "silent",
  statistic: null,
  window: null,
  op: null,
  threshold: null,
  absent_for: "10m",
  for: "0s",
  labels: {},
};

const at = (iso: string) => Date.parse(iso);

describe("paths", () => {
  it("name the experiment's rules, a rule and its history", () => {
    expect(alertRulesPath(1)).toBe("/experiments/1/alert-rules");
    expect(alertRulesPath(1, 4)).toBe("/experiments/1/alert-rules/4");
    expect(historyPath(1, 4)).toBe("/experiments/1/alert-rules/4/history?limit=100");
  });
});

describe("durations", () => {
  it("read as the server reads them", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration(" 5m ")).toBe(300_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("2d")).toBe(172_800_000);
    expect(parseDuration("1w")).toBe(604_800_000);
    expect(parseDuration("0s")).toBe(0);
    for (const bad of ["", "5", "m5", "5 minutes", "5mm", "1.5m", "-1s"]) expect(parseDuration(bad)).toBeNull();
  });
});

describe("condition summary", () => {
  it("says a threshold rule's statistic, window, bound and for", () => {
    expect(conditionSummary(rule)).toBe("mean of hertz over 5m > 120 for 1m");
    expect(conditionSummary({ ...rule, for: "0s", statistic: "p99", op: "<=", threshold: 0.25 })).toBe("p99 of hertz over 5m <= 0.25");
    expect(conditionSummary({ ...rule, tags: { host: "a", site: "b" } })).toBe("mean of hertz{host=a, site=b} over 5m > 120 for 1m");
  });
  it("says an absence rule's silence", () => {
    expect(conditionSummary(absence)).toBe("no hertz point for 10m");
    expect(conditionSummary({ ...absence, for: "1m" })).toBe("no hertz point for 10m, held for 1m");
  });
  it("notes per-tag rules and how many of their alerts are active", () => {
    expect(perTagNote(rule)).toBeNull();
    expect(groupKey("tag:host")).toBe("host");
    expect(groupKey("host")).toBeNull();
    const alert = { active_since: null, firing_since: null, value: null };
    expect(
      perTagNote({
        group_by: "tag:host",
        alerts: [
          { ...alert, group: "a", state: "firing" },
          { ...alert, group: "b", state: "inactive" },
          { ...alert, group: "c", state: "pending" },
        ],
      }),
    ).toBe("per host · 1 of 3 firing · 1 of 3 pending");
  });
});

describe("labels", () => {
  it("read key=value pairs", () => {
    expect(parseLabels("")).toEqual({ ok: true, pairs: {} });
    expect(parseLabels(" severity=page,  team = lab ,")).toEqual({ ok: true, pairs: { severity: "page", team: "lab" } });
    expect(parseLabels("url=a=b")).toEqual({ ok: true, pairs: { url: "a=b" } });
    expect(formatPairs({ severity: "page", team: "lab" })).toBe("severity=page, team=lab");
  });
  it("refuse malformed ones, saying why", () => {
    const error = (text: string) => {
      const check = parseLabels(text);
      return check.ok ? null : check.error;
    };
    expect(error("severity")).toMatch(/not label=value/);
    expect(error("=page")).toMatch(/no label name/);
    expect(error("severity=")).toMatch(/no value/);
    expect(error("a=1, a=2")).toMatch(/twice/);
    expect(error("1st=x")).toMatch(/not a label name/);
    expect(error("__x=y")).toMatch(/not a label name/);
    expect(error("my-label=y")).toMatch(/not a label name/);
    expect(error("alertname=x")).toMatch(/MyMonit sets/);
    expect(error(Array.from({ length: 33 }, (_, i) => `l${i}=v`).join(","))).toMatch(/At most 32/);
  });
  it("as tag filters, take any key", () => {
    expect(parsePairs("my-host=a", "tags")).toEqual({ ok: true, pairs: { "my-host": "a" } });
    expect(parsePairs("host", "tags").ok).toBe(false);
  });
});

describe("new rule", () => {
  const form: RuleForm = { ...emptyRuleForm("hertz"), name: " vibration high ", threshold: "1000", for: "1m" };
  it("is the POST body, leaving empty options to the server", () => {
    expect(ruleRequest(form)).toEqual({
      ok: true,
      body: { name: "vibration high", measure: "hertz", statistic: "mean", window: "5m", op: ">", threshold: 1000, for: "1m", interval: "30s" },
    });
    expect(
      ruleRequest({ ...form, groupBy: "host", tags: "site=b", labels: "severity=page", description: " {{ $labels.host }} " }),
    ).toMatchObject({
      ok: true,
      body: { group_by: "tag:host", tags: { site: "b" }, labels: { severity: "page" }, description: "{{ $labels.host }}" },
    });
  });
  it("of an absence has no threshold fields", () => {
    expect(ruleRequest({ ...form, kind: "absence", absentFor: "10m", for: "", interval: "" })).toEqual({
      ok: true,
      body: { name: "vibration high", measure: "hertz", absent_for: "10m", for: "0s", interval: "30s" },
    });
  });
  it("names the field that is wrong", () => {
    const field = (f: RuleForm) => {
      const check = ruleRequest(f);
      return check.ok ? null : check.field;
    };
    expect(field({ ...form, name: "  " })).toBe("name");
    expect(field({ ...form, measure: "" })).toBe("measure");
    expect(field({ ...form, threshold: "" })).toBe("threshold");
    expect(field({ ...form, threshold: "abc" })).toBe("threshold");
    expect(field({ ...form, window: "5" })).toBe("window");
    expect(field({ ...form, interval: "500ms" })).toBe("interval");
    expect(field({ ...form, for: "soon" })).toBe("for");
    expect(field({ ...form, labels: "severity" })).toBe("labels");
    expect(field({ ...form, tags: "host" })).toBe("tags");
    expect(field({ ...form, kind: "absence", absentFor: "" })).toBe("absent_for");
    // An absence rule does not read the threshold fields.
    expect(field({ ...form, kind: "absence", threshold: "" })).toBeNull();
  });
});

describe("edited rule", () => {
  it("starts from the rule as stored", () => {
    expect(formOf(rule)).toMatchObject({
      name: "vibration high",
      kind: "threshold",
      threshold: "120",
      for: "1m",
      groupBy: "",
      labels: "severity=page",
    });
    expect(formOf({ ...absence, group_by: "tag:host" })).toMatchObject({ kind: "absence", absentFor: "10m", groupBy: "host" });
  });
  it("sends only what changed, or nothing", () => {
    expect(rulePatch(rule, formOf(rule))).toEqual({ ok: true, patch: null });
    expect(rulePatch(rule, { ...formOf(rule), threshold: "50" })).toEqual({ ok: true, patch: { threshold: 50 } });
    // The same duration written otherwise is no change.
    expect(rulePatch(rule, { ...formOf(rule), window: "300s", for: "60s" })).toEqual({ ok: true, patch: null });
    expect(rulePatch(rule, { ...formOf(rule), window: "10m", labels: "", description: "x" })).toEqual({
      ok: true,
      patch: { window: "10m", labels: {}, description: "x" },
    });
  });
  it("clears a grouping with an empty string", () => {
    const grouped = { ...rule, group_by: "tag:host" };
    expect(rulePatch(grouped, { ...formOf(grouped), groupBy: "" })).toEqual({ ok: true, patch: { group_by: "" } });
    expect(rulePatch(rule, { ...formOf(rule), groupBy: "host" })).toEqual({ ok: true, patch: { group_by: "tag:host" } });
  });
  it("switches kinds with the whole condition", () => {
    expect(rulePatch(rule, { ...formOf(rule), kind: "absence", absentFor: "15m" })).toEqual({ ok: true, patch: { absent_for: "15m" } });
    expect(rulePatch(absence, { ...formOf(absence), kind: "threshold", threshold: "3" })).toEqual({
      ok: true,
      patch: { statistic: "mean", window: "5m", op: ">", threshold: 3 },
    });
  });
  it("refuses a malformed form", () => {
    expect(rulePatch(rule, { ...formOf(rule), labels: "severity=" })).toMatchObject({ ok: false, field: "labels" });
  });
});

describe("firing periods", () => {
  const from = at("2026-05-20T10:00:00Z");
  const to = at("2026-05-20T14:00:00Z");
  const now = at("2026-05-20T13:00:00Z");
  const event = (transition: AlertEvent["transition"], time: string, group: string | null = null): AlertEvent => ({
    group,
    transition,
    at: `2026-05-20T${time}Z`,
    value: 1,
  });
  // The server's order: newest first.
  const newestFirst = (...events: AlertEvent[]) => events.reverse();

  it("run from firing to resolved", () => {
    const events = newestFirst(event("pending", "10:30:00"), event("firing", "10:31:00"), event("resolved", "10:40:00"));
    expect(firingIntervals(events, { from, to, now })).toEqual([{ from: at("2026-05-20T10:31:00Z"), to: at("2026-05-20T10:40:00Z") }]);
  });
  it("reach now while the alert still fires", () => {
    const events = newestFirst(event("pending", "12:00:00"), event("firing", "12:01:00"));
    expect(firingIntervals(events, { from, to, now, firing: [null] })).toEqual([{ from: at("2026-05-20T12:01:00Z"), to: now }]);
  });
  it("are clipped to the range, and none is fine", () => {
    const events = newestFirst(event("firing", "09:00:00"), event("resolved", "10:15:00"), event("firing", "13:50:00"));
    expect(firingIntervals(events, { from, to: at("2026-05-20T12:00:00Z"), now })).toEqual([{ from, to: at("2026-05-20T10:15:00Z") }]);
    expect(firingIntervals([], { from, to, now })).toEqual([]);
    expect(firingIntervals(newestFirst(event("pending", "11:00:00"), event("cleared", "11:01:00")), { from, to, now })).toEqual([]);
    // Entirely outside.
    expect(firingIntervals(newestFirst(event("firing", "08:00:00"), event("resolved", "09:00:00")), { from, to, now })).toEqual([]);
  });
  it("join across groups", () => {
    const events = newestFirst(
      event("firing", "11:00:00", "a"),
      event("firing", "11:10:00", "b"),
      event("resolved", "11:20:00", "a"),
      event("resolved", "11:30:00", "b"),
      event("firing", "12:00:00", "a"),
      event("resolved", "12:05:00", "a"),
    );
    expect(firingIntervals(events, { from, to, now })).toEqual([
      { from: at("2026-05-20T11:00:00Z"), to: at("2026-05-20T11:30:00Z") },
      { from: at("2026-05-20T12:00:00Z"), to: at("2026-05-20T12:05:00Z") },
    ]);
  });
  it("start before the range when the history kept begins with a resolution", () => {
    expect(firingIntervals([event("resolved", "10:20:00")], { from, to, now })).toEqual([{ from, to: at("2026-05-20T10:20:00Z") }]);
  });
  it("end where the rule was changed, which restarts its alerts without a resolution", () => {
    const events = newestFirst(event("firing", "11:00:00"), event("pending", "11:40:00"));
    expect(firingIntervals(events, { from, to, now, resetAt: at("2026-05-20T11:30:00Z") })).toEqual([
      { from: at("2026-05-20T11:00:00Z"), to: at("2026-05-20T11:30:00Z") },
    ]);
    // Not firing any more, with no later event: ends at the change.
    expect(firingIntervals([event("firing", "11:00:00")], { from, to, now, firing: [], resetAt: at("2026-05-20T11:30:00Z") })).toEqual([
      { from: at("2026-05-20T11:00:00Z"), to: at("2026-05-20T11:30:00Z") },
    ]);
  });
  it("merge overlapping spans", () => {
    expect(mergeIntervals([{ from: 5, to: 8 }, { from: 1, to: 3 }, { from: 2, to: 4 }, { from: 8, to: 9 }, { from: 6, to: 6 }])).toEqual([
      { from: 1, to: 4 },
      { from: 5, to: 9 },
    ]);
  });
});

describe("chart rules", () => {
  it("give each measure type its thresholds and firing periods", () => {
    const firing = { ...rule, rule_id: 6, name: "too fast", threshold: 100, state: "firing" as const, updated_at: "2026-05-20T09:00:00Z" };
    firing.alerts = [{ group: null, state: "firing", active_since: "2026-05-20T11:59:00Z", firing_since: "2026-05-20T12:00:00Z", value: 130 }];
    const history: RuleHistory = { events: [{ group: null, transition: "firing", at: "2026-05-20T12:00:00Z", value: 130 }], notifications: [] };
    const range = { from: at("2026-05-20T10:00:00Z"), to: at("2026-05-20T14:00:00Z") };
    const now = at("2026-05-20T13:00:00Z");
    const out = chartRules([rule, absence, firing, { ...rule, rule_id: 7, measure: "celsius" }], new Map([[6, history]]), range, now);
    expect([...out.keys()]).toEqual(["hertz", "celsius"]);
    expect(out.get("hertz")).toEqual({
      thresholds: [
        { ruleId: 4, name: "vibration high", op: ">", threshold: 120, state: "inactive" },
        { ruleId: 6, name: "too fast", op: ">", threshold: 100, state: "firing" },
      ],
      firing: [{ from: at("2026-05-20T12:00:00Z"), to: now }],
    });
    expect(out.get("celsius")?.firing).toEqual([]);
  });
  it("fetch a history again when its alerts change", () => {
    const a = historySignature(rule);
    expect(historySignature({ ...rule })).toBe(a);
    expect(historySignature({ ...rule, state: "firing" })).not.toBe(a);
    expect(historySignature({ ...rule, updated_at: "2026-05-20T11:00:00Z" })).not.toBe(a);
  });
});

describe("receivers", () => {
  it("read as kind and address", () => {
    expect(receiverParts("alertmanager:http://127.0.0.1:9093")).toEqual({ kind: "Alertmanager", address: "http://127.0.0.1:9093" });
    expect(receiverParts("webhook:https://hooks.example.org/x")).toEqual({ kind: "Webhook", address: "https://hooks.example.org/x" });
    expect(receiverParts("other")).toEqual({ kind: "", address: "other" });
  });
});
