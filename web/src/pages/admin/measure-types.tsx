// Measure types: the units measures are taken in, shared by every experiment.

import { useState } from "preact/hooks";
import { CreateCard } from "../../components/admin";
import { Card, DataTable, Field } from "../../components/ui";
import { useApi } from "../../hooks";
import { api } from "../../lib/api";
import type { MeasureType } from "../../lib/types";

export function MeasureTypesTab() {
  const types = useApi<MeasureType[]>("/measure-types");
  const empty = { name: "", symbol: "", quantity: "" };
  const [form, setForm] = useState(empty);
  const [done, setDone] = useState<string | null>(null);
  const set = (key: keyof typeof empty) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <>
      <CreateCard
        title="Create a measure type"
        submitLabel="Create measure type"
        notice={done}
        onSubmit={() => setDone(null)}
        submit={() => api.post<MeasureType>("/measure-types", form)}
        onCreated={(created) => {
          setForm(empty);
          setDone(`Measure type "${created.name}" created.`);
          types.reload();
        }}
      >
        <Field id="mt-name" label="Name">
          <input id="mt-name" required value={form.name} onInput={set("name")} placeholder="kelvin" />
        </Field>
        <Field id="mt-symbol" label="Symbol">
          <input id="mt-symbol" required value={form.symbol} onInput={set("symbol")} placeholder="K" />
        </Field>
        <Field id="mt-quantity" label="Quantity">
          <input id="mt-quantity" required value={form.quantity} onInput={set("quantity")} placeholder="thermodynamic temperature" />
        </Field>
      </CreateCard>
      <Card title="Measure types">
        <DataTable
          fetched={types}
          empty="No measure types yet."
          rowKey={(t) => t.measure_type_id}
          columns={[
            { header: "Id", class: "num", cell: (t) => t.measure_type_id },
            { header: "Name", cell: (t) => t.name },
            { header: "Symbol", cell: (t) => t.symbol },
            { header: "Quantity", cell: (t) => t.quantity },
          ]}
        />
      </Card>
    </>
  );
}
