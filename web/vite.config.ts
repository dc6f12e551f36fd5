import { defineConfig } from "vitest/config";

// The API is same-origin under /api/v1. In development, requests to /api go to a running
// MyMonit server (MYMONIT_API, default http://127.0.0.1:8080).
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const api = env.MYMONIT_API ?? "http://127.0.0.1:8080";

// The policy the server applies to the UI; `vite preview` applies it too, so that a
// violation shows up before the binary is rebuilt.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export default defineConfig({
  base: "/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The polyfill would be an inline script, which the Content-Security-Policy forbids.
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
  preview: {
    proxy: { "/api": { target: api, changeOrigin: false } },
    headers: { "Content-Security-Policy": CSP },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
