// Paths and queries of the measure, statistics and audit endpoints.

import { queryString, type Query } from "./api";
import { toRfc3339, type TimeRange } from "./timerange";

export const STATISTICS = ["count", "mean", "min", "max", "p50", "p90", "p99"] as const;
export type Statistic = (typeof STATISTICS)[number];

export type Timeslice = "" | "hour" | "day" | "week" | "month";
export const TIMESLICES: { id: Timeslice; label: string }[] = [
  { id: "", label: "None" },
  { id: "hour", label: "Hour" },
  { id: "day", label: "Day" },
  { id: "week", label: "Week" },
  { id: "month", label: "Month" },
];

/** Whether a timeslice may be dynamic (fixed length from `from`): months have no fixed length. */
export function dynamicAllowed(timeslice: Timeslice): boolean {
  return timeslice !== "" && timeslice !== "month";
}

function rangeQuery(range: Pick<TimeRange, "from" | "to">): Query {
  return { from: toRfc3339(range.from), to: toRfc3339(range.to) };
}

const experimentPath = (id: number | string) => `/experiments/${encodeURIComponent(String(id))}`;

export interface StatsRequest {
  measure: string;
  range: Pick<TimeRange, "from" | "to">;
  timeslice?: Timeslice;
  /** Calendar slices (true) or slices of fixed length from `from` (false). */
  isStatic?: boolean;
  tz?: string;
  statistics?: readonly string[];
}

/** Path and query of `/experiments/{id}/stats`. */
export function statsPath(experimentId: number | string, request: StatsRequest): string {
  const query: Query = {
    measure: request.measure,
    statistics: (request.statistics ?? STATISTICS).join(","),
    ...rangeQuery(request.range),
  };
  if (request.timeslice) {
    query.timeslice = request.timeslice;
    const isStatic = request.isStatic ?? true;
    query.timeslice_is_static = dynamicAllowed(request.timeslice) ? isStatic : true;
    query.tz = request.tz;
  }
  return `${experimentPath(experimentId)}/stats${queryString(query)}`;
}

/** Path and query of `/experiments/{id}/series`: about `points` points (at least 4). */
export function seriesPath(
  experimentId: number | string,
  measure: string,
  range: Pick<TimeRange, "from" | "to">,
  points: number,
): string {
  const n = Math.max(4, Math.min(100_000, Math.round(points)));
  return `${experimentPath(experimentId)}/series${queryString({ measure, ...rangeQuery(range), points: n })}`;
}

/** Path and query of `/experiments/{id}/boxplot`. */
export function boxplotPath(experimentId: number | string, range: Pick<TimeRange, "from" | "to">): string {
  return `${experimentPath(experimentId)}/boxplot${queryString(rangeQuery(range))}`;
}

/** Path of `/experiments/{id}/latest`. */
export function latestPath(experimentId: number | string): string {
  return `${experimentPath(experimentId)}/latest`;
}

/** Path of `/experiments/{id}/stream` (Server-Sent Events). */
export function streamPath(experimentId: number | string): string {
  return `${experimentPath(experimentId)}/stream`;
}

/** Path and query of an export of every measure in the range. */
export function exportPath(
  experimentId: number | string,
  format: "csv" | "ndjson",
  range: Pick<TimeRange, "from" | "to">,
  measure?: string,
): string {
  return `${experimentPath(experimentId)}/measures${queryString({ format, ...rangeQuery(range), measure })}`;
}

export interface AuditFilters {
  /** datetime-local start, epoch ms */
  from?: number | null;
  to?: number | null;
  actor?: string;
  action?: string;
  outcome?: "" | "success" | "failure" | "denied";
  /** Newest first (the default of the audit page) or oldest first. */
  order?: "desc" | "asc";
}

/** Query of `/audit` from filters (blank ones left out). */
export function auditQuery(filters: AuditFilters, extra: Query = {}): Query {
  const query: Query = {};
  if (filters.from !== null && filters.from !== undefined) query.from = toRfc3339(filters.from);
  if (filters.to !== null && filters.to !== undefined) query.to = toRfc3339(filters.to);
  if (filters.actor?.trim()) query.actor = filters.actor.trim();
  if (filters.action?.trim()) query.action = filters.action.trim();
  if (filters.outcome) query.outcome = filters.outcome;
  if (filters.order === "desc") query.order = "desc";
  return { ...query, ...extra };
}

/** Path and query of a page of the audit trail. */
export function auditPath(filters: AuditFilters, limit: number, cursor?: string | null): string {
  return `/audit${queryString(auditQuery(filters, { limit, cursor: cursor ?? undefined }))}`;
}

/** Path and query of the NDJSON export of the matching audit records. */
export function auditExportPath(filters: AuditFilters): string {
  return `/audit${queryString(auditQuery(filters, { format: "ndjson" }))}`;
}
