// An experiment's alert rules on its dashboard: the list with each rule's state as the server
// evaluates it (refreshed, so that pending and firing show as they happen), the form that
// makes or changes a rule, its history with the delivery log of its notifications, and the
// histories the charts shade firing periods from.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { useApi, useInterval, type Fetched } from "../hooks";
import {
  FIELD_LABELS, HISTORY_LIMIT, OPS, RULES_POLL_MS, RULE_STATISTICS, STATE_BADGES, TRANSITION_BADGES, alertRulesPath, conditionSummary, emptyRuleForm,
  formOf, groupKey, historyPath, historySignature, isThreshold, parseLabels, parsePairs, perTagNote, receiverParts, ruleRequest, rulePatch,
  type RuleForm, type RuleKind,
} from "../lib/alerts";
import { ApiError, api } from "../lib/api";
import { tagKeys } from "../lib/bytag";
import { formatAgo, formatCount, formatNumber, formatTime } from "../lib/format";
import { shorten } from "../lib/sources";
import type { AlertEvent, AlertNotification, Comparison, LatestPoint, RuleHistory, RuleView } from "../lib/types";
import { FormDialog } from "./admin";
import { Card, ConfirmDialog, DataTable, Dialog, Field, Notice, type Column } from "./ui";

/** An experiment's rules, followed while the page is open; not asked again once refused
 * (403: the reader may not see measures' figures). */
export function useAlertRules(experimentId: number): Fetched<RuleView[]> {
  const rules = useApi<RuleView[]>(alertRulesPath(experimentId));
  const refused = rules.errorStatus === 403 || rules.errorStatus === 404;
  useInterval(rules.reload, refused ? null : RULES_POLL_MS);
  return rules;
}

/** The histories of the threshold rules, for the charts: each fetched again only when its
 * rule's alerts changed (a firing or a resolution shows there first). */
export function useRuleHistories(experimentId: number, rules: RuleView[] | undefined): ReadonlyMap<number, RuleHistory> {
  const [store, setStore] = useState<ReadonlyMap<number, { signature: string; history: RuleHistory }>>(() => new Map());
  const storeRef = useRef(store);
  storeRef.current = store;
  const wanted = (rules ?? []).filter(isThreshold).map((r) => ({ id: r.rule_id, signature: historySignature(r) }));
  const key = wanted.map((w) => w.signature).join("\n");
  useEffect(() => {
    const ids = new Set(wanted.map((w) => w.id));
    const keep = (map: ReadonlyMap<number, { signature: string; history: RuleHistory }>) => new Map([...map].filter(([id]) => ids.has(id)));
    if ([...storeRef.current.keys()].some((id) => !ids.has(id))) setStore(keep);
    const stale = wanted.filter((w) => storeRef.current.get(w.id)?.signature !== w.signature);
    if (stale.length === 0) return;
    const controller = new AbortController();
    Promise.all(
      stale.map((w) =>
        api.get<RuleHistory>(historyPath(experimentId, w.id), undefined, controller.signal).then(
          (history) => ({ ...w, history }),
          // A chart without its shading is no reason to interrupt anyone: the next change retries.
          () => null,
        ),
      ),
    ).then((found) => {
      if (controller.signal.aborted) return;
      setStore((prev) => {
        const next = keep(prev);
        for (const f of found) if (f) next.set(f.id, { signature: f.signature, history: f.history });
        return next;
      });
    });
    return () => controller.abort();
  }, [experimentId, key]);
  return useMemo(() => new Map([...store].map(([id, entry]) => [id, entry.history])), [store]);
}

function When({ at, now, ago }: { at: string | null; now: number; ago?: boolean }) {
  if (!at) return <span class="muted">never</span>;
  const ms = Date.parse(at);
  return (
    <time dateTime={at} title={formatTime(ms)}>
      {ago ? formatAgo(ms, now) : formatTime(ms)}
    </time>
  );
}

function lastValue(rule: RuleView, unit: string | undefined): string {
  if (rule.last_value === null) return "—";
  // An absence rule's value is the count of points it found.
  if (!isThreshold(rule)) return `${formatCount(rule.last_value)} point${rule.last_value === 1 ? "" : "s"}`;
  return `${formatNumber(rule.last_value)}${unit ? ` ${unit}` : ""}`;
}

function ruleColumns(now: number, units: Record<string, string>): Column<RuleView>[] {
  return [
    {
      header: "Name",
      class: "rule-name",
      title: (r) => r.description || undefined,
      cell: (r) => <strong>{r.name}</strong>,
    },
    { header: "Condition", class: "rule-condition", cell: (r) => conditionSummary(r) },
    { header: "Per tag", class: "nowrap", cell: (r) => perTagNote(r) ?? <span class="muted">—</span> },
    {
      header: "State",
      cell: (r) => (
        <>
          <span class={`${STATE_BADGES[r.state]} rule-state`} data-state={r.state}>
            {r.state}
          </span>
          {r.last_error && (
            <div class="error-text small" title={r.last_error}>
              {shorten(r.last_error, 80)}
            </div>
          )}
        </>
      ),
    },
    { header: "Last value", class: "num nowrap", cell: (r) => lastValue(r, units[r.measure]) },
    {
      header: "Last evaluated",
      class: "nowrap rule-evaluated",
      cell: (r) => <When at={r.last_evaluated_at} now={now} ago />,
    },
  ];
}

export interface AlertRulesCardProps {
  experimentId: number;
  rules: Fetched<RuleView[]>;
  /** The experiment's measure types, for the form's choice. */
  measures: string[];
  /** The experiment's latest points: the tag keys a rule may group by. */
  latest: LatestPoint[];
  units: Record<string, string>;
}

/** The rules of an experiment; nothing for a reader the server refuses them to. */
export function AlertRulesCard(props: AlertRulesCardProps) {
  const { experimentId, rules } = props;
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<RuleView | null>(null);
  const [deleting, setDeleting] = useState<RuleView | null>(null);
  const [viewing, setViewing] = useState<RuleView | null>(null);
  const [done, setDone] = useState<string | null>(null);
  if (rules.errorStatus === 403) return null;
  return (
    <Card
      title="Alert rules"
      id="alert-rules"
      actions={
        <>
          <span class="muted small">Refreshed every {RULES_POLL_MS / 1000} s</span>
          <button
            type="button"
            class="btn btn-small btn-primary"
            disabled={props.measures.length === 0}
            title={props.measures.length === 0 ? "The experiment has no measures to watch yet" : undefined}
            onClick={() => {
              setDone(null);
              setCreating(true);
            }}
          >
            New rule
          </button>
        </>
      }
    >
      <p class="muted small">
        MyMonit evaluates each rule at its interval. An alert is pending while its condition holds, and fires once it has held for the rule's
        "for"; firing and resolved alerts are sent to the receivers MyMonit is set up with. Charts show the thresholds as dashed lines and shade
        when a rule fired.
      </p>
      {done && <Notice kind="success">{done}</Notice>}
      <DataTable
        id="alert-rules-table"
        class="rules-table"
        fetched={rules}
        empty="No alert rules yet."
        rowKey={(r) => r.rule_id}
        rowClass={(r) => `rule-${r.state}`}
        columns={ruleColumns(Date.now(), props.units)}
        actions={(r) => (
          <>
            <button type="button" class="btn btn-small" onClick={() => setViewing(r)}>
              History<span class="sr-only"> of {r.name}</span>
            </button>
            <button
              type="button"
              class="btn btn-small"
              onClick={() => {
                setDone(null);
                setEditing(r);
              }}
            >
              Edit<span class="sr-only"> {r.name}</span>
            </button>
            <button
              type="button"
              class="btn btn-small btn-danger"
              onClick={() => {
                setDone(null);
                setDeleting(r);
              }}
            >
              Delete<span class="sr-only"> {r.name}</span>
            </button>
          </>
        )}
      />
      {creating && (
        <RuleDialog
          experimentId={experimentId}
          rule={null}
          measures={props.measures}
          latest={props.latest}
          onClose={() => setCreating(false)}
          onSaved={(r) => {
            setCreating(false);
            setDone(`Rule "${r.name}" created; its first evaluation follows shortly.`);
            rules.reload();
          }}
        />
      )}
      {editing && (
        <RuleDialog
          experimentId={experimentId}
          rule={editing}
          measures={props.measures}
          latest={props.latest}
          onClose={() => setEditing(null)}
          onSaved={(r) => {
            setEditing(null);
            setDone(`Rule "${r.name}" saved; its alerts start again from inactive.`);
            rules.reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete the alert rule?"
          confirmLabel="Delete"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.delete(alertRulesPath(experimentId, deleting.rule_id));
            setDone(`Rule "${deleting.name}" deleted.`);
            rules.reload();
          }}
        >
          <p>
            <strong>{deleting.name}</strong> ({conditionSummary(deleting)}) stops being evaluated, and its history goes with it.
            {deleting.state === "firing" && " Its firing alerts are not sent as resolved: receivers see them end when they stop hearing of them."}
          </p>
        </ConfirmDialog>
      )}
      {viewing && <HistoryDialog experimentId={experimentId} rule={viewing} onClose={() => setViewing(null)} />}
    </Card>
  );
}

/** A problem the server found in a field, named by the field's label. */
function refusal(err: unknown, mark: (field: string | null) => void): unknown {
  const field = err instanceof ApiError ? err.problem?.field : undefined;
  if (err instanceof ApiError && field && FIELD_LABELS[field]) {
    mark(field);
    return new Error(`${FIELD_LABELS[field]}: ${err.message}`);
  }
  return err;
}

function RuleDialog(props: {
  experimentId: number;
  /** Null: a new rule. */
  rule: RuleView | null;
  measures: string[];
  latest: LatestPoint[];
  onClose: () => void;
  onSaved: (rule: RuleView) => void;
}) {
  const { rule } = props;
  const [form, setForm] = useState<RuleForm>(() => (rule ? formOf(rule) : emptyRuleForm(props.measures[0] ?? "")));
  const [invalid, setInvalid] = useState<string | null>(null);
  const set =
    <K extends keyof RuleForm>(key: K) =>
    (e: Event) =>
      setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value as RuleForm[K] });
  const withCurrent = (options: string[], current: string) => (current && !options.includes(current) ? [...options, current] : options);
  const measures = withCurrent(props.measures, form.measure);
  const keys = withCurrent(tagKeys(props.latest, form.measure), form.groupBy);
  const statistics = RULE_STATISTICS.some((s) => s.id === form.statistic) ? RULE_STATISTICS : [...RULE_STATISTICS, { id: form.statistic, label: form.statistic }];
  const labels = parseLabels(form.labels);
  const tags = parsePairs(form.tags, "tags");
  const threshold = form.kind === "threshold";
  const id = rule ? "edit-rule" : "rule";
  const bad = (field: string) => (invalid === field ? true : undefined);

  return (
    <FormDialog
      title={rule ? `Edit ${rule.name}` : "New alert rule"}
      submitLabel={rule ? "Save" : "Create rule"}
      wide
      onClose={props.onClose}
      onSaved={props.onSaved}
      submit={() => {
        setInvalid(null);
        const path = alertRulesPath(props.experimentId, rule?.rule_id);
        let request: Promise<RuleView> | null;
        if (rule) {
          const check = rulePatch(rule, form);
          if (!check.ok) {
            setInvalid(check.field);
            throw new Error(check.error);
          }
          request = check.patch && api.patch<RuleView>(path, check.patch);
        } else {
          const check = ruleRequest(form);
          if (!check.ok) {
            setInvalid(check.field);
            throw new Error(check.error);
          }
          request = api.post<RuleView>(path, check.body);
        }
        return (
          request &&
          request.catch((err: unknown) => {
            throw refusal(err, setInvalid);
          })
        );
      }}
    >
      <div class="rule-fields">
        <Field id={`${id}-name`} label="Name">
          <input id={`${id}-name`} required maxLength={200} value={form.name} onInput={set("name")} aria-invalid={bad("name")} autoComplete="off" />
        </Field>
        <Field id={`${id}-measure`} label="Measure">
          <select id={`${id}-measure`} value={form.measure} onChange={set("measure")} aria-invalid={bad("measure")} required>
            {measures.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </Field>
        <Field id={`${id}-kind`} label="Kind" hint={threshold ? "A statistic over a trailing window against a bound." : "No point at all for a while."}>
          <select id={`${id}-kind`} value={form.kind} onChange={(e) => setForm({ ...form, kind: e.currentTarget.value as RuleKind })}>
            <option value="threshold">Threshold</option>
            <option value="absence">Absence</option>
          </select>
        </Field>
        {threshold ? (
          <>
            <Field id={`${id}-statistic`} label="Statistic">
              <select id={`${id}-statistic`} value={form.statistic} onChange={set("statistic")} aria-invalid={bad("statistic")}>
                {statistics.map((s) => (
                  <option key={s.id} value={s.id}>
                    {s.label}
                  </option>
                ))}
              </select>
            </Field>
            <Field id={`${id}-window`} label="Window" hint="The trailing span the statistic covers: 30s, 5m, 1h30m.">
              <input id={`${id}-window`} class="mono" required value={form.window} onInput={set("window")} aria-invalid={bad("window")} autoComplete="off" />
            </Field>
            <Field id={`${id}-op`} label="Comparison">
              <select id={`${id}-op`} value={form.op} onChange={(e) => setForm({ ...form, op: e.currentTarget.value as Comparison })} aria-invalid={bad("op")}>
                {OPS.map((op) => (
                  <option key={op} value={op}>
                    {op}
                  </option>
                ))}
              </select>
            </Field>
            <Field id={`${id}-threshold`} label="Threshold">
              <input
                id={`${id}-threshold`}
                type="number"
                step="any"
                required
                value={form.threshold}
                onInput={set("threshold")}
                aria-invalid={bad("threshold")}
              />
            </Field>
          </>
        ) : (
          <Field id={`${id}-absent-for`} label="Absent for" hint="How long without a single point: 10m, 1h.">
            <input
              id={`${id}-absent-for`}
              class="mono"
              required
              value={form.absentFor}
              onInput={set("absentFor")}
              aria-invalid={bad("absent_for")}
              autoComplete="off"
            />
          </Field>
        )}
        <Field id={`${id}-for`} label="For" hint="How long the condition holds before the alert fires; 0s: at once.">
          <input id={`${id}-for`} class="mono" value={form.for} onInput={set("for")} aria-invalid={bad("for")} autoComplete="off" />
        </Field>
        <Field id={`${id}-interval`} label="Interval" hint="Time between evaluations, at least 1s.">
          <input id={`${id}-interval`} class="mono" value={form.interval} onInput={set("interval")} aria-invalid={bad("interval")} autoComplete="off" />
        </Field>
        <Field id={`${id}-group-by`} label="Group by tag" hint="One alert per value of the tag; none: one for the rule.">
          <select id={`${id}-group-by`} value={form.groupBy} onChange={set("groupBy")} aria-invalid={bad("group_by")}>
            <option value="">None</option>
            {keys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </Field>
        <Field
          id={`${id}-tags`}
          label="Only series tagged"
          hint={tags.ok ? "Blank: every series. host=a, site=b" : <span class="field-error">{tags.error}</span>}
        >
          <input
            id={`${id}-tags`}
            class="mono"
            value={form.tags}
            onInput={set("tags")}
            aria-invalid={!tags.ok || bad("tags")}
            placeholder="host=a"
            autoComplete="off"
          />
        </Field>
        <Field
          id={`${id}-labels`}
          label="Labels"
          hint={labels.ok ? "Added to the alert: severity=page, team=lab" : <span class="field-error">{labels.error}</span>}
        >
          <input
            id={`${id}-labels`}
            class="mono"
            value={form.labels}
            onInput={set("labels")}
            aria-invalid={!labels.ok || bad("labels")}
            placeholder="severity=page"
            autoComplete="off"
          />
        </Field>
        <div class="rule-wide">
          <Field
            id={`${id}-description`}
            label="Description"
            hint={
              <>
                Optional. <code>{"{{ $value }}"}</code>, <code>{"{{ $threshold }}"}</code> and <code>{"{{ $labels.KEY }}"}</code> are filled in.
              </>
            }
          >
            <textarea id={`${id}-description`} rows={2} maxLength={2000} value={form.description} onInput={set("description")} aria-invalid={bad("description")} />
          </Field>
        </div>
      </div>
      {rule && <p class="muted small">Saving starts the rule's alerts again from inactive.</p>}
    </FormDialog>
  );
}

const NOTIFICATION_BADGES: Record<AlertNotification["status"], string> = {
  delivered: "badge badge-good",
  pending: "badge badge-info",
  failed: "badge badge-bad",
};

function HistoryDialog(props: { experimentId: number; rule: RuleView; onClose: () => void }) {
  const { rule } = props;
  const history = useApi<RuleHistory>(historyPath(props.experimentId, rule.rule_id));
  const key = groupKey(rule.group_by);
  const now = Date.now();
  const events = history.data?.events.map((e, i) => ({ ...e, i }));
  const notifications = history.data?.notifications.map((n, i) => ({ ...n, i }));
  const eventColumns: Column<AlertEvent & { i: number }>[] = [
    { header: "When", class: "nowrap", cell: (e) => <When at={e.at} now={now} /> },
    ...(key ? [{ header: key, cell: (e: AlertEvent) => e.group ?? <span class="muted">(none)</span> }] : []),
    { header: "Change", cell: (e) => <span class={TRANSITION_BADGES[e.transition]}>{e.transition}</span> },
    { header: "Value", class: "num", cell: (e) => formatNumber(e.value) },
  ];
  const notificationColumns: Column<AlertNotification & { i: number }>[] = [
    { header: "Made", class: "nowrap", cell: (n) => <When at={n.created_at} now={now} /> },
    {
      header: "Receiver",
      class: "url-cell",
      title: (n) => n.receiver,
      cell: (n) => {
        const { kind, address } = receiverParts(n.receiver);
        return (
          <>
            {kind && <span class="muted">{kind} </span>}
            <span class="mono">{shorten(address, 60)}</span>
          </>
        );
      },
    },
    { header: "Status", cell: (n) => <span class={NOTIFICATION_BADGES[n.status] ?? "badge"}>{n.status}</span> },
    { header: "Attempts", class: "num", cell: (n) => formatCount(n.attempts) },
    { header: "Done", class: "nowrap", cell: (n) => (n.done_at ? <When at={n.done_at} now={now} /> : <span class="muted">—</span>) },
    {
      header: "Last error",
      class: "error-cell",
      title: (n) => n.last_error ?? undefined,
      cell: (n) => (n.last_error ? <span class="error-text">{shorten(n.last_error, 80)}</span> : <span class="muted">—</span>),
    },
    {
      header: "Sent",
      cell: (n) => (
        <details class="rule-body">
          <summary>Body</summary>
          <pre>{JSON.stringify(n.body, null, 2)}</pre>
        </details>
      ),
    },
  ];
  return (
    <Dialog title={`History of ${rule.name}`} onClose={props.onClose} wide>
      <div class="rule-history" data-state={history.loading ? "loading" : history.error ? "error" : "ready"}>
        <p class="muted small">
          {conditionSummary(rule)}. The latest {formatCount(HISTORY_LIMIT)} changes and notifications, newest first.
        </p>
        <h3 id="rule-events-title">Changes</h3>
        <DataTable
          id="rule-events-table"
          fetched={{ data: events, error: history.error, loading: history.loading }}
          empty="No changes yet: the rule has not been pending or firing."
          rowKey={(e) => e.i}
          columns={eventColumns}
        />
        <h3 id="rule-notifications-title">Notifications</h3>
        <DataTable
          id="rule-notifications-table"
          fetched={{ data: notifications, error: null, loading: history.loading }}
          empty="No notifications: none were sent for this rule, or MyMonit has no receivers set up."
          rowKey={(n) => n.i}
          columns={notificationColumns}
        />
      </div>
      <div class="dialog-buttons">
        <button type="button" class="btn" onClick={props.onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}
