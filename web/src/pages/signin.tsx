// Sign in with username and password (the server sets an HttpOnly session cookie).

import { useEffect, useRef, useState } from "preact/hooks";
import { Alert, Brand, Notice } from "../components/ui";
import { useTitle } from "../hooks";
import { ApiError, api, errorMessage } from "../lib/api";
import type { User } from "../lib/types";

export function SignInPage(props: { message?: string; onSignedIn: (user: User) => void }) {
  useTitle("Sign in");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [waitUntil, setWaitUntil] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());
  const usernameRef = useRef<HTMLInputElement>(null);

  useEffect(() => usernameRef.current?.focus(), []);

  // Counts the throttling delay down.
  useEffect(() => {
    if (waitUntil === null) return;
    const timer = setInterval(() => {
      const t = Date.now();
      setNow(t);
      if (t >= waitUntil) {
        setWaitUntil(null);
        setError(null);
      }
    }, 1000);
    return () => clearInterval(timer);
  }, [waitUntil]);

  const remaining = waitUntil === null ? 0 : Math.max(0, Math.ceil((waitUntil - now) / 1000));
  const shownError =
    waitUntil !== null && remaining > 0 ? `Too many failed attempts: try again in ${remaining} s` : error;

  async function submit(event: Event) {
    event.preventDefault();
    if (pending) return;
    if (!username.trim() || !password) {
      setError("Enter your username and password.");
      return;
    }
    setPending(true);
    setError(null);
    try {
      const session = await api.signIn(username.trim(), password);
      setPassword("");
      props.onSignedIn(session.user);
    } catch (err) {
      if (err instanceof ApiError && err.status === 429 && err.retryAfter !== null) {
        setNow(Date.now());
        setWaitUntil(Date.now() + err.retryAfter * 1000);
      }
      setError(errorMessage(err));
      setPending(false);
    }
  }

  return (
    <main class="center-page">
      <form class="signin-card" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <Brand />
        <h1 id="signin-title">Sign in</h1>
        {props.message && <Notice kind="warning">{props.message}</Notice>}
        <div class="field">
          <label for="signin-username">Username</label>
          <input
            ref={usernameRef}
            id="signin-username"
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellcheck={false}
            required
            value={username}
            onInput={(e) => {
              setUsername(e.currentTarget.value);
              // Throttling counts per username: another one may be tried at once.
              if (waitUntil !== null) {
                setWaitUntil(null);
                setError(null);
              }
            }}
          />
        </div>
        <div class="field">
          <label for="signin-password">Password</label>
          <input
            id="signin-password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </div>
        <Alert message={shownError} />
        <button type="submit" class="btn btn-primary btn-block" disabled={pending || remaining > 0}>
          {pending ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
