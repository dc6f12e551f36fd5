// Settings: change one's password, and how to use the API from scripts.

import { useState } from "preact/hooks";
import { Alert, Card, CopyBlock, Field } from "../components/ui";
import { useAction, useSession, useTitle } from "../hooks";
import { api } from "../lib/api";
import { POLICY_TEXT, passwordHints, passwordReady } from "../lib/password";

export function SettingsPage() {
  useTitle("Settings");
  return (
    <div class="page narrow">
      <div class="page-head">
        <h1>Settings</h1>
      </div>
      <PasswordCard />
      <ApiAccessCard />
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
