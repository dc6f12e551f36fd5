// Settings: change one's password, how to use the API from scripts, and one's personal
// access tokens (read-only credentials for Grafana's InfluxDB datasource).

import { useState } from "preact/hooks";
import { Alert, Card, ConfirmDialog, CopyBlock, Dialog, Field, ListOf, Notice } from "../components/ui";
import { useAction, useApi, useSession, useTitle } from "../hooks";
import { api } from "../lib/api";
import { formatTime } from "../lib/format";
import { POLICY_TEXT, passwordHints, passwordReady } from "../lib/password";
import { DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, checkNewToken, grafanaSettings, tokenState } from "../lib/tokens";
import type { CreatedPersonalToken, PersonalToken } from "../lib/types";

export function SettingsPage() {
  useTitle("Settings");
  return (
    <div class="page narrow">
      <div class="page-head">
        <h1>Settings</h1>
      </div>
      <PasswordCard />
      <ApiAccessCard />
      <PersonalTokensCard />
    </div>
  );
}

function PasswordCard() {
  const { user, endSession } = useSession();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const action = useAction();
  const personal = [user.name, user.username, user.email];
  const hints = passwordHints(next, confirm, personal);
  const ready = passwordReady(current, next, confirm, personal);
  return (
    <Card title="Change your password">
      <p class="muted">{POLICY_TEXT} Changing it signs you out everywhere.</p>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          if (!ready) {
            action.setError(next !== confirm ? "The confirmation does not match the new password." : "Fill in every field and follow the rules below.");
            return;
          }
          const ok = await action.run(async () => {
            await api.post("/auth/password", { current_password: current, new_password: next });
            return true;
          });
          if (ok) endSession("Password changed: sign in again");
        }}
      >
        <Field id="pw-current" label="Current password">
          <input id="pw-current" type="password" autoComplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </Field>
        <Field id="pw-new" label="New password">
          <input
            id="pw-new"
            type="password"
            autoComplete="new-password"
            required
            value={next}
            onInput={(e) => setNext(e.currentTarget.value)}
            aria-describedby="pw-rules"
          />
        </Field>
        <Field id="pw-confirm" label="Confirm new password">
          <input id="pw-confirm" type="password" autoComplete="new-password" required value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
        </Field>
        <ul class="rules" id="pw-rules" aria-live="polite">
          {hints.map((h) => (
            <li key={h.id} class={h.ok ? "ok" : "todo"}>
              <span aria-hidden="true">{h.ok ? "✔" : "○"}</span> {h.text}
              <span class="sr-only">{h.ok ? " (met)" : " (not met yet)"}</span>
            </li>
          ))}
          <li class="muted small">The server has the last word on strength (score 3 of 4 or more).</li>
        </ul>
        <Alert message={action.error} />
        <div>
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            Change password
          </button>
        </div>
      </form>
    </Card>
  );
}

function ApiAccessCard() {
  const { user } = useSession();
  const origin = location.origin;
  const script = [
    "# Ask for your password without echoing it, then get a token (valid for an hour).",
    "read -rsp 'Password: ' MYMONIT_PASSWORD; echo",
    `TOKEN=$(curl -s ${origin}/api/v1/auth/login -H 'content-type: application/json' \\`,
    `  -d "{\\"username\\": \\"${user.username}\\", \\"password\\": \\"$MYMONIT_PASSWORD\\"}" \\`,
    `  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')`,
    "",
    "# Then send it as a bearer token.",
    `curl -s ${origin}/api/v1/experiments -H "Authorization: Bearer $TOKEN"`,
  ];
  if (user.role === "SCIENTIST") {
    script.push(`curl -s "${origin}/api/v1/experiments/1/measures?format=csv&from=2026-01-01T00:00:00Z" \\`);
    script.push(`  -H "Authorization: Bearer $TOKEN" > measures.csv`);
  }
  if (user.role === "AUDITOR") {
    script.push(`curl -s "${origin}/api/v1/audit?format=ndjson" -H "Authorization: Bearer $TOKEN" > audit.ndjson`);
  }
  script.push("", "# Sign the token out when done.", `curl -s -X POST ${origin}/api/v1/auth/logout -H "Authorization: Bearer $TOKEN"`);
  return (
    <Card title="API access">
      <p>
        Scripts use the same API as this page, with a bearer token instead of the browser's session: <code>POST /api/v1/auth/login</code>{" "}
        with your username and password answers <code>{`{"access_token", "token_type": "Bearer", "expires_in"}`}</code>; send the token as{" "}
        <code>Authorization: Bearer …</code>. The full reference is at{" "}
        <a href="/docs" target="_blank" rel="noopener">
          /docs
        </a>
        .
      </p>
      <CopyBlock text={script.join("\n")} label="Example shell session" />
      <p class="muted small">
        Devices and services that push measures use ingest tokens instead, which an admin creates.
      </p>
    </Card>
  );
}

const STATE_BADGES = { live: "badge badge-good", expired: "badge", revoked: "badge badge-bad" } as const;

function PersonalTokensCard() {
  const { user } = useSession();
  const tokens = useApi<PersonalToken[]>("/auth/tokens");
  const [name, setName] = useState("");
  const [days, setDays] = useState(String(DEFAULT_EXPIRY_DAYS));
  const [created, setCreated] = useState<CreatedPersonalToken | null>(null);
  const [revoking, setRevoking] = useState<PersonalToken | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const action = useAction();
  const now = Date.now();
  return (
    <Card title="Personal access tokens" id="personal-tokens">
      <p>
        Read-only credentials for tools that cannot sign in, such as Grafana's InfluxDB datasource. A token reads what you may read,
        until it expires or you revoke it; its secret is shown once.
      </p>
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setDone(null);
          const checked = checkNewToken(name, days);
          if (!checked.ok) {
            action.setError(checked.error);
            return;
          }
          const token = await action.run(() => api.post<CreatedPersonalToken>("/auth/tokens", checked.body));
          if (token) {
            setCreated(token);
            setName("");
            setDays(String(DEFAULT_EXPIRY_DAYS));
            tokens.reload();
          }
        }}
      >
        <Field id="pat-name" label="Name">
          <input id="pat-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="grafana-lab" autoComplete="off" />
        </Field>
        <Field id="pat-days" label="Expires in days">
          <input
            id="pat-days"
            type="number"
            required
            min={1}
            max={MAX_EXPIRY_DAYS}
            step={1}
            value={days}
            onInput={(e) => setDays(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" class="btn btn-primary" disabled={action.pending}>
          Create token
        </button>
      </form>
      <Alert message={action.error} />
      {done && <Notice kind="success">{done}</Notice>}
      <h3>Your tokens</h3>
      <ListOf fetched={tokens} empty="No personal access tokens yet.">
        {(rows) => (
          <table class="data" id="personal-tokens-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => {
                const state = tokenState(t, now);
                return (
                  <tr key={t.token_id} class={state === "live" ? "" : "dimmed"}>
                    <td>{t.name}</td>
                    <td class="nowrap">{formatTime(t.created_at * 1000, { seconds: false })}</td>
                    <td class="nowrap">{formatTime(t.expires_at * 1000, { seconds: false })}</td>
                    <td>
                      <span class={STATE_BADGES[state]}>{state}</span>
                    </td>
                    <td class="actions">
                      {state === "live" && (
                        <button type="button" class="btn btn-small btn-danger" onClick={() => setRevoking(t)}>
                          Revoke<span class="sr-only"> {t.name}</span>
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </ListOf>
      <h3>Grafana</h3>
      <p>Add an InfluxDB data source with query language InfluxQL, and a token as its password:</p>
      <div class="table-wrap">
        <table class="data" id="grafana-settings">
          <thead>
            <tr>
              <th scope="col">Setting</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {grafanaSettings(location.origin, user.username).map((row) => (
              <tr key={row.setting}>
                <td>{row.setting}</td>
                <td class={row.setting === "URL" || row.setting === "User" ? "mono" : undefined}>{row.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {user.role !== "SCIENTIST" && (
        <p class="muted small">
          Only scientists read measures this way, those of the experiments associated with them: a token of yours lists no experiments.
        </p>
      )}
      {created && (
        <Dialog title="Personal access token created" onClose={() => setCreated(null)} wide>
          <p>
            Copy the secret of <strong>{created.name}</strong> now: it is shown <strong>this once</strong>. MyMonit keeps only a hash of it.
          </p>
          <CopyBlock text={created.secret} label="Personal access token secret" />
          <p class="muted small">
            It works until {formatTime(created.expires_at * 1000, { seconds: false })}. In Grafana it is the password; the user is your
            username, <code>{user.username}</code>.
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
          title="Revoke the personal access token?"
          confirmLabel="Revoke"
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.delete(`/auth/tokens/${encodeURIComponent(revoking.token_id)}`);
            setDone(`Token "${revoking.name}" revoked.`);
            tokens.reload();
          }}
        >
          <p>
            Tools using <strong>{revoking.name}</strong> will be refused from now on. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </Card>
  );
}
