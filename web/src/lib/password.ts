// The password policy, as hints shown while typing. The server decides (zxcvbn score ≥ 3);
// these checks catch the obvious cases before a round trip.

export const MIN_LENGTH = 12;
export const MAX_LENGTH = 256;

export const POLICY_TEXT =
  "At least 12 characters, hard to guess (strength score 3 of 4 or more: for example four unrelated words, " +
  "or a random string from a password manager), and not containing your name, username or email.";

export interface PasswordHint {
  id: "length" | "personal" | "variety" | "match";
  ok: boolean;
  text: string;
}

/** Parts of the user's data a password must not contain (4 characters or more, lowercased). */
export function personalParts(inputs: string[]): string[] {
  const parts = new Set<string>();
  for (const raw of inputs) {
    const input = raw.toLowerCase().trim();
    if (!input) continue;
    parts.add(input);
    for (const piece of input.split(/[@\s]+/)) parts.add(piece);
  }
  return [...parts].filter((p) => [...p].length >= 4);
}

/** Whether the password contains the user's name, username, email or a part of them. */
export function containsPersonal(password: string, inputs: string[]): boolean {
  const lowered = password.toLowerCase();
  return personalParts(inputs).some((part) => lowered.includes(part));
}

/** A rough variety check: several character classes or several words. */
export function looksVaried(password: string): boolean {
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9\s]/].filter((re) => re.test(password)).length;
  const words = password.trim().split(/\s+/).filter((w) => w.length >= 3).length;
  const distinct = new Set(password).size;
  return distinct >= 6 && (classes >= 3 || words >= 3 || password.length >= 20);
}

/** Hints for a new password and its confirmation. */
export function passwordHints(password: string, confirm: string, personal: string[]): PasswordHint[] {
  const length = [...password].length;
  return [
    {
      id: "length",
      ok: length >= MIN_LENGTH && length <= MAX_LENGTH,
      text: length > MAX_LENGTH ? `At most ${MAX_LENGTH} characters` : `At least ${MIN_LENGTH} characters (${length} now)`,
    },
    { id: "personal", ok: password.length > 0 && !containsPersonal(password, personal), text: "Does not contain your name, username or email" },
    { id: "variety", ok: looksVaried(password), text: "Hard to guess: unrelated words, or mixed letters, digits and symbols" },
    { id: "match", ok: password.length > 0 && password === confirm, text: "Confirmation matches" },
  ];
}

/** Whether the form may be sent (the server has the last word on strength). */
export function passwordReady(current: string, password: string, confirm: string, personal: string[]): boolean {
  const hints = passwordHints(password, confirm, personal);
  return current.length > 0 && hints.filter((h) => h.id !== "variety").every((h) => h.ok);
}
