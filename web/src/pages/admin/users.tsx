// Users: create, edit, erase (GDPR erasure keeps the id for the audit trail).

import { useState } from "preact/hooks";
import { CreateCard, FormDialog } from "../../components/admin";
import { Card, ConfirmDialog, DataTable, Field, Notice } from "../../components/ui";
import { useApi, useSession } from "../../hooks";
import { api } from "../../lib/api";
import type { Role, User } from "../../lib/types";

const ROLES: Role[] = ["SCIENTIST", "ADMIN", "AUDITOR"];

function RoleOptions() {
  return (
    <>
      {ROLES.map((r) => (
        <option key={r} value={r}>
          {r}
        </option>
      ))}
    </>
  );
}

export function UsersTab() {
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
        <DataTable
          fetched={users}
          empty="No users yet."
          rowKey={(u) => u.user_id}
          columns={[
            { header: "Id", class: "mono", cell: (u) => u.user_id },
            { header: "Name", cell: (u) => u.name },
            { header: "Username", cell: (u) => u.username },
            { header: "Email", cell: (u) => u.email },
            { header: "Role", cell: (u) => <span class={`role role-${u.role.toLowerCase()}`}>{u.role}</span> },
          ]}
          actions={(u) => (
            <>
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
            </>
          )}
        />
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
  const set = (key: keyof typeof empty) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <CreateCard
      title="Create a user"
      submitLabel="Create user"
      layout="grid"
      submit={() => api.post<User>("/users", { ...form, password: form.password || undefined })}
      onCreated={(created) => {
        setForm(empty);
        onCreated(created);
      }}
    >
      <Field id="new-user-role" label="Role">
        <select id="new-user-role" value={form.role} onChange={set("role")}>
          <RoleOptions />
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
    </CreateCard>
  );
}

function EditUser(props: { user: User; self: boolean; onClose: () => void; onSaved: (u: User) => void }) {
  const [form, setForm] = useState({ name: props.user.name, username: props.user.username, email: props.user.email, role: props.user.role });
  const set = (key: keyof typeof form) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });
  return (
    <FormDialog
      title={`Edit ${props.user.user_id}`}
      submitLabel="Save"
      onClose={props.onClose}
      onSaved={props.onSaved}
      submit={() => {
        const patch: Record<string, string> = {};
        (Object.keys(form) as (keyof typeof form)[]).forEach((k) => {
          if (form[k] !== props.user[k]) patch[k] = form[k];
        });
        if (Object.keys(patch).length === 0) return null;
        return api.patch<User>(`/users/${encodeURIComponent(props.user.user_id)}`, patch);
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
          <RoleOptions />
        </select>
      </Field>
    </FormDialog>
  );
}
