// Admin pages: users, experiments (and how they take writes), associations, measure types and
// ingest tokens.

import { useState } from "preact/hooks";
import { Alert, Card, ConfirmDialog, CopyBlock, Dialog, Field, Link, ListOf, Notice } from "../components/ui";
import { useAction, useApi, useSession, useTitle } from "../hooks";
import { api } from "../lib/api";
import { formatTime } from "../lib/format";
import { ADMIN_TABS, type AdminTab } from "../lib/router";
import type { Association, CreatedIngestToken, Experiment, IngestSettings, IngestToken, MeasureType, Role, User } from "../lib/types";

const ROLES: Role[] = ["SCIENTIST", "ADMIN", "AUDITOR"];

export function AdminPage({ tab }: { tab: AdminTab }) {
  const label = ADMIN_TABS.find((t) => t.id === tab)!.label;
  useTitle(`Admin · ${label}`);
  return (
    <div class="page">
      <div class="page-head">
        <h1>Admin</h1>
      </div>
      <nav class="tabs" aria-label="Admin sections">
        {ADMIN_TABS.map((t) => (
          <Link key={t.id} href={`/admin/${t.id}`} class="tab" aria-current={t.id === tab ? "page" : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      {tab === "users" && <UsersTab />}
      {tab === "experiments" && <ExperimentsTab />}
      {tab === "associations" && <AssociationsTab />}
      {tab === "measure-types" && <MeasureTypesTab />}
      {tab === "ingest-tokens" && <IngestTokensTab />}
    </div>
  );
}

// ---------------------------------------------------------------- users

function UsersTab() {
  const { user: me } = useSession();
  const users = useApi<User[]>("/users");
  const [editing, setEditing] = useState<User | null>(null);
  const [erasing, setErasing] = useState<User | null>(null);
  const [done, setDone] = useState<string | null>(null);
  return (
    <>
      <CreateUser
        onCreated={(u) => {
          setDone(`User ${u.user_id} created.`);
          users.reload();
        }}
      />
      <Card title="Users">
        {done && <Notice kind="success">{done}</Notice>}
        <ListOf fetched={users} empty="No users yet.">
          {(rows) => (
            <table class="data">
              <thead>
                <tr>
                  <th scope="col">Id</th>
                  <th scope="col">Name</th>
                  <th scope="col">Username</th>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((u) => (
                  <tr key={u.user_id}>
                    <td class="mono">{u.user_id}</td>
                    <td>{u.name}</td>
                    <td>{u.username}</td>
                    <td>{u.email}</td>
                    <td>
                      <span class={`role role-${u.role.toLowerCase()}`}>{u.role}</span>
                    </td>
                    <td class="actions">
                      <button type="button" class="btn btn-small" onClick={() => setEditing(u)}>
                        Edit<span class="sr-only"> {u.user_id}</span>
                      </button>
                      <button
                        type="button"
                        class="btn btn-small btn-danger"
                        disabled={u.user_id === me.user_id}
                        title={u.user_id === me.user_id ? "You cannot erase your own account" : undefined}
                        onClick={() => setErasing(u)}
                      >
                        Erase<span class="sr-only"> {u.user_id}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </ListOf>
      </Card>
      {editing && (
        <EditUser
          user={editing}
          self={editing.user_id === me.user_id}
          onClose={() => setEditing(null)}
          onSaved={(u) => {
            setEditing(null);
            setDone(`User ${u.user_id} updated.`);
            users.reload();
          }}
        />
      )}
      {erasing && (
        <ConfirmDialog
          title={`Erase ${erasing.user_id}?`}
          confirmLabel="Erase"
          danger
          onClose={() => setErasing(null)}
          onConfirm={async () => {
            await api.delete(`/users/${encodeURIComponent(erasing.user_id)}`);
            setDone(`User ${erasing.user_id} erased.`);
            users.reload();
          }}
        >
          <p>
            This removes the name, username, email and credentials of <strong>{erasing.name || erasing.user_id}</strong> (GDPR
            erasure). The id {erasing.user_id} is kept so the audit trail still holds together. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function CreateUser({ onCreated }: { onCreated: (u: User) => void }) {
  const empty = { role: "SCIENTIST" as Role, user_id: "", name: "", username: "", email: "", password: "" };
  const [form, setForm] = useState(empty);
  const action = useAction();
  const set = (key: keyof typeof empty) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <Card title="Create a user">
      <form
        class="form-grid"
        onSubmit={async (e) => {
          e.preventDefault();
          const body = { ...form, password: form.password || undefined };
          const created = await action.run(() => api.post<User>("/users", body));
          if (created) {
            setForm(empty);
            onCreated(created);
          }
        }}
      >
        <Field id="new-user-role" label="Role">
          <select id="new-user-role" value={form.role} onChange={set("role")}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field id="new-user-id" label="User id">
          <input id="new-user-id" required value={form.user_id} onInput={set("user_id")} placeholder="S003" autoComplete="off" />
        </Field>
        <Field id="new-user-name" label="Name">
          <input id="new-user-name" required value={form.name} onInput={set("name")} autoComplete="off" />
        </Field>
        <Field id="new-user-username" label="Username">
          <input id="new-user-username" required value={form.username} onInput={set("username")} autoComplete="off" autoCapitalize="none" />
        </Field>
        <Field id="new-user-email" label="Email">
          <input id="new-user-email" type="email" required value={form.email} onInput={set("email")} autoComplete="off" />
        </Field>
        <Field id="new-user-password" label="Password" hint="Optional: without one the user signs in through an external identity provider. At least 12 characters, hard to guess, without their name, username or email.">
          <input id="new-user-password" type="password" value={form.password} onInput={set("password")} autoComplete="new-password" />
        </Field>
        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Create user
          </button>
        </div>
        <Alert message={action.error} />
      </form>
    </Card>
  );
}

function EditUser(props: { user: User; self: boolean; onClose: () => void; onSaved: (u: User) => void }) {
  const [form, setForm] = useState({ name: props.user.name, username: props.user.username, email: props.user.email, role: props.user.role });
  const action = useAction();
  const set = (key: keyof typeof form) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <Dialog title={`Edit ${props.user.user_id}`} onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const patch: Record<string, string> = {};
          (Object.keys(form) as (keyof typeof form)[]).forEach((k) => {
            if (form[k] !== props.user[k]) patch[k] = form[k];
          });
          if (Object.keys(patch).length === 0) {
            props.onClose();
            return;
          }
          const saved = await action.run(() => api.patch<User>(`/users/${encodeURIComponent(props.user.user_id)}`, patch));
          if (saved) props.onSaved(saved);
        }}
      >
        <Field id="edit-user-name" label="Name">
          <input id="edit-user-name" required value={form.name} onInput={set("name")} />
        </Field>
        <Field id="edit-user-username" label="Username">
          <input id="edit-user-username" required value={form.username} onInput={set("username")} autoCapitalize="none" />
        </Field>
        <Field id="edit-user-email" label="Email">
          <input id="edit-user-email" type="email" required value={form.email} onInput={set("email")} />
        </Field>
        <Field id="edit-user-role" label="Role" hint={props.self ? "You cannot change your own role." : undefined}>
          <select id="edit-user-role" value={form.role} onChange={set("role")} disabled={props.self}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Alert message={action.error} />
        <div class="dialog-buttons">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------- experiments

function ExperimentsTab() {
  const experiments = useApi<Experiment[]>("/experiments");
  const [name, setName] = useState("");
  const [renaming, setRenaming] = useState<Experiment | null>(null);
  const [configuring, setConfiguring] = useState<{ experiment: Experiment; settings: IngestSettings } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const create = useAction();
  const settings = useAction();
  return (
    <>
      <Card title="Create an experiment">
        <form
          class="inline-form"
          onSubmit={async (e) => {
            e.preventDefault();
            setDone(null);
            const created = await create.run(() => api.post<Experiment>("/experiments", { name: name.trim() }));
            if (created) {
              setName("");
              setDone(`Experiment "${created.name}" created (#${created.experiment_id}).`);
              experiments.reload();
            }
          }}
        >
          <Field id="new-experiment-name" label="Name" hint="Unique, for example device-vibrations.">
            <input id="new-experiment-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} autoComplete="off" />
          </Field>
          <button type="submit" class="btn btn-primary" disabled={create.pending}>
            Create
          </button>
        </form>
        <Alert message={create.error} />
        {done && <Notice kind="success">{done}</Notice>}
      </Card>
      <Card title="Experiments">
        <Alert message={settings.error} />
        <ListOf fetched={experiments} empty="No experiments yet.">
          {(rows) => (
            <table class="data" id="experiments-table">
              <thead>
                <tr>
                  <th scope="col" class="num">Id</th>
                  <th scope="col">Name</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((x) => (
                  <tr key={x.experiment_id}>
                    <td class="num">{x.experiment_id}</td>
                    <td>{x.name}</td>
                    <td class="actions">
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
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </ListOf>
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
  const action = useAction();
  return (
    <Dialog title={`Rename ${props.experiment.name}`} onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const saved = await action.run(() => api.patch<Experiment>(`/experiments/${props.experiment.experiment_id}`, { name: name.trim() }));
          if (saved) props.onSaved(saved);
        }}
      >
        <Field id="rename-experiment" label="New name">
          <input id="rename-experiment" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Alert message={action.error} />
        <div class="dialog-buttons">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Rename
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ExperimentIngestSettings(props: {
  experiment: Experiment;
  settings: IngestSettings;
  onClose: () => void;
  onSaved: (s: IngestSettings) => void;
}) {
  const [createTypes, setCreateTypes] = useState(props.settings.create_measure_types);
  const action = useAction();
  return (
    <Dialog title={`Ingest settings of ${props.experiment.name}`} onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (createTypes === props.settings.create_measure_types) {
            props.onClose();
            return;
          }
          const saved = await action.run(() =>
            api.put<IngestSettings>(`/experiments/${props.experiment.experiment_id}/ingest-settings`, { create_measure_types: createTypes }),
          );
          if (saved) props.onSaved(saved);
        }}
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
        <Alert message={action.error} />
        <div class="dialog-buttons">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------- associations

function AssociationsTab() {
  const associations = useApi<Association[]>("/associations");
  const experiments = useApi<Experiment[]>("/experiments");
  const users = useApi<User[]>("/users");
  const scientists = (users.data ?? []).filter((u) => u.role === "SCIENTIST");
  const [experimentId, setExperimentId] = useState("");
  const [userId, setUserId] = useState("");
  const [removing, setRemoving] = useState<Association | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  return (
    <>
      <Card title="Associate a scientist with an experiment">
        <Alert message={experiments.error ?? users.error} />
        <form
          class="inline-form"
          onSubmit={async (e) => {
            e.preventDefault();
            setDone(null);
            if (!experimentId || !userId) {
              action.setError("Choose an experiment and a scientist.");
              return;
            }
            const ok = await action.run(() => api.post("/associations", { experiment_id: Number(experimentId), user_id: userId }));
            if (ok !== undefined) {
              const x = experiments.data?.find((x) => String(x.experiment_id) === experimentId);
              setDone(`${userId} is associated with ${x?.name ?? `#${experimentId}`}.`);
              associations.reload();
            }
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
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Associate
          </button>
        </form>
        <Alert message={action.error} />
        {done && <Notice kind="success">{done}</Notice>}
      </Card>
      <Card title="Associations">
        <ListOf fetched={associations} empty="No associations yet.">
          {(rows) => (
            <table class="data" id="associations-table">
              <thead>
                <tr>
                  <th scope="col">Experiment</th>
                  <th scope="col">Scientist</th>
                  <th scope="col">Id</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((a) => (
                  <tr key={`${a.experiment.experiment_id}/${a.user.user_id}`}>
                    <td>{a.experiment.name}</td>
                    <td>{a.user.name}</td>
                    <td class="mono">{a.user.user_id}</td>
                    <td class="actions">
                      <button
                        type="button"
                        class="btn btn-small btn-danger"
                        onClick={() => setRemoving(a)}
                      >
                        Remove<span class="sr-only"> {a.user.user_id} from {a.experiment.name}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </ListOf>
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

// ---------------------------------------------------------------- measure types

function MeasureTypesTab() {
  const types = useApi<MeasureType[]>("/measure-types");
  const empty = { name: "", symbol: "", quantity: "" };
  const [form, setForm] = useState(empty);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const set = (key: keyof typeof empty) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <>
      <Card title="Create a measure type">
        <form
          class="inline-form"
          onSubmit={async (e) => {
            e.preventDefault();
            setDone(null);
            const created = await action.run(() => api.post<MeasureType>("/measure-types", form));
            if (created) {
              setForm(empty);
              setDone(`Measure type "${created.name}" created.`);
              types.reload();
            }
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
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Create measure type
          </button>
        </form>
        <Alert message={action.error} />
        {done && <Notice kind="success">{done}</Notice>}
      </Card>
      <Card title="Measure types">
        <ListOf fetched={types} empty="No measure types yet.">
          {(rows) => (
            <table class="data">
              <thead>
                <tr>
                  <th scope="col" class="num">Id</th>
                  <th scope="col">Name</th>
                  <th scope="col">Symbol</th>
                  <th scope="col">Quantity</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((t) => (
                  <tr key={t.measure_type_id}>
                    <td class="num">{t.measure_type_id}</td>
                    <td>{t.name}</td>
                    <td>{t.symbol}</td>
                    <td>{t.quantity}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </ListOf>
      </Card>
    </>
  );
}

// ---------------------------------------------------------------- ingest tokens

function IngestTokensTab() {
  const tokens = useApi<IngestToken[]>("/ingest-tokens");
  const experiments = useApi<Experiment[]>("/experiments");
  const [chosen, setChosen] = useState<string[]>([]);
  const [description, setDescription] = useState("");
  const [created, setCreated] = useState<CreatedIngestToken | null>(null);
  const [revoking, setRevoking] = useState<IngestToken | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const names = new Map((experiments.data ?? []).map((x) => [x.experiment_id, x.name]));
  return (
    <>
      <Card title="Create an ingest token">
        <p class="muted">Sources (devices, adapters, services) push measures with an ingest token, scoped to experiments.</p>
        <Alert message={experiments.error} />
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            setDone(null);
            if (chosen.length === 0) {
              action.setError("Choose at least one experiment.");
              return;
            }
            const token = await action.run(() =>
              api.post<CreatedIngestToken>("/ingest-tokens", { experiments: chosen, description: description.trim() }),
            );
            if (token) {
              setCreated(token);
              setChosen([]);
              setDescription("");
              tokens.reload();
            }
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
          <div class="inline-form">
            <Field id="token-description" label="Description">
              <input id="token-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} placeholder="lab 1 sensor" />
            </Field>
            <button type="submit" class="btn btn-primary" disabled={action.pending}>
              Create token
            </button>
          </div>
        </form>
        <Alert message={action.error} />
        {done && <Notice kind="success">{done}</Notice>}
      </Card>
      <Card title="Ingest tokens">
        <ListOf fetched={tokens} empty="No ingest tokens yet.">
          {(rows) => (
            <table class="data">
              <thead>
                <tr>
                  <th scope="col">Token id</th>
                  <th scope="col">Description</th>
                  <th scope="col">Experiments</th>
                  <th scope="col">Created by</th>
                  <th scope="col">Created</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((t) => (
                  <tr key={t.token_id} class={t.revoked ? "dimmed" : ""}>
                    <td class="mono">{t.token_id}</td>
                    <td>{t.description || <span class="muted">—</span>}</td>
                    <td>{t.experiment_ids.map((id) => names.get(id) ?? `#${id}`).join(", ")}</td>
                    <td class="mono">{t.created_by ?? <span class="muted">shell</span>}</td>
                    <td class="nowrap">{formatTime(t.created_at * 1000, { seconds: false })}</td>
                    <td>{t.revoked ? <span class="badge badge-bad">revoked</span> : <span class="badge badge-good">active</span>}</td>
                    <td class="actions">
                      {!t.revoked && (
                        <button type="button" class="btn btn-small btn-danger" onClick={() => setRevoking(t)}>
                          Revoke<span class="sr-only"> {t.token_id}</span>
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </ListOf>
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
