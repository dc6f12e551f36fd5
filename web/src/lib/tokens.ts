// Personal access tokens: their state, the checks of the form that makes one (the server's
// rules, so that mistakes show before a round trip), and the settings of Grafana's InfluxDB
// datasource that uses one.

import type { PersonalToken } from "./types";

export const DEFAULT_EXPIRY_DAYS = 90;
export const MAX_EXPIRY_DAYS = 366;
export const MAX_NAME_LENGTH = 100;

export type TokenState = "live" | "expired" | "revoked";

/** Whether a token still works at `now` (epoch milliseconds): revoked wins over expired. */
export function tokenState(token: Pick<PersonalToken, "expires_at" | "revoked">, now: number = Date.now()): TokenState {
  if (token.revoked) return "revoked";
  return token.expires_at * 1000 > now ? "live" : "expired";
}

/** The expiry in whole days from the form's text, or null unless it is 1 to 366. */
export function expiryDays(text: string): number | null {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const days = Number(trimmed);
  return days >= 1 && days <= MAX_EXPIRY_DAYS ? days : null;
}

export type NewTokenCheck = { ok: true; body: { name: string; expires_in_days: number } } | { ok: false; error: string };

/** The request that makes a token, or what is wrong with the form. */
export function checkNewToken(name: string, days: string): NewTokenCheck {
  const trimmed = name.trim();
  if (!trimmed) return { ok: false, error: "Name the token, for example grafana-lab." };
  if ([...trimmed].length > MAX_NAME_LENGTH) return { ok: false, error: `The name has at most ${MAX_NAME_LENGTH} characters.` };
  if (/\p{Cc}/u.test(trimmed)) return { ok: false, error: "The name holds printable characters only." };
  const expires = expiryDays(days);
  if (expires === null) return { ok: false, error: `The token expires in 1 to ${MAX_EXPIRY_DAYS} days.` };
  return { ok: true, body: { name: trimmed, expires_in_days: expires } };
}

/** The settings of Grafana's InfluxDB datasource that reads MyMonit with a token. */
export function grafanaSettings(origin: string, username: string): { setting: string; value: string }[] {
  return [
    { setting: "URL", value: origin },
    { setting: "Database", value: "the experiment's name, for example device-vibrations" },
    { setting: "User", value: username },
    { setting: "Password", value: "the token's secret (mmp_…)" },
    { setting: "Query language", value: "InfluxQL" },
  ];
}
