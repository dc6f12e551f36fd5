// The audit trail for auditors: filters, pages, the chain's verification, NDJSON export.

import { useState } from "preact/hooks";
import { Alert, Card, Empty, Field, Loading } from "../components/ui";
import { useApi, useTitle } from "../hooks";
import { api } from "../lib/api";
import { formatCount, formatTime, nsToMs } from "../lib/format";
import { auditExportPath, auditPath, type AuditFilters } from "../lib/query";
import { fromDatetimeLocal } from "../lib/timerange";
import type { AuditPage as AuditPageData, Verification } from "../lib/types";

const PAGE_SIZE = 100;
const COMMON_ACTIONS = [
  "auth.login",
  "server.start",
  "server.stop",
  "POST /api/v1/auth/session",
  "DELETE /api/v1/auth/session",
  "POST /api/v1/experiments",
  "POST /api/v1/users",
  "DELETE /api/v1/users/{user_id}",
  "POST /api/v1/associations",
  "POST /api/v1/ingest-tokens",
];

function compact(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "object" && Object.keys(value as object).length === 0) return "";
  return JSON.stringify(value);
}

export function AuditPage() {
  useTitle("Audit trail");
  const blank = { from: "", to: "", actor: "", action: "", outcome: "" as AuditFilters["outcome"], order: "desc" as AuditFilters["order"] };
  const [draft, setDraft] = useState(blank);
  const [filters, setFilters] = useState<AuditFilters>({ order: "desc" });
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [formError, setFormError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1];
  const page = useApi<AuditPageData>(auditPath(filters, PAGE_SIZE, cursor));
  const verify = useApi<Verification>("/audit/verify");

  const apply = (e: Event) => {
    e.preventDefault();
    const from = draft.from ? fromDatetimeLocal(draft.from) : null;
    const to = draft.to ? fromDatetimeLocal(draft.to) : null;
    if ((draft.from && from === null) || (draft.to && to === null)) {
      setFormError("Enter valid dates and times.");
      return;
    }
    if (from !== null && to !== null && from >= to) {
      setFormError("The start must be before the end.");
      return;
    }
    setFormError(null);
    setFilters({ from, to, actor: draft.actor, action: draft.action, outcome: draft.outcome, order: draft.order });
    setCursors([null]);
  };

  const records = page.data?.records ?? [];
  const firstSeq = records[0]?.seq;
  const lastSeq = records[records.length - 1]?.seq;

  return (
    <div class="page">
      <div class="page-head row">
        <div>
          <h1>Audit trail</h1>
          <p class="muted">Every call made with credentials, sign-ins and server events, linked by hashes. Users are named by id.</p>
        </div>
        <div class="head-actions">
          <a class="btn" href={api.url(auditExportPath(filters))} download="audit.ndjson">
            Export NDJSON
          </a>
        </div>
      </div>

      <section class={`verify ${verify.data ? (verify.data.intact ? "verify-ok" : "verify-bad") : ""}`} aria-label="Chain verification" aria-live="polite">
        {verify.loading && !verify.data && <Loading label="Verifying the chain…" />}
        <Alert message={verify.error} />
        {verify.data && (
          <>
            <div class="verify-title" id="chain-status">
              {verify.data.intact ? "✔ Chain valid" : `✖ Chain broken at record #${verify.data.first_bad?.seq ?? "?"}`}
            </div>
            <div class="verify-detail">
              {verify.data.intact
                ? `All ${formatCount(verify.data.records)} records fit the hash chain.`
                : `${verify.data.first_bad?.reason ?? "A record does not fit."} (${formatCount(verify.data.records)} records checked before it).`}{" "}
              <span class="muted">
                Head <code class="hash">{verify.data.head}</code>
              </span>
            </div>
            <button type="button" class="btn btn-small" onClick={verify.reload} disabled={verify.loading}>
              Verify again
            </button>
          </>
        )}
      </section>

      <Card title="Filters">
        <form class="filters" onSubmit={apply}>
          <Field id="audit-from" label="From">
            <input id="audit-from" type="datetime-local" value={draft.from} onInput={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
          </Field>
          <Field id="audit-to" label="To">
            <input id="audit-to" type="datetime-local" value={draft.to} onInput={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
          </Field>
          <Field id="audit-actor" label="Actor">
            <input id="audit-actor" value={draft.actor} placeholder="S001 or ingest-token:ID" onInput={(e) => setDraft({ ...draft, actor: e.currentTarget.value })} />
          </Field>
          <Field id="audit-action" label="Action">
            <input
              id="audit-action"
              list="audit-actions"
              value={draft.action}
              placeholder="auth.login"
              onInput={(e) => setDraft({ ...draft, action: e.currentTarget.value })}
            />
            <datalist id="audit-actions">
              {COMMON_ACTIONS.map((a) => (
                <option key={a} value={a} />
              ))}
            </datalist>
          </Field>
          <Field id="audit-outcome" label="Outcome">
            <select id="audit-outcome" value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.currentTarget.value as AuditFilters["outcome"] })}>
              <option value="">Any</option>
              <option value="success">Success</option>
              <option value="failure">Failure</option>
              <option value="denied">Denied</option>
            </select>
          </Field>
          <Field id="audit-order" label="Order">
            <select id="audit-order" value={draft.order} onChange={(e) => setDraft({ ...draft, order: e.currentTarget.value as AuditFilters["order"] })}>
              <option value="desc">Newest first</option>
              <option value="asc">Oldest first</option>
            </select>
          </Field>
          <div class="form-actions">
            <button type="submit" class="btn btn-primary">
              Apply filters
            </button>
            <button
              type="button"
              class="btn"
              onClick={() => {
                setDraft(blank);
                setFilters({ order: "desc" });
                setCursors([null]);
                setFormError(null);
              }}
            >
              Clear
            </button>
          </div>
        </form>
        <Alert message={formError} />
      </Card>

      <Card
        title="Records"
        actions={
          <div class="pager" role="group" aria-label="Pages">
            <button type="button" class="btn btn-small" disabled={cursors.length <= 1 || page.loading} onClick={() => setCursors(cursors.slice(0, -1))}>
              Previous page
            </button>
            <span class="muted small num">
              {records.length > 0 ? `#${firstSeq}–#${lastSeq}, ${filters.order === "desc" ? "newest" : "oldest"} first` : ""} · page {cursors.length}
            </span>
            <button
              type="button"
              class="btn btn-small"
              disabled={!page.data?.next_cursor || page.loading}
              onClick={() => page.data?.next_cursor && setCursors([...cursors, page.data.next_cursor])}
            >
              Next page
            </button>
          </div>
        }
      >
        <Alert message={page.error} />
        {page.loading && !page.data && <Loading />}
        {page.data && records.length === 0 && <Empty>No records match these filters.</Empty>}
        {records.length > 0 && (
          <div class="table-wrap">
            <table class="data audit-table" aria-busy={page.loading} id="audit-table">
              <thead>
                <tr>
                  <th scope="col" class="num">Seq</th>
                  <th scope="col">Time</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col" class="num">Status</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Client</th>
                  <th scope="col">Detail</th>
                  <th scope="col">Request id</th>
                </tr>
              </thead>
              <tbody>
                {records.map((r) => (
                  <tr key={r.seq} data-outcome={r.outcome} data-action={r.action}>
                    <td class="num">{r.seq}</td>
                    <td class="nowrap num">{formatTime(nsToMs(r.at_ns))}</td>
                    <td class="nowrap">
                      {r.actor_id ?? <span class="muted">—</span>}
                      {r.actor_role && <span class="muted small"> {r.actor_role}</span>}
                    </td>
                    <td class="mono action-cell">{breakAtSlashes(r.action)}</td>
                    <td class="mono small target-cell">{compact(r.target)}</td>
                    <td class="num">{r.status ?? ""}</td>
                    <td>
                      <span class={`badge outcome-${r.outcome}`}>{r.outcome}</span>
                    </td>
                    <td class="mono small">{r.client ?? ""}</td>
                    <td class="mono small detail-cell">{compact(r.detail)}</td>
                    <td class="mono small" title={r.request_id ?? undefined}>
                      {r.request_id ? `${r.request_id.slice(0, 8)}…` : ""}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </div>
  );
}

/** A route with line-break opportunities before each `/`, so long routes wrap between parts. */
function breakAtSlashes(text: string) {
  return text.split("/").map((part, index) =>
    index === 0 ? (
      part
    ) : (
      <>
        <wbr />/{part}
      </>
    ),
  );
}
