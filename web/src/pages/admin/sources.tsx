// Sources: the dashboards and metrics endpoints MyMonit fetches measures from itself. The
// server checks a source when it is added or its URL or secret changes, and says what is
// wrong; the list refreshes while the tab is open, as histories load and fetches fail.

import { useState } from "preact/hooks";
import { CreateCard, FormDialog } from "../../components/admin";
import { sourceColumns } from "../../components/sources";
import { Alert, Card, ConfirmDialog, DataTable, Field, Notice } from "../../components/ui";
import { useAction, useApi, useInterval } from "../../hooks";
import { api } from "../../lib/api";
import {
  EMPTY_SOURCE_FORM, MAX_INTERVAL_SECS, SOURCES_POLL_MS, SOURCE_KINDS, checkNewSource, editOf, kindOf, sourcePatch, sourcesPath,
  type SourceForm,
} from "../../lib/sources";
import type { Experiment, Source, SourceKind } from "../../lib/types";

export function SourcesTab() {
  const sources = useApi<Source[]>(sourcesPath());
  const experiments = useApi<Experiment[]>("/experiments");
  useInterval(sources.reload, SOURCES_POLL_MS);
  const [form, setForm] = useState<SourceForm>(EMPTY_SOURCE_FORM);
  const [editing, setEditing] = useState<Source | null>(null);
  const [deleting, setDeleting] = useState<Source | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const toggle = useAction();
  const set = (key: keyof SourceForm) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  const kind = kindOf(form.kind);
  return (
    <>
      <CreateCard
        title="Add a source"
        submitLabel="Add source"
        busyLabel="Checking the source…"
        layout="grid"
        intro={<p class="muted">MyMonit fetches the measures of these sources itself, at each interval. It checks a source as it is added.</p>}
        loadError={experiments.error}
        onSubmit={() => setDone(null)}
        submit={() => {
          const check = checkNewSource(form);
          if (!check.ok) throw new Error(check.error);
          return api.post<Source>("/sources", check.body);
        }}
        onCreated={(s) => {
          // The next source is often of the same experiment and kind.
          setForm({ ...EMPTY_SOURCE_FORM, experimentId: form.experimentId, kind: form.kind });
          setDone(`Source #${s.source_id} added: ${s.url} for ${s.experiment}.`);
          sources.reload();
        }}
      >
        <Field id="source-experiment" label="Experiment">
          <select id="source-experiment" value={form.experimentId} onChange={set("experimentId")} required>
            <option value="">Choose…</option>
            {(experiments.data ?? []).map((x) => (
              <option key={x.experiment_id} value={String(x.experiment_id)}>
                {x.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="source-kind" label="Kind" hint={kind.hint}>
          <select id="source-kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: e.currentTarget.value as SourceKind })}>
            {SOURCE_KINDS.map((k) => (
              <option key={k.id} value={k.id}>
                {k.label}
              </option>
            ))}
          </select>
        </Field>
        <Field id="source-url" label="URL">
          <input id="source-url" type="url" required value={form.url} onInput={set("url")} placeholder={kind.placeholder} autoComplete="off" />
        </Field>
        <Field id="source-secret" label="Secret" hint={kind.secretHint}>
          <input
            id="source-secret"
            type="password"
            required={form.kind === "fmd"}
            value={form.secret}
            onInput={set("secret")}
            autoComplete="new-password"
          />
        </Field>
        <Field id="source-interval" label="Interval (seconds)" hint={`1 to ${MAX_INTERVAL_SECS}.`}>
          <input id="source-interval" type="number" min={1} max={MAX_INTERVAL_SECS} step={1} required value={form.interval} onInput={set("interval")} />
        </Field>
        {form.kind === "prometheus" && (
          <Field id="source-include" label="Include" hint="Optional: keep only the metrics whose name matches this regular expression.">
            <input id="source-include" class="mono" value={form.include} onInput={set("include")} placeholder="^http_" autoComplete="off" />
          </Field>
        )}
      </CreateCard>
      <Card title="Sources" actions={<span class="muted small">Refreshed every {SOURCES_POLL_MS / 1000} s</span>}>
        {done && <Notice kind="success">{done}</Notice>}
        <Alert message={toggle.error} />
        <DataTable
          id="sources-table"
          fetched={sources}
          empty="No sources yet."
          rowKey={(s) => s.source_id}
          rowClass={(s) => (s.enabled ? undefined : "dimmed")}
          columns={sourceColumns(Date.now(), true)}
          actions={(s) => (
            <>
              <button type="button" class="btn btn-small" onClick={() => setEditing(s)}>
                Edit<span class="sr-only"> {s.url}</span>
              </button>
              <button
                type="button"
                class="btn btn-small"
                disabled={toggle.pending}
                onClick={async () => {
                  setDone(null);
                  const saved = await toggle.run(() => api.patch<Source>(`/sources/${s.source_id}`, { enabled: !s.enabled }));
                  if (saved) {
                    setDone(`Source #${saved.source_id} ${saved.enabled ? "enabled" : "disabled"}.`);
                    sources.reload();
                  }
                }}
              >
                {s.enabled ? "Disable" : "Enable"}
                <span class="sr-only"> {s.url}</span>
              </button>
              <button type="button" class="btn btn-small btn-danger" onClick={() => setDeleting(s)}>
                Delete<span class="sr-only"> {s.url}</span>
              </button>
            </>
          )}
        />
      </Card>
      {editing && (
        <EditSource
          source={editing}
          onClose={() => setEditing(null)}
          onSaved={(s) => {
            setEditing(null);
            setDone(`Source #${s.source_id} updated.`);
            sources.reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete the source?"
          confirmLabel="Delete"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.delete(`/sources/${deleting.source_id}`);
            setDone(`Source #${deleting.source_id} deleted; the points it fetched stay.`);
            sources.reload();
          }}
        >
          <p>
            MyMonit stops fetching <code>{deleting.url}</code> for <strong>{deleting.experiment}</strong>. The points already fetched stay
            in the experiment.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function EditSource(props: { source: Source; onClose: () => void; onSaved: (s: Source) => void }) {
  const { source } = props;
  const [edit, setEdit] = useState(editOf(source));
  const set = (key: "url" | "secret" | "interval" | "include") => (e: Event) => setEdit({ ...edit, [key]: (e.currentTarget as HTMLInputElement).value });
  const kind = kindOf(source.kind);
  return (
    <FormDialog
      title={`Edit source #${source.source_id}`}
      submitLabel="Save"
      wide
      onClose={props.onClose}
      onSaved={props.onSaved}
      submit={() => {
        const check = sourcePatch(source, edit);
        if (!check.ok) throw new Error(check.error);
        return check.patch && api.patch<Source>(`/sources/${source.source_id}`, check.patch);
      }}
    >
      <p class="muted small">
        {kind.label} source of <strong>{source.experiment}</strong>. A changed URL or secret is checked again.
      </p>
      <Field id="edit-source-url" label="URL">
        <input id="edit-source-url" type="url" required value={edit.url} onInput={set("url")} autoComplete="off" />
      </Field>
      <Field
        id="edit-source-secret"
        label="New secret"
        hint={source.has_secret ? "Blank: keep the current one." : `Blank: none. ${kind.secretHint}`}
      >
        <input id="edit-source-secret" type="password" value={edit.secret} onInput={set("secret")} autoComplete="new-password" />
      </Field>
      <Field id="edit-source-interval" label="Interval (seconds)" hint={`1 to ${MAX_INTERVAL_SECS}.`}>
        <input id="edit-source-interval" type="number" min={1} max={MAX_INTERVAL_SECS} step={1} required value={edit.interval} onInput={set("interval")} />
      </Field>
      {source.kind === "prometheus" && (
        <Field id="edit-source-include" label="Include" hint="Blank: keep every metric.">
          <input id="edit-source-include" class="mono" value={edit.include} onInput={set("include")} placeholder="^http_" autoComplete="off" />
        </Field>
      )}
      <div class="field">
        <label class="check">
          <input id="edit-source-enabled" type="checkbox" checked={edit.enabled} onChange={(e) => setEdit({ ...edit, enabled: e.currentTarget.checked })} />
          Enabled
        </label>
      </div>
    </FormDialog>
  );
}
