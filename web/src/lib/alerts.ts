// Alert rules for people: a rule's condition in words, the form that makes or changes one
// (checked as the server checks it, so that slips show before a round trip), and when its
// alerts fired, for the charts.

import type { AlertEvent, AlertState, Comparison, RuleHistory, RuleRequest, RuleView, Tags, Transition } from "./types";

/** The rules' states change on the server's clock: the list follows them this often. */
export const RULES_POLL_MS = 5_000;
/** How many changes and notifications a rule's history shows. */
export const HISTORY_LIMIT = 100;

export const OPS: Comparison[] = [">", ">=", "<", "<="];

/** The statistics offered; a rule made through the API with another percentile keeps it. */
export const RULE_STATISTICS: { id: string; label: string }[] = [
  { id: "mean", label: "mean" },
  { id: "min", label: "min" },
  { id: "max", label: "max" },
  { id: "count", label: "count" },
  { id: "sum", label: "sum" },
  { id: "stddev", label: "stddev" },
  { id: "first", label: "first" },
  { id: "last", label: "last" },
  { id: "p50", label: "p50" },
  { id: "p90", label: "p90" },
  { id: "p95", label: "p95" },
  { id: "p99", label: "p99" },
  { id: "rate", label: "rate (change per second)" },
];

/** Labels MyMonit sets on every alert itself. */
export const RESERVED_LABELS = ["alertname", "experiment", "measure", "mymonit_rule_id"];
const MAX_LABELS = 32;
const MAX_NAME_CHARS = 200;
const MAX_DESCRIPTION_CHARS = 2000;
const MIN_INTERVAL_MS = 1000;

export const STATE_BADGES: Record<AlertState, string> = {
  firing: "badge badge-bad",
  pending: "badge badge-warn",
  inactive: "badge",
};

export const TRANSITION_BADGES: Record<Transition, string> = {
  firing: "badge badge-bad",
  pending: "badge badge-warn",
  resolved: "badge badge-good",
  cleared: "badge",
};

/** Path of an experiment's rules, or of one rule. */
export function alertRulesPath(experimentId: number, ruleId?: number): string {
  return `/experiments/${experimentId}/alert-rules${ruleId === undefined ? "" : `/${ruleId}`}`;
}

export function historyPath(experimentId: number, ruleId: number, limit: number = HISTORY_LIMIT): string {
  return `${alertRulesPath(experimentId, ruleId)}/history?limit=${limit}`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30s`, `5m`, `1h30m`, `250ms`, `2d`, `1w` as milliseconds, as the server reads them; null
 * when it is not one. */
export function parseDuration(text: string): number | null {
  let rest = text.trim();
  if (!rest) return null;
  let total = 0;
  while (rest) {
    const match = /^(\d+)(ms|s|m|h|d|w)(?=\d|$)/.exec(rest);
    if (!match) return null;
    total += Number(match[1]) * UNITS[match[2]];
    rest = rest.slice(match[0].length);
  }
  return Number.isSafeInteger(total) ? total : null;
}

/** A threshold as written: every digit kept (a bound is exact, unlike a reading). */
export function thresholdText(threshold: number): string {
  return String(threshold);
}

export function isThreshold(rule: Pick<RuleView, "absent_for">): boolean {
  return !rule.absent_for;
}

/** The tag key of a `group_by` (`tag:host` → `host`), or null. */
export function groupKey(groupBy: string | null | undefined): string | null {
  if (!groupBy) return null;
  return groupBy.startsWith("tag:") && groupBy.length > 4 ? groupBy.slice(4) : null;
}

function lasts(duration: string | null | undefined): boolean {
  return !!duration && parseDuration(duration) !== 0;
}

/** `key=value, key=value`. */
export function formatPairs(pairs: Record<string, string> | null | undefined): string {
  return Object.entries(pairs ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

/**
 * The condition in words: "mean of hertz over 5m > 120 for 1m", "no hertz point for 10m";
 * a tag filter follows the measure type as `hertz{host=a}`.
 */
export function conditionSummary(
  rule: Pick<RuleView, "measure" | "tags" | "statistic" | "window" | "op" | "threshold" | "absent_for" | "for">,
): string {
  const tags = formatPairs(rule.tags);
  const measure = tags ? `${rule.measure}{${tags}}` : rule.measure;
  if (rule.absent_for) {
    return `no ${measure} point for ${rule.absent_for}${lasts(rule.for) ? `, held for ${rule.for}` : ""}`;
  }
  const threshold = rule.threshold === null ? "?" : thresholdText(rule.threshold);
  return `${rule.statistic ?? "?"} of ${measure} over ${rule.window ?? "?"} ${rule.op ?? "?"} ${threshold}${lasts(rule.for) ? ` for ${rule.for}` : ""}`;
}

/** What a per-tag rule's alerts are: "per host", with how many are active. */
export function perTagNote(rule: Pick<RuleView, "group_by" | "alerts">): string | null {
  const key = groupKey(rule.group_by);
  if (!key) return null;
  const firing = rule.alerts.filter((a) => a.state === "firing").length;
  const pending = rule.alerts.filter((a) => a.state === "pending").length;
  const parts = [`per ${key}`];
  if (firing) parts.push(`${firing} of ${rule.alerts.length} firing`);
  if (pending) parts.push(`${pending} of ${rule.alerts.length} pending`);
  return parts.join(" · ");
}

export type PairsCheck = { ok: true; pairs: Record<string, string> } | { ok: false; error: string };

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `key=value, key=value` as an object ("" is none). Values hold no comma; an `=` after the
 * first belongs to the value. As labels, the keys are Prometheus label names, and the ones
 * MyMonit sets are refused.
 */
export function parsePairs(text: string, kind: "labels" | "tags"): PairsCheck {
  const pairs: Record<string, string> = {};
  const what = kind === "labels" ? "label" : "tag";
  for (const piece of text.split(",")) {
    const item = piece.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    if (eq < 0) return { ok: false, error: `"${item}" is not ${what}=value.` };
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (!key) return { ok: false, error: `"${item}" has no ${what} name before the =.` };
    if (!value) return { ok: false, error: `The ${what} ${key} has no value.` };
    if (Object.hasOwn(pairs, key)) return { ok: false, error: `The ${what} ${key} is given twice.` };
    if (kind === "labels") {
      if (!LABEL_NAME.test(key) || key.startsWith("__") || key.length > 100) {
        return { ok: false, error: `"${key}" is not a label name: letters, digits and _, not starting with a digit or __.` };
      }
      if (RESERVED_LABELS.includes(key)) return { ok: false, error: `MyMonit sets the label ${key} itself.` };
      if ([...value].length > 1000) return { ok: false, error: `The label ${key} is longer than 1000 characters.` };
    }
    pairs[key] = value;
  }
  if (kind === "labels" && Object.keys(pairs).length > MAX_LABELS) return { ok: false, error: `At most ${MAX_LABELS} labels.` };
  return { ok: true, pairs };
}

export function parseLabels(text: string): PairsCheck {
  return parsePairs(text, "labels");
}

function samePairs(a: Record<string, string> | null | undefined, b: Record<string, string> | null | undefined): boolean {
  const x = Object.entries(a ?? {});
  const y = b ?? {};
  return x.length === Object.keys(y).length && x.every(([k, v]) => Object.hasOwn(y, k) && y[k] === v);
}

export type RuleKind = "threshold" | "absence";

/** The fields of the form that makes or changes a rule, as typed. */
export interface RuleForm {
  name: string;
  measure: string;
  kind: RuleKind;
  statistic: string;
  window: string;
  op: Comparison;
  threshold: string;
  absentFor: string;
  for: string;
  interval: string;
  /** A tag key; "" for one alert for the whole rule. */
  groupBy: string;
  tags: string;
  labels: string;
  description: string;
}

export function emptyRuleForm(measure: string): RuleForm {
  return {
    name: "",
    measure,
    kind: "threshold",
    statistic: "mean",
    window: "5m",
    op: ">",
    threshold: "",
    absentFor: "10m",
    for: "0s",
    interval: "30s",
    groupBy: "",
    tags: "",
    labels: "",
    description: "",
  };
}

/** The edit form of a rule. */
export function formOf(rule: RuleView): RuleForm {
  const base = emptyRuleForm(rule.measure);
  return {
    ...base,
    name: rule.name,
    kind: isThreshold(rule) ? "threshold" : "absence",
    statistic: rule.statistic ?? base.statistic,
    window: rule.window ?? base.window,
    op: rule.op ?? base.op,
    threshold: rule.threshold === null ? "" : thresholdText(rule.threshold),
    absentFor: rule.absent_for ?? base.absentFor,
    for: rule.for ?? base.for,
    interval: rule.interval ?? base.interval,
    groupBy: groupKey(rule.group_by) ?? "",
    tags: formatPairs(rule.tags),
    labels: formatPairs(rule.labels),
    description: rule.description ?? "",
  };
}

/** Which form field a server's 422 `field` names, for its label. */
export const FIELD_LABELS: Record<string, string> = {
  name: "Name",
  measure: "Measure",
  tags: "Only series tagged",
  statistic: "Statistic",
  window: "Window",
  op: "Comparison",
  threshold: "Threshold",
  absent_for: "Absent for",
  for: "For",
  interval: "Interval",
  group_by: "Group by tag",
  labels: "Labels",
  description: "Description",
};

/** The form read into the rule's fields, every one given. */
interface ReadRule {
  name: string;
  measure: string;
  tags: Tags;
  condition:
    | { kind: "threshold"; statistic: string; window: string; windowMs: number; op: Comparison; threshold: number }
    | { kind: "absence"; absentFor: string; absentForMs: number };
  for: string;
  forMs: number;
  interval: string;
  intervalMs: number;
  groupBy: string | null;
  labels: Record<string, string>;
  description: string;
}

export type FormProblem = { ok: false; error: string; field: keyof typeof FIELD_LABELS };
type ReadCheck = { ok: true; rule: ReadRule } | FormProblem;

function durationProblem(field: keyof typeof FIELD_LABELS, text: string, minMs: number): FormProblem | number {
  const ms = parseDuration(text);
  if (ms === null) return { ok: false, field, error: `${FIELD_LABELS[field]}: "${text.trim()}" is not a duration such as 30s, 5m or 1h30m.` };
  if (ms < minMs) return { ok: false, field, error: `${FIELD_LABELS[field]}: at least ${minMs / 1000}s.` };
  return ms;
}

function readForm(form: RuleForm): ReadCheck {
  const name = form.name.trim();
  if (!name) return { ok: false, field: "name", error: "Enter the rule's name." };
  if ([...name].length > MAX_NAME_CHARS) return { ok: false, field: "name", error: `The name is at most ${MAX_NAME_CHARS} characters long.` };
  if (!form.measure) return { ok: false, field: "measure", error: "Choose the measure type the rule watches." };
  let condition: ReadRule["condition"];
  if (form.kind === "threshold") {
    if (!form.statistic) return { ok: false, field: "statistic", error: "Choose a statistic." };
    const windowMs = durationProblem("window", form.window, 1000);
    if (typeof windowMs !== "number") return windowMs;
    const text = form.threshold.trim();
    const threshold = text ? Number(text) : NaN;
    if (!Number.isFinite(threshold)) return { ok: false, field: "threshold", error: "Enter the threshold, a number." };
    condition = { kind: "threshold", statistic: form.statistic, window: form.window.trim(), windowMs, op: form.op, threshold };
  } else {
    const absentForMs = durationProblem("absent_for", form.absentFor, 1000);
    if (typeof absentForMs !== "number") return absentForMs;
    condition = { kind: "absence", absentFor: form.absentFor.trim(), absentForMs };
  }
  const forText = form.for.trim() || "0s";
  const forMs = durationProblem("for", forText, 0);
  if (typeof forMs !== "number") return forMs;
  const interval = form.interval.trim() || "30s";
  const intervalMs = durationProblem("interval", interval, MIN_INTERVAL_MS);
  if (typeof intervalMs !== "number") return intervalMs;
  const tags = parsePairs(form.tags, "tags");
  if (!tags.ok) return { ok: false, field: "tags", error: `Only series tagged: ${tags.error}` };
  const labels = parseLabels(form.labels);
  if (!labels.ok) return { ok: false, field: "labels", error: `Labels: ${labels.error}` };
  const description = form.description.trim();
  if ([...description].length > MAX_DESCRIPTION_CHARS) {
    return { ok: false, field: "description", error: `The description is at most ${MAX_DESCRIPTION_CHARS} characters long.` };
  }
  return {
    ok: true,
    rule: {
      name,
      measure: form.measure,
      tags: tags.pairs,
      condition,
      for: forText,
      forMs,
      interval,
      intervalMs,
      groupBy: form.groupBy ? `tag:${form.groupBy}` : null,
      labels: labels.pairs,
      description,
    },
  };
}

export type RequestCheck = { ok: true; body: RuleRequest } | FormProblem;

/** The POST body of a new rule; empty optional fields are left to the server's defaults. */
export function ruleRequest(form: RuleForm): RequestCheck {
  const read = readForm(form);
  if (!read.ok) return read;
  const r = read.rule;
  const body: RuleRequest = { name: r.name, measure: r.measure };
  if (Object.keys(r.tags).length) body.tags = r.tags;
  if (r.condition.kind === "threshold") {
    body.statistic = r.condition.statistic;
    body.window = r.condition.window;
    body.op = r.condition.op;
    body.threshold = r.condition.threshold;
  } else {
    body.absent_for = r.condition.absentFor;
  }
  body.for = r.for;
  body.interval = r.interval;
  if (r.groupBy) body.group_by = r.groupBy;
  if (Object.keys(r.labels).length) body.labels = r.labels;
  if (r.description) body.description = r.description;
  return { ok: true, body };
}

export type PatchCheck = { ok: true; patch: RuleRequest | null } | FormProblem;

function sameDuration(text: string | null | undefined, ms: number): boolean {
  return text !== null && text !== undefined && parseDuration(text) === ms;
}

/**
 * The PATCH body of an edit: the changed fields only (null when nothing changed). The server
 * keeps what a PATCH leaves out, so a rule turned from an absence into a threshold sends its
 * whole condition; a group_by dropped is sent as "" (null would keep it).
 */
export function rulePatch(rule: RuleView, form: RuleForm): PatchCheck {
  const read = readForm(form);
  if (!read.ok) return read;
  const r = read.rule;
  const patch: RuleRequest = {};
  if (r.name !== rule.name) patch.name = r.name;
  if (r.measure !== rule.measure) patch.measure = r.measure;
  if (!samePairs(r.tags, rule.tags)) patch.tags = r.tags;
  const c = r.condition;
  if (c.kind === "threshold") {
    const was = isThreshold(rule);
    if (!was || c.statistic !== rule.statistic) patch.statistic = c.statistic;
    if (!was || !sameDuration(rule.window, c.windowMs)) patch.window = c.window;
    if (!was || c.op !== rule.op) patch.op = c.op;
    if (!was || c.threshold !== rule.threshold) patch.threshold = c.threshold;
  } else if (isThreshold(rule) || !sameDuration(rule.absent_for, c.absentForMs)) {
    patch.absent_for = c.absentFor;
  }
  if (!sameDuration(rule.for ?? "0s", r.forMs)) patch.for = r.for;
  if (!sameDuration(rule.interval ?? "30s", r.intervalMs)) patch.interval = r.interval;
  if (r.groupBy !== (rule.group_by ?? null)) patch.group_by = r.groupBy ?? "";
  if (!samePairs(r.labels, rule.labels)) patch.labels = r.labels;
  if (r.description !== (rule.description ?? "")) patch.description = r.description;
  return { ok: true, patch: Object.keys(patch).length ? patch : null };
}

/** A span of time, epoch milliseconds. */
export interface Interval {
  from: number;
  to: number;
}

/** The spans in time order, overlapping and touching ones joined. */
export function mergeIntervals(intervals: Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.to > i.from).sort((a, b) => a.from - b.from);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.from <= last.to) last.to = Math.max(last.to, i.to);
    else out.push({ ...i });
  }
  return out;
}

export interface FiringOptions {
  /** The chart's range: the spans are clipped to it. */
  from: number;
  to: number;
  /** Where an alert still firing ends. */
  now: number;
  /** The groups firing now, from the rule's alerts (null for the rule's own alert). Unknown:
   * every alert left firing by the history still fires. */
  firing?: (string | null)[];
  /** When the rule was last changed (its `updated_at`), epoch ms: a change starts its alerts
   * again from inactive without recording their end. */
  resetAt?: number | null;
}

/**
 * When any of a rule's alerts fired, from its history (newest first, as the server gives it):
 * from each `firing` to its group's `resolved`, up to now while it still fires; clipped to the
 * range and joined. A `resolved` whose `firing` is older than the history kept starts before
 * the range.
 */
export function firingIntervals(events: Pick<AlertEvent, "group" | "transition" | "at">[], options: FiringOptions): Interval[] {
  const ordered = events
    .map((event, index) => ({ event, index, at: Date.parse(event.at) }))
    .filter((e) => Number.isFinite(e.at))
    // Oldest first; events at the same instant keep their order (the server's is newest first).
    .sort((a, b) => a.at - b.at || b.index - a.index);
  const reset = options.resetAt ?? null;
  const endAt = (start: number, next: number) => (reset !== null && reset >= start && reset <= next ? reset : next);
  const open = new Map<string, number>();
  const seen = new Set<string>();
  const spans: Interval[] = [];
  for (const { event, at } of ordered) {
    const key = event.group ?? "";
    const start = open.get(key);
    if (event.transition === "firing") {
      if (start === undefined) open.set(key, at);
    } else if (event.transition === "resolved") {
      if (start !== undefined) spans.push({ from: start, to: at });
      else if (!seen.has(key)) spans.push({ from: -Infinity, to: at });
      open.delete(key);
    } else if (start !== undefined) {
      // Pending or cleared after firing without a resolution: the rule was changed between.
      spans.push({ from: start, to: endAt(start, at) });
      open.delete(key);
    }
    seen.add(key);
  }
  const firingNow = options.firing ? new Set(options.firing.map((g) => g ?? "")) : null;
  for (const [key, start] of open) {
    const still = firingNow === null || firingNow.has(key);
    spans.push({ from: start, to: still ? options.now : endAt(start, options.now) });
  }
  return mergeIntervals(
    spans.map((s) => ({ from: Math.max(s.from, options.from), to: Math.min(s.to, options.to) })).filter((s) => s.to > s.from),
  );
}

/** A threshold drawn on a chart. */
export interface ChartThreshold {
  ruleId: number;
  name: string;
  op: Comparison;
  threshold: number;
  state: AlertState;
}

/** What the chart of a measure type draws of its rules. */
export interface ChartRules {
  thresholds: ChartThreshold[];
  firing: Interval[];
}

/** Per measure type: the thresholds of its threshold rules, and when any of them fired. */
export function chartRules(
  rules: RuleView[],
  histories: ReadonlyMap<number, RuleHistory>,
  range: { from: number; to: number },
  now: number,
): Map<string, ChartRules> {
  const out = new Map<string, ChartRules>();
  for (const rule of rules) {
    if (!isThreshold(rule) || rule.op === null || rule.threshold === null) continue;
    let entry = out.get(rule.measure);
    if (!entry) out.set(rule.measure, (entry = { thresholds: [], firing: [] }));
    entry.thresholds.push({ ruleId: rule.rule_id, name: rule.name, op: rule.op, threshold: rule.threshold, state: rule.state });
    const history = histories.get(rule.rule_id);
    if (history) {
      const updated = Date.parse(rule.updated_at);
      entry.firing.push(
        ...firingIntervals(history.events, {
          ...range,
          now,
          firing: rule.alerts.filter((a) => a.state === "firing").map((a) => a.group),
          resetAt: Number.isFinite(updated) ? updated : null,
        }),
      );
    }
  }
  for (const entry of out.values()) entry.firing = mergeIntervals(entry.firing);
  return out;
}

/** What changes when a rule's history may have: a new firing or resolution shows in these. */
export function historySignature(rule: Pick<RuleView, "rule_id" | "updated_at" | "state" | "alerts">): string {
  return [rule.rule_id, rule.updated_at, rule.state, ...rule.alerts.map((a) => `${a.group ?? ""}:${a.state}:${a.firing_since ?? ""}`)].join("|");
}

/** The receiver's kind and address: `alertmanager:URL` → ["Alertmanager", URL]. */
export function receiverParts(receiver: string): { kind: string; address: string } {
  const colon = receiver.indexOf(":");
  const kind = colon < 0 ? "" : receiver.slice(0, colon);
  if (kind === "alertmanager") return { kind: "Alertmanager", address: receiver.slice(colon + 1) };
  if (kind === "webhook") return { kind: "Webhook", address: receiver.slice(colon + 1) };
  return { kind: "", address: receiver };
}
