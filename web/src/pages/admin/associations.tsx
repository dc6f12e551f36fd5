// Associations: which scientist may read which experiment's measures.

import { useState } from "preact/hooks";
import { CreateCard } from "../../components/admin";
import { Card, ConfirmDialog, DataTable, Field } from "../../components/ui";
import { useApi } from "../../hooks";
import { api } from "../../lib/api";
import type { Association, Experiment, User } from "../../lib/types";

export function AssociationsTab() {
  const associations = useApi<Association[]>("/associations");
  const experiments = useApi<Experiment[]>("/experiments");
  const users = useApi<User[]>("/users");
  const scientists = (users.data ?? []).filter((u) => u.role === "SCIENTIST");
  const [experimentId, setExperimentId] = useState("");
  const [userId, setUserId] = useState("");
  const [removing, setRemoving] = useState<Association | null>(null);
  const [done, setDone] = useState<string | null>(null);
  return (
    <>
      <CreateCard
        title="Associate a scientist with an experiment"
        submitLabel="Associate"
        loadError={experiments.error ?? users.error}
        notice={done}
        onSubmit={() => setDone(null)}
        submit={async () => {
          if (!experimentId || !userId) throw new Error("Choose an experiment and a scientist.");
          await api.post("/associations", { experiment_id: Number(experimentId), user_id: userId });
          return { experimentId, userId };
        }}
        onCreated={(made) => {
          const x = experiments.data?.find((x) => String(x.experiment_id) === made.experimentId);
          setDone(`${made.userId} is associated with ${x?.name ?? `#${made.experimentId}`}.`);
          associations.reload();
        }}
      >
        <Field id="assoc-experiment" label="Experiment">
          <select id="assoc-experiment" value={experimentId} onChange={(e) => setExperimentId(e.currentTarget.value)} required>
            <option value="">Choose…</option>
            {(experiments.data ?? []).map((x) => (
              <option key={x.experiment_id} value={String(x.experiment_id)}>
                {x.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="assoc-user" label="Scientist">
          <select id="assoc-user" value={userId} onChange={(e) => setUserId(e.currentTarget.value)} required>
            <option value="">Choose…</option>
            {scientists.map((u) => (
              <option key={u.user_id} value={u.user_id}>
                {u.name ? `${u.name} (${u.user_id})` : u.user_id}
              </option>
            ))}
          </select>
        </Field>
      </CreateCard>
      <Card title="Associations">
        <DataTable
          id="associations-table"
          fetched={associations}
          empty="No associations yet."
          rowKey={(a) => `${a.experiment.experiment_id}/${a.user.user_id}`}
          columns={[
            { header: "Experiment", cell: (a) => a.experiment.name },
            { header: "Scientist", cell: (a) => a.user.name },
            { header: "Id", class: "mono", cell: (a) => a.user.user_id },
          ]}
          actions={(a) => (
            <button type="button" class="btn btn-small btn-danger" onClick={() => setRemoving(a)}>
              Remove<span class="sr-only"> {a.user.user_id} from {a.experiment.name}</span>
            </button>
          )}
        />
      </Card>
      {removing && (
        <ConfirmDialog
          title="Remove the association?"
          confirmLabel="Remove"
          danger
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            await api.delete(`/associations/${removing.experiment.experiment_id}/${encodeURIComponent(removing.user.user_id)}`);
            setDone(`${removing.user.user_id} no longer sees ${removing.experiment.name}.`);
            associations.reload();
          }}
        >
          <p>
            {removing.user.name || removing.user.user_id} will no longer see the measures of <strong>{removing.experiment.name}</strong>.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}
