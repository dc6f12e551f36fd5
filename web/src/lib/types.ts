// JSON shapes of the MyMonit API (/api/v1), as the server's serde types produce them.

export type Role = "ADMIN" | "SCIENTIST" | "AUDITOR";

export interface User {
  user_id: string;
  name: string;
  username: string;
  email: string;
  role: Role;
}

export interface Session {
  user: User;
  csrf_token: string;
  expires_in: number;
}

export interface Experiment {
  experiment_id: number;
  name: string;
}

export interface MeasureType {
  measure_type_id: number;
  name: string;
  symbol: string;
  quantity: string;
}

export interface Association {
  experiment: Experiment;
  user: User;
}

export interface IngestToken {
  token_id: string;
  description: string;
  experiment_ids: number[];
  created_by: string | null;
  created_at: number;
  revoked: boolean;
}

export interface CreatedIngestToken extends IngestToken {
  token: string;
}

/** How an experiment takes writes through the InfluxDB-compatible API. */
export interface IngestSettings {
  create_measure_types: boolean;
}

/** A personal access token, as its owner sees it (times in epoch seconds). */
export interface PersonalToken {
  token_id: string;
  user_id: string;
  name: string;
  scope: string;
  created_at: number;
  expires_at: number;
  revoked: boolean;
}

export interface CreatedPersonalToken extends PersonalToken {
  secret: string;
}

export type Tags = Record<string, string>;

export interface LatestPoint {
  measure_type: string;
  tags: Tags;
  timestamp: string;
  value: number;
}

export interface LatestAnswer {
  experiment_id: number;
  latest: LatestPoint[];
}

export interface SeriesData {
  tags: Tags;
  timestamps_ms: number[];
  values: number[];
}

export interface SeriesAnswer {
  measure: string;
  from: string | null;
  to: string | null;
  series: SeriesData[];
}

export type Bucket = { start: string; group?: string | null } & Record<string, number | string | null | undefined>;

export interface StatsAnswer {
  measure: string;
  from: string | null;
  to: string | null;
  timeslice: string | null;
  tz: string;
  buckets: Bucket[];
}

export interface BoxplotBox {
  measure: string;
  /** With `group_by`: the tag's value (null for series without the tag). */
  group?: string | null;
  count: number;
  min: number | null;
  p25: number | null;
  p50: number | null;
  p75: number | null;
  max: number | null;
}

export interface BoxplotAnswer {
  from: string | null;
  to: string | null;
  boxes: BoxplotBox[];
}

export type SourceKind = "fmd" | "prometheus";

/** How a source fares: history still loading, fetching fine, failing, turned off, or waiting
 * for its first fetch. */
export type SourceState = "loading" | "ok" | "failing" | "disabled" | "waiting";

/** A source MyMonit fetches measures from (its secret is write-only: never sent back). */
export interface Source {
  source_id: number;
  experiment_id: number;
  experiment: string;
  kind: SourceKind;
  url: string;
  interval_secs: number;
  enabled: boolean;
  /** Prometheus only: the metric names kept (a regular expression). */
  include: string | null;
  has_secret: boolean;
  created_at: string;
  state: SourceState;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  /** Consecutive failures. */
  failures: number;
  points_fetched: number;
  /** Seconds of the source's history still to load; 0 when caught up. */
  backlog: number;
  /** History loaded up to. */
  loaded_until: string | null;
  /** The source's first record. */
  history_from: string | null;
  next_fetch_at: string | null;
}

export type Outcome = "success" | "failure" | "denied";

export interface AuditRecord {
  seq: number;
  at_ns: number;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  target: unknown;
  status: number | null;
  outcome: Outcome;
  request_id: string | null;
  client: string | null;
  detail: unknown;
  prev_hash: string;
  hash: string;
}

export interface AuditPage {
  records: AuditRecord[];
  next_cursor: string | null;
}

export interface Verification {
  intact: boolean;
  records: number;
  head: string;
  first_bad: { seq: number; reason: string } | null;
}

/** One `event: measure` of the live stream. */
export interface LiveMeasure {
  measure_type: string;
  timestamp: string;
  experiment: string;
  value: number;
  tags?: Tags;
}

export type Comparison = ">" | ">=" | "<" | "<=";

/** Where an alert is: `firing` once its condition has held for the rule's `for`. */
export type AlertState = "inactive" | "pending" | "firing";

/** An alert rule as written: a threshold rule (`statistic`, `window`, `op`, `threshold`) or an
 * absence rule (`absent_for`). A PATCH takes any of these fields, and keeps the others. */
export interface RuleRequest {
  name?: string;
  measure?: string;
  tags?: Tags;
  statistic?: string;
  window?: string;
  op?: Comparison;
  threshold?: number;
  absent_for?: string;
  for?: string;
  interval?: string;
  /** `tag:KEY`; on PATCH, "" stops grouping (null would keep it). */
  group_by?: string;
  labels?: Record<string, string>;
  description?: string;
}

/** One alert of a rule: the rule's own, or one tag value's (`group`). */
export interface RuleAlert {
  group: string | null;
  state: AlertState;
  active_since: string | null;
  firing_since: string | null;
  value: number | null;
}

/** A rule as stored (durations written back as `5m`, `1h30m`, `0s`), with its alerts. */
export interface RuleView {
  rule_id: number;
  experiment_id: number;
  name: string;
  measure: string;
  tags: Tags | null;
  statistic: string | null;
  window: string | null;
  op: Comparison | null;
  threshold: number | null;
  absent_for: string | null;
  for: string | null;
  interval: string | null;
  group_by: string | null;
  labels: Record<string, string> | null;
  description: string | null;
  /** The worst of its alerts' states. */
  state: AlertState;
  last_value: number | null;
  last_evaluated_at: string | null;
  last_error: string | null;
  alerts: RuleAlert[];
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export type Transition = "pending" | "firing" | "resolved" | "cleared";

export interface AlertEvent {
  group: string | null;
  transition: Transition;
  at: string;
  value: number | null;
}

export interface AlertNotification {
  /** `alertmanager:URL` or `webhook:URL`. */
  receiver: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  created_at: string;
  done_at: string | null;
  last_error: string | null;
  body: unknown;
}

/** A rule's changes and its notifications' delivery log, newest first. */
export interface RuleHistory {
  events: AlertEvent[];
  notifications: AlertNotification[];
}
