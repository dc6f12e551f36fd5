// The API client: same-origin fetch with the session cookie, the CSRF header on every
// state-changing call, RFC 9457 problem documents turned into readable errors, and one
// place where a 401 ends the session.

import type { Session } from "./types";

export const API_BASE = "/api/v1";
export const SESSION_PATH = "/auth/session";

/** An RFC 9457 problem document, as the server sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  field?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  readonly retryAfter: number | null;

  constructor(message: string, status: number, problem: Problem | null = null, retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

export type QueryValue = string | number | boolean | null | undefined;
export type Query = Record<string, QueryValue>;

/** `?a=1&b=x` from the defined values, in the given order; "" when none. */
export function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** Whether a method changes state, and so needs the CSRF header. */
export function isStateChanging(method: string): boolean {
  const m = method.toUpperCase();
  return m !== "GET" && m !== "HEAD" && m !== "OPTIONS";
}

/** Whether a call must carry `X-CSRF-Token`: every state-changing one except signing in. */
export function needsCsrf(method: string, path: string): boolean {
  if (!isStateChanging(method)) return false;
  const bare = path.split("?")[0];
  return !(method.toUpperCase() === "POST" && bare === SESSION_PATH);
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | null {
  if (!header) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The message to show for a failed call. */
export function problemMessage(status: number, problem: Problem | null, retryAfter: number | null): string {
  if (status === 429) {
    let seconds = retryAfter;
    if (seconds === null && problem?.detail) {
      const match = /(\d+)\s*s/.exec(problem.detail) ?? /(\d+)/.exec(problem.detail);
      if (match) seconds = Number(match[1]);
    }
    return seconds === null
      ? "Too many failed attempts: try again later"
      : `Too many failed attempts: try again in ${seconds} s`;
  }
  const detail = problem?.detail?.trim();
  if (detail) return detail;
  const title = problem?.title?.trim();
  if (title) return title;
  return `The server answered ${status}${status >= 500 ? " (server error)" : ""}`;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
}

export interface ApiClientOptions {
  fetch?: typeof fetch;
  base?: string;
  /** Called when a call other than the session's own answers 401. */
  onUnauthorized?: (error: ApiError) => void;
}

export class ApiClient {
  // Kept in memory only: never in storage, never in a cookie scripts can read.
  private csrfToken: string | null = null;
  private readonly fetchImpl: typeof fetch;
  private readonly base: string;
  onUnauthorized: ((error: ApiError) => void) | undefined;

  constructor(options: ApiClientOptions = {}) {
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.base = options.base ?? API_BASE;
    this.onUnauthorized = options.onUnauthorized;
  }

  get hasCsrfToken(): boolean {
    return this.csrfToken !== null;
  }

  setCsrfToken(token: string | null): void {
    this.csrfToken = token;
  }

  /** The URL of an API path with a query, for links (exports) and EventSource. */
  url(path: string, query?: Query): string {
    return `${this.base}${path}${queryString(query)}`;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    if (needsCsrf(method, path) && this.csrfToken) {
      headers["X-CSRF-Token"] = this.csrfToken;
    }
    let response: Response;
    try {
      response = await this.fetchImpl(this.url(path, options.query), {
        method,
        headers,
        body,
        credentials: "same-origin",
        signal: options.signal,
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") throw err;
      throw new ApiError(`Cannot reach the server (${err instanceof Error ? err.message : String(err)})`, 0);
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401 && path.split("?")[0] !== SESSION_PATH) {
        this.csrfToken = null;
        this.onUnauthorized?.(error);
      }
      throw error;
    }
    if (response.status === 204) return undefined as T;
    const type = response.headers.get("content-type") ?? "";
    if (type.includes("json")) return (await response.json()) as T;
    return (await response.text()) as T;
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", path, { query, signal });
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, { body });
  }
  patch<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }
  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }
  delete<T = void>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** The current session from the cookie, or null when there is none (204: no cookie; 401:
   * the session ended). */
  async restoreSession(): Promise<Session | null> {
    try {
      const session = await this.get<Session | undefined>(SESSION_PATH);
      this.csrfToken = session?.csrf_token ?? null;
      return session ?? null;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.csrfToken = null;
        return null;
      }
      throw err;
    }
  }

  async signIn(username: string, password: string): Promise<Session> {
    const session = await this.post<Session>(SESSION_PATH, { username, password });
    this.csrfToken = session.csrf_token;
    return session;
  }

  async signOut(): Promise<void> {
    try {
      await this.delete(SESSION_PATH);
    } finally {
      this.csrfToken = null;
    }
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  let problem: Problem | null = null;
  const type = response.headers.get("content-type") ?? "";
  try {
    if (type.includes("json")) {
      const parsed: unknown = await response.json();
      if (parsed && typeof parsed === "object") problem = parsed as Problem;
    } else {
      const text = (await response.text()).trim();
      if (text && text.length < 500) problem = { detail: text };
    }
  } catch {
    problem = null;
  }
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  return new ApiError(problemMessage(response.status, problem, retryAfter), response.status, problem, retryAfter);
}

/** The message of any error, for role="alert" boxes. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === "AbortError";
}

/** The application's client. */
export const api = new ApiClient();
