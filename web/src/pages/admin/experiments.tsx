// Experiments: create, rename, and whether writes through the InfluxDB API may create
// measure types in them.

import { useState } from "preact/hooks";
import { CreateCard, FormDialog } from "../../components/admin";
import { Alert, Card, DataTable, Field } from "../../components/ui";
import { useAction, useApi } from "../../hooks";
import { api } from "../../lib/api";
import type { Experiment, IngestSettings } from "../../lib/types";

export function ExperimentsTab() {
  const experiments = useApi<Experiment[]>("/experiments");
  const [name, setName] = useState("");
  const [renaming, setRenaming] = useState<Experiment | null>(null);
  const [configuring, setConfiguring] = useState<{ experiment: Experiment; settings: IngestSettings } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const settings = useAction();
  return (
    <>
      <CreateCard
        title="Create an experiment"
        submitLabel="Create"
        notice={done}
        onSubmit={() => setDone(null)}
        submit={() => api.post<Experiment>("/experiments", { name: name.trim() })}
        onCreated={(created) => {
          setName("");
          setDone(`Experiment "${created.name}" created (#${created.experiment_id}).`);
          experiments.reload();
        }}
      >
        <Field id="new-experiment-name" label="Name" hint="Unique, for example device-vibrations.">
          <input id="new-experiment-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} autoComplete="off" />
        </Field>
      </CreateCard>
      <Card title="Experiments">
        <Alert message={settings.error} />
        <DataTable
          id="experiments-table"
          fetched={experiments}
          empty="No experiments yet."
          rowKey={(x) => x.experiment_id}
          columns={[
            { header: "Id", class: "num", cell: (x) => x.experiment_id },
            { header: "Name", cell: (x) => x.name },
          ]}
          actions={(x) => (
            <>
              <button type="button" class="btn btn-small" onClick={() => setRenaming(x)}>
                Rename<span class="sr-only"> {x.name}</span>
              </button>
              <button
                type="button"
                class="btn btn-small"
                disabled={settings.pending}
                onClick={async () => {
                  setDone(null);
                  const current = await settings.run(() => api.get<IngestSettings>(`/experiments/${x.experiment_id}/ingest-settings`));
                  if (current) setConfiguring({ experiment: x, settings: current });
                }}
              >
                Ingest settings<span class="sr-only"> of {x.name}</span>
              </button>
            </>
          )}
        />
      </Card>
      {renaming && (
        <RenameExperiment
          experiment={renaming}
          onClose={() => setRenaming(null)}
          onSaved={(x) => {
            setRenaming(null);
            setDone(`Experiment #${x.experiment_id} renamed to "${x.name}".`);
            experiments.reload();
          }}
        />
      )}
      {configuring && (
        <ExperimentIngestSettings
          experiment={configuring.experiment}
          settings={configuring.settings}
          onClose={() => setConfiguring(null)}
          onSaved={(s) => {
            const name = configuring.experiment.name;
            setConfiguring(null);
            setDone(
              s.create_measure_types
                ? `Writes through the InfluxDB API may now create measure types in "${name}".`
                : `Writes through the InfluxDB API no longer create measure types in "${name}".`,
            );
          }}
        />
      )}
    </>
  );
}

function RenameExperiment(props: { experiment: Experiment; onClose: () => void; onSaved: (x: Experiment) => void }) {
  const [name, setName] = useState(props.experiment.name);
  return (
    <FormDialog
      title={`Rename ${props.experiment.name}`}
      submitLabel="Rename"
      onClose={props.onClose}
      onSaved={props.onSaved}
      submit={() => api.patch<Experiment>(`/experiments/${props.experiment.experiment_id}`, { name: name.trim() })}
    >
      <Field id="rename-experiment" label="New name">
        <input id="rename-experiment" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
    </FormDialog>
  );
}

function ExperimentIngestSettings(props: {
  experiment: Experiment;
  settings: IngestSettings;
  onClose: () => void;
  onSaved: (s: IngestSettings) => void;
}) {
  const [createTypes, setCreateTypes] = useState(props.settings.create_measure_types);
  return (
    <FormDialog
      title={`Ingest settings of ${props.experiment.name}`}
      submitLabel="Save"
      onClose={props.onClose}
      onSaved={props.onSaved}
      submit={() =>
        createTypes === props.settings.create_measure_types
          ? null
          : api.put<IngestSettings>(`/experiments/${props.experiment.experiment_id}/ingest-settings`, { create_measure_types: createTypes })
      }
    >
      <div class="field">
        <label class="check">
          <input
            id="ingest-create-types"
            type="checkbox"
            checked={createTypes}
            onChange={(e) => setCreateTypes(e.currentTarget.checked)}
            aria-describedby="ingest-create-types-hint"
          />
          Writes through the InfluxDB API may create measure types
        </label>
        <div class="hint" id="ingest-create-types-hint">
          Writes through the InfluxDB-compatible API (<code>/write</code>, <code>/api/v2/write</code>, for example from Telegraf) may create
          the measure types they name. Off by default: their lines are refused with the reason.
        </div>
      </div>
    </FormDialog>
  );
}
