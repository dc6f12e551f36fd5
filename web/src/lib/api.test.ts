import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, needsCsrf, parseRetryAfter, problemMessage, queryString } from "./api";

type Call = { url: string; init: RequestInit };

function mockFetch(responses: Response[]) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const next = responses.shift();
    if (!next) throw new Error("no more responses");
    return next;
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const problem = (status: number, detail: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: "about:blank", title: "Error", status, detail }), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });

const session = {
  user: { user_id: "S001", name: "Peter Higg", username: "phigg", email: "phigg@home.cern", role: "SCIENTIST" },
  csrf_token: "csrf-123",
  expires_in: 3600,
};

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

function headersOf(call: Call): Record<string, string> {
  return call.init.headers as Record<string, string>;
}

describe("queryString", () => {
  it("leaves out blank values and encodes the rest", () => {
    expect(queryString({ measure: "degree Celsius", from: undefined, to: null, q: "", n: 5, b: false })).toBe(
      "?measure=degree+Celsius&n=5&b=false",
    );
    expect(queryString({})).toBe("");
  });
});

describe("CSRF", () => {
  it("is needed by state-changing methods except signing in", () => {
    expect(needsCsrf("GET", "/experiments")).toBe(false);
    expect(needsCsrf("HEAD", "/experiments")).toBe(false);
    expect(needsCsrf("POST", "/experiments")).toBe(true);
    expect(needsCsrf("patch", "/users/S001")).toBe(true);
    expect(needsCsrf("PUT", "/experiments/1")).toBe(true);
    expect(needsCsrf("DELETE", "/auth/session")).toBe(true);
    expect(needsCsrf("POST", "/auth/session")).toBe(false);
  });

  it("is sent only on state-changing calls, after signing in", async () => {
    const { fetch, calls } = mockFetch([
      json(200, session),
      json(200, []),
      json(201, { experiment_id: 3, name: "x" }),
      new Response(null, { status: 204 }),
    ]);
    const client = new ApiClient({ fetch });
    await client.signIn("phigg", "secret");
    await client.get("/experiments");
    await client.post("/experiments", { name: "x" });
    await client.signOut();
    expect(headersOf(calls[0])["X-CSRF-Token"]).toBeUndefined();
    expect(calls[0].init.method).toBe("POST");
    expect(calls[0].init.body).toBe(JSON.stringify({ username: "phigg", password: "secret" }));
    expect(headersOf(calls[1])["X-CSRF-Token"]).toBeUndefined();
    expect(headersOf(calls[2])["X-CSRF-Token"]).toBe("csrf-123");
    expect(headersOf(calls[3])["X-CSRF-Token"]).toBe("csrf-123");
    expect(calls[3].init.method).toBe("DELETE");
    expect(calls.every((c) => c.init.credentials === "same-origin")).toBe(true);
    expect(calls.map((c) => c.url)).toEqual([
      "/api/v1/auth/session",
      "/api/v1/experiments",
      "/api/v1/experiments",
      "/api/v1/auth/session",
    ]);
    expect(client.hasCsrfToken).toBe(false);
  });

  it("is taken from a restored session", async () => {
    const { fetch, calls } = mockFetch([json(200, session), new Response(null, { status: 204 })]);
    const client = new ApiClient({ fetch });
    expect(await client.restoreSession()).toEqual(session);
    await client.delete("/associations/1/S001");
    expect(headersOf(calls[1])["X-CSRF-Token"]).toBe("csrf-123");
  });
});

describe("errors", () => {
  it("show the problem's detail", async () => {
    const { fetch } = mockFetch([problem(409, "experiment name \"x\" is taken")]);
    const client = new ApiClient({ fetch });
    const err = await failure(client.post("/experiments", { name: "x" }));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(409);
    expect(err.message).toBe('experiment name "x" is taken');
    expect(err.problem?.title).toBe("Error");
  });

  it("fall back to the title, then the status", () => {
    expect(problemMessage(404, { title: "Not Found" }, null)).toBe("Not Found");
    expect(problemMessage(502, null, null)).toBe("The server answered 502 (server error)");
  });

  it("say how long to wait when throttled", async () => {
    const { fetch } = mockFetch([problem(429, "too many failed sign-ins", { "retry-after": "42" })]);
    const client = new ApiClient({ fetch });
    const err = await failure(client.signIn("phigg", "bad"));
    expect(err.status).toBe(429);
    expect(err.retryAfter).toBe(42);
    expect(err.message).toBe("Too many failed attempts: try again in 42 s");
    expect(problemMessage(429, { detail: "try again in 17 s" }, null)).toBe("Too many failed attempts: try again in 17 s");
    expect(problemMessage(429, null, null)).toBe("Too many failed attempts: try again later");
  });

  it("parse Retry-After as seconds or a date", () => {
    expect(parseRetryAfter("120")).toBe(120);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30);
  });

  it("report an unreachable server", async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError("Failed to fetch");
    }) as unknown as typeof globalThis.fetch;
    const err = await failure(new ApiClient({ fetch }).get("/experiments"));
    expect(err.status).toBe(0);
    expect(err.message).toContain("Cannot reach the server");
  });
});

describe("401", () => {
  it("ends the session on an API call", async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch([json(200, session), problem(401, "token expired")]);
    const client = new ApiClient({ fetch, onUnauthorized });
    await client.signIn("phigg", "pw");
    await expect(client.get("/experiments")).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(client.hasCsrfToken).toBe(false);
  });

  it("of a wrong password is only an error", async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch([problem(401, "invalid username or password")]);
    const client = new ApiClient({ fetch, onUnauthorized });
    await expect(client.signIn("phigg", "wrong")).rejects.toThrow("invalid username or password");
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it("when restoring means no session", async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch([problem(401, "no session")]);
    const client = new ApiClient({ fetch, onUnauthorized });
    expect(await client.restoreSession()).toBeNull();
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it("no session at all (204) is not an error either", async () => {
    const onUnauthorized = vi.fn();
    const { fetch } = mockFetch([new Response(null, { status: 204 })]);
    const client = new ApiClient({ fetch, onUnauthorized });
    expect(await client.restoreSession()).toBeNull();
    expect(client.hasCsrfToken).toBe(false);
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it("other errors while restoring are thrown", async () => {
    const { fetch } = mockFetch([problem(500, "database unavailable")]);
    await expect(new ApiClient({ fetch }).restoreSession()).rejects.toThrow("database unavailable");
  });
});
