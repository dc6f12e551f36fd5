// Ingest tokens: the credentials sources push measures with, scoped to experiments; the
// secret is shown once.

import { useState } from "preact/hooks";
import { CreateCard } from "../../components/admin";
import { Card, ConfirmDialog, CopyBlock, DataTable, Dialog, Field } from "../../components/ui";
import { useApi } from "../../hooks";
import { api } from "../../lib/api";
import { formatTime } from "../../lib/format";
import type { CreatedIngestToken, Experiment, IngestToken } from "../../lib/types";

export function IngestTokensTab() {
  const tokens = useApi<IngestToken[]>("/ingest-tokens");
  const experiments = useApi<Experiment[]>("/experiments");
  const [chosen, setChosen] = useState<string[]>([]);
  const [description, setDescription] = useState("");
  const [created, setCreated] = useState<CreatedIngestToken | null>(null);
  const [revoking, setRevoking] = useState<IngestToken | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const names = new Map((experiments.data ?? []).map((x) => [x.experiment_id, x.name]));
  return (
    <>
      <CreateCard
        title="Create an ingest token"
        submitLabel="Create token"
        intro={<p class="muted">Sources (devices, adapters, services) push measures with an ingest token, scoped to experiments.</p>}
        loadError={experiments.error}
        notice={done}
        onSubmit={() => setDone(null)}
        submit={() => {
          if (chosen.length === 0) throw new Error("Choose at least one experiment.");
          return api.post<CreatedIngestToken>("/ingest-tokens", { experiments: chosen, description: description.trim() });
        }}
        onCreated={(token) => {
          setCreated(token);
          setChosen([]);
          setDescription("");
          tokens.reload();
        }}
      >
        <fieldset class="checks">
          <legend>Experiments it may write to</legend>
          {(experiments.data ?? []).map((x) => (
            <label key={x.experiment_id} class="check">
              <input
                type="checkbox"
                checked={chosen.includes(x.name)}
                onChange={(e) => setChosen(e.currentTarget.checked ? [...chosen, x.name] : chosen.filter((n) => n !== x.name))}
              />
              {x.name}
            </label>
          ))}
          {experiments.data && experiments.data.length === 0 && <span class="muted">No experiments yet.</span>}
        </fieldset>
        <Field id="token-description" label="Description">
          <input id="token-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} placeholder="lab 1 sensor" />
        </Field>
      </CreateCard>
      <Card title="Ingest tokens">
        <DataTable
          fetched={tokens}
          empty="No ingest tokens yet."
          rowKey={(t) => t.token_id}
          rowClass={(t) => (t.revoked ? "dimmed" : undefined)}
          columns={[
            { header: "Token id", class: "mono", cell: (t) => t.token_id },
            { header: "Description", cell: (t) => t.description || <span class="muted">—</span> },
            { header: "Experiments", cell: (t) => t.experiment_ids.map((id) => names.get(id) ?? `#${id}`).join(", ") },
            { header: "Created by", class: "mono", cell: (t) => t.created_by ?? <span class="muted">shell</span> },
            { header: "Created", class: "nowrap", cell: (t) => formatTime(t.created_at * 1000, { seconds: false }) },
            {
              header: "State",
              cell: (t) => (t.revoked ? <span class="badge badge-bad">revoked</span> : <span class="badge badge-good">active</span>),
            },
          ]}
          actions={(t) =>
            !t.revoked && (
              <button type="button" class="btn btn-small btn-danger" onClick={() => setRevoking(t)}>
                Revoke<span class="sr-only"> {t.token_id}</span>
              </button>
            )
          }
        />
      </Card>
      {created && (
        <Dialog title="Ingest token created" onClose={() => setCreated(null)} wide>
          <p>
            Copy the secret now: it is shown <strong>this once</strong>. MyMonit keeps only a hash of it.
          </p>
          <CopyBlock text={created.token} label="Ingest token secret" />
          <p class="muted small">
            Send it as <code>Authorization: Bearer …</code> to <code>POST /api/v1/ingest</code>.
          </p>
          <div class="dialog-buttons">
            <button type="button" class="btn btn-primary" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </Dialog>
      )}
      {revoking && (
        <ConfirmDialog
          title="Revoke the ingest token?"
          confirmLabel="Revoke"
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.delete(`/ingest-tokens/${encodeURIComponent(revoking.token_id)}`);
            setDone(`Token ${revoking.token_id} revoked.`);
            tokens.reload();
          }}
        >
          <p>
            Sources using <code>{revoking.token_id}</code>
            {revoking.description ? ` (${revoking.description})` : ""} will be refused from now on.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}
