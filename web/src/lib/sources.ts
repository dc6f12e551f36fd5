// Sources MyMonit fetches measures from: the kinds, the checks of the forms that add and
// change one (the server's rules, so that mistakes show before a round trip; whether the
// source answers is for the server to say), and how far its history has loaded.

import { queryString } from "./api";
import type { Source, SourceKind, SourceState } from "./types";

export const DEFAULT_INTERVAL_SECS = 60;
export const MAX_INTERVAL_SECS = 86_400;
export const MAX_URL_BYTES = 2048;

export const SOURCE_KINDS: { id: SourceKind; label: string; hint: string; placeholder: string; secretHint: string }[] = [
  {
    id: "fmd",
    label: "Flask-MonitoringDashboard",
    hint: "A Flask-MonitoringDashboard: MyMonit loads the requests it recorded, then the new ones at each interval.",
    placeholder: "http://127.0.0.1:5055/dashboard",
    secretHint: "Required: the dashboard's security token.",
  },
  {
    id: "prometheus",
    label: "Prometheus",
    hint: "A Prometheus metrics endpoint: MyMonit reads its metrics at each interval.",
    placeholder: "http://127.0.0.1:9100/metrics",
    secretHint: "Optional: sent as a Bearer token.",
  },
];

export function kindOf(kind: SourceKind): (typeof SOURCE_KINDS)[number] {
  return SOURCE_KINDS.find((k) => k.id === kind) ?? SOURCE_KINDS[0];
}

/** Path and query of `/sources`, all of them or one experiment's. */
export function sourcesPath(experimentId?: number): string {
  return `/sources${queryString({ experiment_id: experimentId })}`;
}

/** The interval in whole seconds from 1 to 86400 from the form's text, or null. */
export function intervalSecs(text: string): number | null {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const secs = Number(trimmed);
  return secs >= 1 && secs <= MAX_INTERVAL_SECS ? secs : null;
}

/** What is wrong with a source's URL, or null: the server's rules (absolute http(s) with a
 * host, no spaces, no credentials: those belong in the secret, which is never shown). */
export function urlProblem(text: string): string | null {
  const trimmed = text.trim();
  if (!trimmed) return "Enter the source's URL.";
  if (!/^https?:\/\//.test(trimmed)) return "The URL starts with http:// or https://.";
  if (new TextEncoder().encode(trimmed).length > MAX_URL_BYTES) return `The URL is at most ${MAX_URL_BYTES} bytes long.`;
  if (/[\s\p{Cc}]/u.test(trimmed)) return "The URL holds no spaces.";
  // The authority as the server reads it (a browser's URL parser forgives more).
  const authority = trimmed.replace(/^https?:\/\//, "").split(/[/?#]/)[0];
  if (!authority) return "The URL names a host.";
  if (authority.includes("@")) return "The URL holds no credentials: give the token as the secret.";
  try {
    new URL(trimmed);
  } catch {
    return "Enter a whole URL, for example http://127.0.0.1:5055/dashboard.";
  }
  return null;
}

export interface SourceForm {
  experimentId: string;
  kind: SourceKind;
  url: string;
  secret: string;
  interval: string;
  include: string;
}

export const EMPTY_SOURCE_FORM: SourceForm = {
  experimentId: "",
  kind: "fmd",
  url: "",
  secret: "",
  interval: String(DEFAULT_INTERVAL_SECS),
  include: "",
};

export interface NewSource {
  experiment_id: number;
  kind: SourceKind;
  url: string;
  secret?: string;
  interval_secs: number;
  include?: string;
}

export type NewSourceCheck = { ok: true; body: NewSource } | { ok: false; error: string };

const INTERVAL_ERROR = `The interval is 1 to ${MAX_INTERVAL_SECS} seconds.`;

/** The request that adds a source, or what is wrong with the form. */
export function checkNewSource(form: SourceForm): NewSourceCheck {
  const experiment = Number(form.experimentId);
  if (!form.experimentId || !Number.isInteger(experiment)) return { ok: false, error: "Choose an experiment." };
  const problem = urlProblem(form.url);
  if (problem) return { ok: false, error: problem };
  // Pasted secrets often carry a stray space or line break at an end; tokens never do.
  const secret = form.secret.trim();
  if (form.kind === "fmd" && !secret) return { ok: false, error: "Enter the dashboard's security token." };
  const interval = intervalSecs(form.interval);
  if (interval === null) return { ok: false, error: INTERVAL_ERROR };
  const body: NewSource = { experiment_id: experiment, kind: form.kind, url: form.url.trim(), interval_secs: interval };
  if (secret) body.secret = secret;
  const include = form.include.trim();
  if (form.kind === "prometheus" && include) body.include = include;
  return { ok: true, body };
}

export interface SourceEdit {
  url: string;
  /** Blank: keep the current one. */
  secret: string;
  interval: string;
  include: string;
  enabled: boolean;
}

export function editOf(source: Source): SourceEdit {
  return { url: source.url, secret: "", interval: String(source.interval_secs), include: source.include ?? "", enabled: source.enabled };
}

export interface SourcePatch {
  url?: string;
  secret?: string;
  interval_secs?: number;
  enabled?: boolean;
  include?: string;
}

export type SourcePatchCheck = { ok: true; patch: SourcePatch | null } | { ok: false; error: string };

/** The changed fields only (null: nothing changed), or what is wrong with the form. A blank
 * include clears it (the server reads an empty string as "none"). */
export function sourcePatch(source: Source, edit: SourceEdit): SourcePatchCheck {
  const patch: SourcePatch = {};
  const url = edit.url.trim();
  if (url !== source.url) {
    const problem = urlProblem(url);
    if (problem) return { ok: false, error: problem };
    patch.url = url;
  }
  const secret = edit.secret.trim();
  if (secret) patch.secret = secret;
  const interval = intervalSecs(edit.interval);
  if (interval === null) return { ok: false, error: INTERVAL_ERROR };
  if (interval !== source.interval_secs) patch.interval_secs = interval;
  if (source.kind === "prometheus") {
    const include = edit.include.trim();
    if (include !== (source.include ?? "")) patch.include = include;
  }
  if (edit.enabled !== source.enabled) patch.enabled = edit.enabled;
  return { ok: true, patch: Object.keys(patch).length ? patch : null };
}

/** Whether part of the source's history is still to load. */
export function loadingHistory(source: Pick<Source, "backlog">): boolean {
  return source.backlog > 0;
}

/**
 * How much of the source's history has loaded, in whole percent: from its first record to
 * now, the part up to `loaded_until`. 100 once caught up, never 100 before; null when the
 * server does not know the ends yet.
 */
export function historyPercent(
  source: Pick<Source, "backlog" | "history_from" | "loaded_until">,
  now: number = Date.now(),
): number | null {
  if (!loadingHistory(source)) return 100;
  const from = source.history_from ? Date.parse(source.history_from) : NaN;
  if (Number.isNaN(from)) return null;
  const until = source.loaded_until ? Date.parse(source.loaded_until) : from;
  if (Number.isNaN(until)) return null;
  // The end from the backlog when the browser's clock is behind the server's.
  const end = Math.max(now, until + source.backlog * 1000);
  if (end <= from) return 0;
  return Math.max(0, Math.min(99, Math.floor(((until - from) / (end - from)) * 100)));
}

/** How often a list of sources refreshes: often while some history loads. */
export const SOURCES_POLL_MS = 5_000;
export const SOURCES_IDLE_POLL_MS = 60_000;

export function sourcesPollMs(sources: Pick<Source, "backlog" | "state">[] | undefined): number {
  return (sources ?? []).some((s) => s.state === "loading" || loadingHistory(s)) ? SOURCES_POLL_MS : SOURCES_IDLE_POLL_MS;
}

export const STATE_BADGES: Record<SourceState, string> = {
  loading: "badge badge-info",
  ok: "badge badge-good",
  failing: "badge badge-bad",
  disabled: "badge badge-off",
  waiting: "badge",
};

/** The host (and port) of a URL, or the text itself when it is not one. */
export function urlHost(text: string): string {
  try {
    return new URL(text).host || text;
  } catch {
    return text;
  }
}

/** At most `max` characters, ending in "…" when cut. */
export function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join("").trimEnd()}…`;
}
