#!/usr/bin/env node
// End-to-end check of the MyMonit web UI in a headless Chromium (playwright-core, the
// system's browser; nothing is downloaded).
//
//   node web/e2e/run.mjs --url http://127.0.0.1:8080 --credentials data/demo-credentials.json --out target/e2e
//
// Each scenario runs in a fresh browser profile (no cookies shared). Console errors, page
// errors, failed requests and HTTP errors fail the run, except the 401s a scenario provokes
// on purpose (the wrong password, a session whose cookie was removed).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

function parseArgs(argv) {
  const args = { url: null, credentials: null, out: "target/e2e" };
  for (let i = 0; i < argv.length; i++) {
    const [key, inline] = argv[i].split("=", 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (key === "--url") args.url = value();
    else if (key === "--credentials") args.credentials = value();
    else if (key === "--out") args.out = value();
    else if (key === "--help" || key === "-h") {
      console.log("usage: node web/e2e/run.mjs --url BASE_URL --credentials demo-credentials.json [--out DIR]");
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.url || !args.credentials) throw new Error("--url and --credentials are required (see --help)");
  args.url = args.url.replace(/\/+$/, "");
  return args;
}

const args = parseArgs(process.argv.slice(2));
const credentials = JSON.parse(readFileSync(args.credentials, "utf8"));
const outDir = resolve(args.out);
mkdirSync(outDir, { recursive: true });
const profileRoot = mkdtempSync(join(tmpdir(), "mymonit-e2e-"));
const TIMEOUT = 10_000;

function password(username) {
  const entry = credentials.find((c) => c.username === username);
  if (!entry) throw new Error(`no credentials for ${username} in ${args.credentials}`);
  return entry.password;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

let profiles = 0;

/** A fresh browser (own profile) with a page whose problems are collected. */
async function openBrowser(label) {
  const profileDir = join(profileRoot, `${++profiles}-${label}`);
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(TIMEOUT);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  // Responses allowed to fail, per scenario: [method, path, status]. (The session probe of a
  // visitor without a session answers 204, not an error.)
  const allowed = [];
  const allowedUrls = new Set();
  const isAllowed = (method, url, status) => {
    const path = new URL(url).pathname;
    return allowed.some(([m, p, s]) => m === method && p === path && s === status);
  };
  page.on("response", (response) => {
    const status = response.status();
    if (status < 400) return;
    const method = response.request().method();
    if (isAllowed(method, response.url(), status)) {
      allowedUrls.add(response.url());
      return;
    }
    problems.push(`HTTP ${status} for ${method} ${response.url()}`);
  });
  page.on("requestfailed", (request) => {
    const error = request.failure()?.errorText ?? "failed";
    // The UI aborts the fetches it no longer needs (range changed, page left): not a fault.
    if (error === "net::ERR_ABORTED" && request.resourceType() === "fetch") return;
    // Closing the live stream aborts the EventSource request.
    if (error === "net::ERR_ABORTED" && request.url().endsWith("/stream")) return;
    problems.push(`request failed: ${request.method()} ${request.url()} (${error})`);
  });
  page.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    const text = message.text();
    const url = message.location()?.url;
    if (text.startsWith("Failed to load resource") && url && allowedUrls.has(url)) return;
    problems.push(`console ${message.type()}: ${text}${url ? ` (${url})` : ""}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return {
    context,
    page,
    problems,
    allow: (method, path, status) => allowed.push([method, path, status]),
    close: async () => {
      await context.close();
      rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage });
}

async function signIn(page, username, pass = password(username)) {
  await page.goto(`${args.url}/`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(pass);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signedInAs(page, name) {
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.locator(".who-name", { hasText: name }).waitFor({ state: "attached" });
}

async function waitForRows(locator, predicate, what) {
  const deadline = Date.now() + TIMEOUT;
  let last = null;
  while (Date.now() < deadline) {
    last = await locator.evaluateAll((rows) => rows.map((r) => r.textContent ?? ""));
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: rows were ${JSON.stringify(last?.slice(0, 5))}`);
}

// ------------------------------------------------------------------ scenarios

async function scientistDashboard() {
  const b = await openBrowser("scientist");
  let failureB = null;
  try {
    const { page } = b;
    await signIn(page, "phigg");
    await signedInAs(page, "Peter Higg");
    // Overview: the experiment's card with latest values and sparklines.
    const card = page.locator(".experiment-card", { hasText: "device-vibrations" });
    await card.waitFor();
    await card.locator("svg.sparkline").first().waitFor();
    await shot(page, "scientist-overview");

    const seriesResponse = page.waitForResponse((r) => r.url().includes("/series?") && r.status() === 200);
    await card.getByRole("link", { name: "device-vibrations" }).click();
    await page.waitForURL(/\/experiments\/\d+$/);
    const series = await (await seriesResponse).json();
    const fetched = series.series.reduce((n, s) => n + s.timestamps_ms.length, 0);
    check(fetched > 0, `the first /series answer had no points (${JSON.stringify(series).slice(0, 200)})`);

    // A chart drawn with real data.
    const chart = page.locator('.chart[data-state="ready"]').first();
    await chart.waitFor();
    await chart.locator("canvas").waitFor();
    const points = Number(await chart.getAttribute("data-points"));
    check(points > 0, `chart data-points is ${points}`);

    // The statistics table counts points in the range.
    const countCell = page.locator('#statistics td[data-stat="count"]').first();
    await countCell.waitFor();
    const count = Number((await countCell.textContent()).replace(/[^\d]/g, ""));
    check(count > 0, `statistics count is ${count}`);
    await page.locator("#boxplot svg.boxplot-svg").first().waitFor();
    await shot(page, "scientist-dashboard");

    // Zoom by dragging across the chart: the range becomes custom and the chart refetches.
    const over = chart.locator(".u-over");
    const box = await over.boundingBox();
    check(box, "no uPlot overlay to drag on");
    const refetch = page.waitForResponse((r) => r.url().includes("/series?") && r.status() === 200);
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const zoomed = await refetch;
    const q = new URL(zoomed.url()).searchParams;
    const span = Date.parse(q.get("to")) - Date.parse(q.get("from"));
    check(span < 7 * 86_400_000 * 0.5, `zooming did not narrow the range (span ${span} ms)`);
    await page.getByRole("button", { name: "Reset zoom" }).click();

    // Time slices.
    await page.getByLabel("Timeslice").selectOption("day");
    await page.locator("#timeslices .slice-block table").first().waitFor();

    // Live updates: the stream opens, and closes when turned off.
    const live = page.getByRole("switch", { name: "Live updates" });
    const streamRequest = page.waitForRequest((r) => r.url().endsWith("/stream"));
    await live.check();
    await streamRequest;
    await page.locator(".live-status", { hasText: /Live:|Connecting/ }).waitFor();
    // The stream counts as open once its headers arrive (the server may hold them until its
    // first event or keep-alive, 15 s).
    await page.locator(".live-open").waitFor({ timeout: 20_000 });
    await live.uncheck();
    await page.locator(".live-status").waitFor({ state: "detached" });
    await shot(page, "scientist-dashboard-slices");

    // Export links cover the range.
    const csv = await page.getByRole("link", { name: "Export CSV" }).getAttribute("href");
    check(/\/api\/v1\/experiments\/\d+\/measures\?format=csv&from=.+&to=.+/.test(csv), `Export CSV link is ${csv}`);
    const ndjson = await page.getByRole("link", { name: "Export NDJSON" }).getAttribute("href");
    check(ndjson.includes("format=ndjson"), `Export NDJSON link is ${ndjson}`);

    // A range without data says so and offers the latest data.
    await page.getByRole("button", { name: "Custom" }).click();
    await page.getByLabel("From", { exact: true }).fill("2001-01-01T00:00");
    await page.getByLabel("To", { exact: true }).fill("2001-01-02T00:00");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByText("No data in this range.").first().waitFor();
    await page.locator('.chart[data-state="empty"]').first().waitFor();
    await shot(page, "scientist-dashboard-empty", false);
    await page.getByRole("button", { name: "Show latest data" }).click();
    // Each measure's chart loads on its own: wait for the first chart itself, not for whichever
    // chart is ready first.
    await page.waitForFunction(() => document.querySelector(".chart")?.dataset.state === "ready");
    check(Number(await page.locator(".chart").first().getAttribute("data-points")) > 0, "no points after Show latest data");

    // Phone width: the page fits and the charts follow.
    await page.setViewportSize({ width: 375, height: 800 });
    await page.waitForTimeout(500);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `the dashboard is ${overflow}px wider than a 375px screen`);
    const canvasWidth = await page.locator(".chart canvas").first().evaluate((c) => c.getBoundingClientRect().width);
    check(canvasWidth <= 375, `the chart is ${canvasWidth}px wide at 375px`);
    await shot(page, "scientist-dashboard-phone");
    await page.setViewportSize({ width: 1280, height: 800 });

    // Settings: the API example names this origin and user.
    await page.getByRole("link", { name: "Settings" }).click();
    const example = await page.getByLabel("Example shell session").textContent();
    check(example.includes(`${new URL(page.url()).origin}/api/v1/auth/login`) && example.includes('\\"phigg\\"'), "API example lacks origin or username");
    await shot(page, "scientist-settings");
    return `chart drew ${points} points (first answer ${fetched}), count ${count}`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function adminCreatesAndAssociates() {
  const name = `e2e-${Date.now()}`;
  const a = await openBrowser("admin");
  let failureA = null;
  try {
    const { page } = a;
    await signIn(page, "aalcorn");
    await signedInAs(page, "Allan Alcorn");
    await page.getByRole("link", { name: "Admin" }).click();
    await page.getByRole("link", { name: "Experiments" }).click();
    await page.getByLabel("Name").fill(name);
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.locator(".notice-success", { hasText: name }).waitFor();
    await page.locator("#experiments-table tr", { hasText: name }).waitFor();
    await shot(page, "admin-experiment");

    // A dialog focuses its first control and closes with Escape.
    await page.getByRole("button", { name: `Rename ${name}` }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    const focused = await page.evaluate(() => document.activeElement?.id);
    check(focused === "rename-experiment", `the rename dialog focused ${focused}`);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });

    // Writes through the InfluxDB API may create measure types once the admin allows it.
    await page.getByRole("button", { name: `Ingest settings of ${name}` }).click();
    const allow = page.getByRole("dialog").getByLabel("Writes through the InfluxDB API may create measure types");
    check(!(await allow.isChecked()), "a new experiment already lets writes create measure types");
    await allow.check();
    await page.getByRole("dialog").getByRole("button", { name: "Save" }).click();
    await page.locator(".notice-success", { hasText: "may now create measure types" }).waitFor();

    await page.getByRole("link", { name: "Associations" }).click();
    await page.getByLabel("Experiment").selectOption({ label: name });
    await page.getByLabel("Scientist").selectOption("S002");
    await page.getByRole("button", { name: "Associate" }).click();
    await page.locator("#associations-table tr", { hasText: name }).filter({ hasText: "S002" }).waitFor();
    await shot(page, "admin-association");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Username").waitFor();
  } catch (err) {
    failureA = err;
  } finally {
    await finish(a, failureA);
  }
  const k = await openBrowser("kbouman");
  let failureK = null;
  try {
    const { page } = k;
    await signIn(page, "kbouman");
    await signedInAs(page, "Katie Bouman");
    await page.locator(".experiment-card", { hasText: name }).waitFor();
    await page.locator(".experiment-card", { hasText: "black-holes" }).waitFor();
    await shot(page, "kbouman-overview");
  } catch (err) {
    failureK = err;
  } finally {
    await finish(k, failureK);
  }
  return `created ${name}, associated S002, who sees it`;
}

async function auditorFilters() {
  const b = await openBrowser("auditor");
  let failureB = null;
  try {
    const { page } = b;
    await signIn(page, "alovelace");
    await signedInAs(page, "Ada Lovelace");
    await page.waitForURL(/\/audit$/);
    const status = page.locator("#chain-status");
    await status.waitFor();
    const text = await status.textContent();
    check(/Chain valid/.test(text), `chain status is "${text}"`);
    await page.locator("#audit-table tbody tr").first().waitFor();
    // The whole trail (long actions, request ids, change details) fits the page at 1280 px.
    const overflow = await page.locator("#audit-table").evaluate((table) => {
      const wrap = table.closest(".table-wrap") ?? table.parentElement;
      return table.scrollWidth - wrap.clientWidth;
    });
    check(overflow <= 1, `the audit table is ${overflow} px wider than the page at 1280 px`);
    await shot(page, "auditor-trail-all");

    await page.getByLabel("Action").fill("auth.login");
    await page.getByLabel("Outcome").selectOption("success");
    const filtered = page.waitForResponse((r) => r.url().includes("/api/v1/audit?") && r.url().includes("action=auth.login"));
    await page.getByRole("button", { name: "Apply filters" }).click();
    const answer = await (await filtered).json();
    check(answer.records.length > 0, "no auth.login success records");
    const seqs = answer.records.map((r) => r.seq);
    check(
      seqs.every((seq, i) => i === 0 || seq < seqs[i - 1]),
      `the trail is not newest first: ${seqs.join(", ")}`,
    );
    const rows = page.locator("#audit-table tbody tr");
    await waitForRows(
      rows,
      (texts) => texts.length === answer.records.length,
      "the table does not show the filtered page",
    );
    const mismatched = await rows.evaluateAll((trs) =>
      trs.filter((tr) => tr.dataset.action !== "auth.login" || tr.dataset.outcome !== "success").length,
    );
    check(mismatched === 0, `${mismatched} rows do not match action=auth.login outcome=success`);
    const exportHref = await page.getByRole("link", { name: "Export NDJSON" }).getAttribute("href");
    check(exportHref.includes("format=ndjson") && exportHref.includes("action=auth.login"), `Export NDJSON link is ${exportHref}`);
    await shot(page, "auditor-trail");
    return `${answer.records.length} auth.login/success rows, newest first, chain valid`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function wrongPasswordAndSignOut() {
  const b = await openBrowser("signin");
  let failureB = null;
  try {
    const { page } = b;
    b.allow("POST", "/api/v1/auth/session", 401);
    await signIn(page, "phigg", "definitely not the password");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    const text = await alert.textContent();
    check(/invalid username or password/i.test(text), `the sign-in error says "${text}"`);
    await shot(page, "signin-error");

    await page.getByLabel("Password").fill(password("phigg"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await signedInAs(page, "Peter Higg");
    await page.locator(".experiment-card svg.sparkline").first().waitFor();
    await page.waitForLoadState("networkidle");
    // A session that ends (the cookie is gone) sends the user back to sign in.
    b.allow("GET", "/api/v1/experiments", 401);
    b.allow("GET", "/api/v1/auth/tokens", 401);
    // An overview card's sparkline (a slow one: the web requests' 96 series) may still be
    // asking when the cookie goes.
    for (const id of [1, 2, 3]) b.allow("GET", `/api/v1/experiments/${id}/series`, 401);
    await b.context.clearCookies();
    // The next page that asks the server (Settings lists the personal access tokens) finds it.
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByText("Your session ended: sign in again").waitFor();
    await page.getByLabel("Username").waitFor();
    await shot(page, "session-ended");

    await signIn(page, "phigg");
    await signedInAs(page, "Peter Higg");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Username").waitFor();
    await page.reload();
    await page.getByLabel("Username").waitFor();
    check((await page.getByRole("button", { name: "Sign out" }).count()) === 0, "still signed in after signing out and reloading");
    await shot(page, "signed-out");
    return "wrong password refused, ended session sent to sign-in, signed out";
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function adminManages() {
  const b = await openBrowser("admin-pages");
  let failureB = null;
  try {
    const { page } = b;
    const id = `E2E-${Date.now().toString(36)}`;
    await signIn(page, "aalcorn");
    await signedInAs(page, "Allan Alcorn");
    await page.getByRole("link", { name: "Admin" }).click();
    await page.waitForURL(/\/admin\/users$/);

    // Users: create, edit in a dialog, erase after confirming.
    await page.getByLabel("Role").selectOption("SCIENTIST");
    await page.getByLabel("User id").fill(id);
    await page.getByLabel("Name", { exact: true }).fill("Erin Tester");
    await page.getByLabel("Username", { exact: true }).fill(id.toLowerCase());
    await page.getByLabel("Email").fill(`${id.toLowerCase()}@example.org`);
    await page.getByRole("button", { name: "Create user" }).click();
    const row = page.locator("tr", { hasText: id });
    await row.waitFor();
    await row.getByRole("button", { name: `Edit ${id}` }).click();
    const edit = page.getByRole("dialog");
    await edit.getByLabel("Name", { exact: true }).fill("Erin Renamed");
    await edit.getByRole("button", { name: "Save" }).click();
    await edit.waitFor({ state: "detached" });
    await page.locator("tr", { hasText: "Erin Renamed" }).waitFor();
    await row.getByRole("button", { name: `Erase ${id}` }).click();
    const confirm = page.getByRole("dialog");
    await confirm.getByRole("button", { name: "Erase" }).click();
    await confirm.waitFor({ state: "detached" });
    await page.locator(".notice-success", { hasText: `User ${id} erased.` }).waitFor();
    // Erased accounts leave the list (their id lives on in the audit trail only).
    await page.locator("tr", { hasText: id }).waitFor({ state: "detached" });
    await shot(page, "admin-users");

    // Ingest tokens: the secret is shown once with a Copy button; revoking asks first.
    await page.getByRole("link", { name: "Ingest tokens" }).click();
    await page.getByLabel("device-vibrations").check();
    await page.getByLabel("Description").fill(`e2e ${id}`);
    await page.getByRole("button", { name: "Create token" }).click();
    const created = page.getByRole("dialog");
    const secret = (await created.getByLabel("Ingest token secret").textContent()).trim();
    check(/^mmi_/.test(secret), `the secret shown is "${secret}"`);
    await created.getByRole("button", { name: "Copy" }).click();
    await created.getByText(/Copied|Selected/).waitFor();
    await shot(page, "admin-token-created", false);
    await created.getByRole("button", { name: "Done" }).click();
    const tokenRow = page.locator("tr", { hasText: `e2e ${id}` });
    await tokenRow.getByRole("button", { name: /Revoke/ }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
    await tokenRow.getByText("revoked").waitFor();

    // Settings: a personal access token's secret is shown once with a Copy button; revoking
    // asks first.
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByLabel("Name", { exact: true }).fill(`e2e ${id}`);
    await page.getByLabel("Expires in days").fill("30");
    await page.getByRole("button", { name: "Create token" }).click();
    const personal = page.getByRole("dialog");
    const personalSecret = (await personal.getByLabel("Personal access token secret").textContent()).trim();
    check(/^mmp_/.test(personalSecret), `the personal token's secret shown is "${personalSecret}"`);
    await personal.getByRole("button", { name: "Copy" }).click();
    await personal.getByText(/Copied|Selected/).waitFor();
    await shot(page, "settings-token-created", false);
    await personal.getByRole("button", { name: "Done" }).click();
    await personal.waitFor({ state: "detached" });
    const personalRow = page.locator("#personal-tokens-table tr", { hasText: `e2e ${id}` });
    await personalRow.getByText("live", { exact: true }).waitFor();
    check(!(await page.content()).includes(personalSecret), "the personal token's secret is still on the page after Done");
    await personalRow.getByRole("button", { name: /Revoke/ }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
    await personalRow.getByText("revoked").waitFor();
    await shot(page, "settings-tokens");

    // Settings: a weak new password is refused by the server, whose reason is shown.
    b.allow("POST", "/api/v1/auth/password", 422);
    await page.getByLabel("Current password").fill(password("aalcorn"));
    await page.getByLabel("New password", { exact: true }).fill("aaaaaaaaaaaa");
    await page.getByLabel("Confirm new password").fill("aaaaaaaaaaaa");
    await page.getByRole("button", { name: "Change password" }).click();
    const refusal = await page.getByRole("alert").textContent();
    check(/guess|weak|password/i.test(refusal), `the refusal says "${refusal}"`);
    await shot(page, "settings-refused");
    return `user ${id} created, edited, erased; ingest and personal tokens created and revoked; weak password refused ("${refusal.trim()}")`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function apiDocumentation() {
  const b = await openBrowser("docs");
  let failureB = null;
  try {
    const { page } = b;
    // Swagger UI under its Content-Security-Policy: a blocked script or style would show as
    // a console error and fail the scenario.
    await page.goto(`${args.url}/docs/`);
    await page.locator(".swagger-ui .info .title").waitFor();
    await page.locator(".opblock-tag").first().waitFor();
    const operations = await page.locator(".opblock").count();
    check(operations > 20, `only ${operations} operations shown`);
    await page.waitForLoadState("networkidle");
    await shot(page, "api-docs", false);
    return `${operations} operations shown, no policy violation`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function scientistEndpoints() {
  const b = await openBrowser("endpoints");
  let failureB = null;
  try {
    const { page } = b;
    await signIn(page, "phigg");
    await signedInAs(page, "Peter Higg");
    const card = page.locator(".experiment-card", { hasText: "webapp-requests" });
    await card.waitFor();
    // The dashboard asks for the experiment's sources once it has its latest points; the demo
    // has none, so the answer is empty and the Sources card stays away.
    const sourcesResponse = page.waitForResponse(
      (r) => new URL(r.url()).pathname === "/api/v1/sources" && r.request().method() === "GET",
    );
    // Awaited below; a failure before then must not leave it rejecting unhandled.
    sourcesResponse.catch(() => {});
    await card.getByRole("link", { name: "webapp-requests" }).click();
    await page.waitForURL(/\/experiments\/\d+$/);
    const experimentId = new URL(page.url()).pathname.split("/").pop();

    const byTag = page.locator("section.card", { has: page.getByRole("heading", { name: "By tag", exact: true }) });
    await byTag.waitFor();
    // "endpoint" is the default grouping; choosing it again keeps the view.
    await byTag.getByLabel("Group by").selectOption("endpoint");
    const table = byTag.getByRole("table", { name: "execution_time by endpoint" });
    const rows = table.locator("tbody tr");
    await waitForRows(rows, (texts) => texts.length === 4, "the endpoint table does not show 4 rows");
    // The requests come with the client's address: the counts are visits and the distinct
    // addresses unique visitors (the demo's clients are 10.0.0.1 to 10.0.0.12).
    const headers = (await table.locator("thead th").allTextContents()).map((t) => t.replace(/[▲▼]/g, "").trim());
    check(headers[0] === "endpoint" && headers[1] === "Visits" && headers[2] === "Unique visitors", `the table's headers are ${JSON.stringify(headers)}`);
    const number = (text) => (/^\s*\d[\d,]*\s*$/.test(text) ? Number(text.replace(/[^\d]/g, "")) : NaN);
    const table4 = await rows.evaluateAll((trs) =>
      trs.map((tr) => ({
        value: tr.dataset.value,
        visits: tr.querySelector('td[data-stat="count"]')?.textContent ?? "",
        unique: tr.querySelector('td[data-stat="unique"]')?.textContent ?? "",
      })),
    );
    const endpoints = table4.map((r) => r.value).sort();
    check(JSON.stringify(endpoints) === JSON.stringify(["index", "login", "report", "search"]), `the endpoints shown are ${JSON.stringify(endpoints)}`);
    for (const r of table4) {
      const visits = number(r.visits);
      const unique = number(r.unique);
      check(visits > 0, `${r.value} has visits "${r.visits}"`);
      check(unique >= 1 && unique <= 12 && unique <= visits, `${r.value} has unique visitors "${r.unique}" (visits ${r.visits})`);
    }

    // A box per endpoint, drawn on a shared axis.
    const boxes = byTag.locator("section.bytag-section", {
      has: page.getByRole("heading", { name: "Distribution per endpoint", exact: true }),
    });
    await waitForRows(boxes.locator("figure.boxplot"), (texts) => texts.length === 4, "the boxplot does not show 4 endpoints");
    const drawn = await boxes.locator("svg.boxplot-svg").count();
    check(drawn === 4, `${drawn} of 4 endpoint boxes drawn`);

    // The busiest addresses, at most 20 listed.
    const ips = byTag.getByRole("list", { name: "Visits per IP" });
    await ips.locator("li").first().waitFor();
    const labels = await ips.locator(".bar-label").allTextContents();
    check(labels.length >= 1 && labels.length <= 20, `${labels.length} entries in Visits per IP`);
    check(labels.every((l) => /^10\.0\.0\.\d+$/.test(l.trim())), `Visits per IP lists ${JSON.stringify(labels.slice(0, 5))}`);

    // No sources in the demo: no Sources card.
    const sources = await sourcesResponse;
    check(sources.status() === 200, `GET ${sources.url()} answered ${sources.status()}`);
    check(new URL(sources.url()).searchParams.get("experiment_id") === experimentId, `the dashboard asked for the sources of ${sources.url()}`);
    const listed = await sources.json();
    check(Array.isArray(listed) && listed.length === 0, `the demo's experiment has sources: ${JSON.stringify(listed).slice(0, 200)}`);
    await page.waitForTimeout(300);
    check((await page.locator("#sources").count()) === 0, "the Sources card shows for an experiment without sources");
    check((await page.getByRole("heading", { name: "Sources", exact: true }).count()) === 0, "a Sources heading shows for an experiment without sources");
    await shot(page, "scientist-endpoints");

    // Leaving an endpoint out drops its row (and narrows the other views to the rest).
    await byTag.getByRole("group", { name: "Values of endpoint shown" }).getByLabel("report", { exact: true }).uncheck();
    const left = await waitForRows(rows, (texts) => texts.length === 3, "the table does not show 3 rows once report is left out");
    check((await table.locator('tbody tr[data-value="report"]').count()) === 0, `report is still in the table: ${JSON.stringify(left)}`);
    await boxes.locator("figure.boxplot").nth(2).waitFor();
    check((await boxes.locator("figure.boxplot").count()) === 3, "the boxplot still shows report");
    await ips.locator("li").first().waitFor();
    const visits = table4.map((r) => `${r.value} ${number(r.visits)}`).join(", ");
    return `${visits}; report left out, 3 rows; ${labels.length} IPs; no Sources card`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function adminAttachesSource() {
  const b = await openBrowser("admin-sources");
  let failureB = null;
  try {
    const { page } = b;
    // Adding a source checks it first; nothing listens on port 9 (discard), so the server
    // refuses with 422 and says why.
    b.allow("POST", "/api/v1/sources", 422);
    await signIn(page, "aalcorn");
    await signedInAs(page, "Allan Alcorn");
    await page.getByRole("link", { name: "Admin" }).click();
    await page.waitForURL(/\/admin\/users$/);
    await page.getByRole("link", { name: "Sources", exact: true }).click();
    await page.waitForURL(/\/admin\/sources$/);
    const form = page.locator("section.card", { has: page.getByRole("heading", { name: "Add a source", exact: true }) });
    await form.getByLabel("Experiment", { exact: true }).selectOption({ label: "webapp-requests" });
    await form.getByLabel("Kind", { exact: true }).selectOption("fmd");
    await form.getByLabel("URL", { exact: true }).fill("http://127.0.0.1:9/dashboard");
    await form.getByLabel("Secret", { exact: true }).fill("x");
    const refused = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/v1/sources" && r.request().method() === "POST");
    refused.catch(() => {});
    await form.getByRole("button", { name: "Add source" }).click();
    const answer = await refused;
    check(answer.status() === 422, `adding an unreachable source answered ${answer.status()}`);
    const alert = form.getByRole("alert");
    await alert.waitFor();
    const text = (await alert.textContent()).trim();
    check(/cannot reach/i.test(text), `the refusal says "${text}"`);
    // The form stays filled for another try.
    check((await form.getByLabel("URL", { exact: true }).inputValue()) === "http://127.0.0.1:9/dashboard", "the form lost the URL after the refusal");
    await form.getByRole("button", { name: "Add source" }).waitFor();

    // Nothing was attached: the list stays empty.
    const list = page.locator("section.card", { has: page.getByRole("heading", { name: "Sources", exact: true }) });
    await list.getByText("No sources yet.").waitFor();
    check((await page.locator("#sources-table").count()) === 0, "the sources table has rows after a refused source");
    await shot(page, "admin-sources");
    return `unreachable source refused ("${text}"), none listed`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

async function scientistAlertRule() {
  const b = await openBrowser("alerts");
  let failureB = null;
  try {
    const { page } = b;
    const name = "vibration high";
    await signIn(page, "phigg");
    await signedInAs(page, "Peter Higg");
    const card = page.locator(".experiment-card", { hasText: "device-vibrations" });
    await card.getByRole("link", { name: "device-vibrations" }).click();
    await page.waitForURL(/\/experiments\/\d+$/);
    const experimentId = new URL(page.url()).pathname.split("/").pop();
    const rulesPath = `/api/v1/experiments/${experimentId}/alert-rules`;

    // The demo has no rules: the card says so, with the button that opens the form.
    const rules = page.locator("section#alert-rules");
    await rules.getByRole("heading", { name: "Alert rules", exact: true }).waitFor();
    await rules.getByText("No alert rules yet.").waitFor();
    await rules.getByRole("button", { name: "New rule" }).click();
    const form = page.getByRole("dialog", { name: "New alert rule" });
    await form.getByLabel("Name", { exact: true }).fill(name);
    await form.getByLabel("Measure", { exact: true }).selectOption("hertz");
    await form.getByLabel("Kind", { exact: true }).selectOption("threshold");
    await form.getByLabel("Statistic", { exact: true }).selectOption("mean");
    await form.getByLabel("Window", { exact: true }).fill("5m");
    await form.getByLabel("Comparison", { exact: true }).selectOption(">");
    // The demo's values are about 110 Hz: the rule stays inactive.
    await form.getByLabel("Threshold", { exact: true }).fill("1000");
    await form.getByLabel("For", { exact: true }).fill("1m");
    await form.getByLabel("Interval", { exact: true }).fill("30s");
    const posted = page.waitForResponse((r) => new URL(r.url()).pathname === rulesPath && r.request().method() === "POST");
    posted.catch(() => {});
    await form.getByRole("button", { name: "Create rule" }).click();
    const createdAnswer = await posted;
    check(createdAnswer.status() === 201, `creating the rule answered ${createdAnswer.status()}`);
    const created = await createdAnswer.json();
    check(
      created.name === name && created.measure === "hertz" && created.statistic === "mean" && created.window === "5m" &&
        created.op === ">" && created.threshold === 1000 && created.for === "1m" && created.interval === "30s",
      `the rule made is ${JSON.stringify(created).slice(0, 300)}`,
    );
    await form.waitFor({ state: "detached" });

    // Listed, inactive once the server has evaluated it (at once, then every 30 s; the list
    // refreshes every 5 s).
    const row = page.locator("#alert-rules-table tbody tr", { hasText: name });
    await row.waitFor();
    const condition = (await row.locator("td.rule-condition").textContent()).trim();
    check(condition === "mean of hertz over 5m > 1000 for 1m", `the rule's condition reads "${condition}"`);
    await row.locator("td.rule-evaluated time").waitFor({ timeout: 10_000 });
    const state = await row.locator(".rule-state").getAttribute("data-state");
    check(state === "inactive", `the rule is ${state} at 1000 Hz`);
    // Its threshold is named on the hertz chart.
    await page.locator('.chart[data-measure="hertz"] .chart-rules li', { hasText: name }).waitFor();

    // Its history: nothing happened yet (no change, no notification).
    await row.getByRole("button", { name: `History of ${name}` }).click();
    const history = page.getByRole("dialog", { name: `History of ${name}` });
    await history.locator('.rule-history[data-state="ready"]').waitFor();
    const changes = await history.locator("#rule-events-table tbody tr").count();
    const notifications = await history.locator("#rule-notifications-table tbody tr").count();
    await history.getByRole("button", { name: "Close" }).click();
    await history.waitFor({ state: "detached" });

    // Edit the threshold below the demo's values (it will pend, then fire after 1 min: not
    // waited for). Only the changed field is sent.
    await row.getByRole("button", { name: `Edit ${name}` }).click();
    const edit = page.getByRole("dialog", { name: `Edit ${name}` });
    check((await edit.getByLabel("Threshold", { exact: true }).inputValue()) === "1000", "the edit form does not show the threshold 1000");
    await edit.getByLabel("Threshold", { exact: true }).fill("50");
    const patched = page.waitForResponse(
      (r) => new URL(r.url()).pathname === `${rulesPath}/${created.rule_id}` && r.request().method() === "PATCH",
    );
    patched.catch(() => {});
    await edit.getByRole("button", { name: "Save" }).click();
    const patchAnswer = await patched;
    check(patchAnswer.status() === 200, `changing the rule answered ${patchAnswer.status()}`);
    const sent = patchAnswer.request().postDataJSON();
    check(JSON.stringify(sent) === JSON.stringify({ threshold: 50 }), `the edit sent ${JSON.stringify(sent)}`);
    await edit.waitFor({ state: "detached" });
    await row.locator("td.rule-condition", { hasText: "> 50 for 1m" }).waitFor();
    await page.locator('.chart[data-measure="hertz"] .chart-rules li', { hasText: "> 50" }).waitFor();
    await shot(page, "scientist-alerts");

    // Deleted after confirming: the list is empty again.
    await row.getByRole("button", { name: `Delete ${name}` }).click();
    const confirm = page.getByRole("dialog", { name: "Delete the alert rule?" });
    const deleted = page.waitForResponse(
      (r) => new URL(r.url()).pathname === `${rulesPath}/${created.rule_id}` && r.request().method() === "DELETE",
    );
    deleted.catch(() => {});
    await confirm.getByRole("button", { name: "Delete", exact: true }).click();
    const deleteAnswer = await deleted;
    check(deleteAnswer.status() === 204, `deleting the rule answered ${deleteAnswer.status()}`);
    await confirm.waitFor({ state: "detached" });
    await rules.getByText("No alert rules yet.").waitFor();
    check((await page.locator("#alert-rules-table").count()) === 0, "the rules table still shows after deleting the only rule");
    check((await page.locator(".chart-rules").count()) === 0, "a chart still names the deleted rule's threshold");
    return `rule #${created.rule_id} made (inactive, ${changes} changes, ${notifications} notifications), threshold set to 50, deleted`;
  } catch (err) {
    failureB = err;
  } finally {
    await finish(b, failureB);
  }
}

/** Closes a scenario's browser; throws the scenario's error and the browser's problems. */
async function finish(b, failure = null) {
  // Let late responses and console messages arrive before judging.
  await b.page.waitForTimeout(300).catch(() => {});
  const problems = [...b.problems];
  await b.close();
  const parts = [];
  if (failure) parts.push(failure instanceof Error ? failure.message : String(failure));
  if (problems.length) parts.push(`browser problems:\n    ${problems.join("\n    ")}`);
  if (parts.length) throw new Error(parts.join("\n  "));
}

// ------------------------------------------------------------------ run

const scenarios = [
  ["1 scientist dashboard", scientistDashboard],
  ["2 admin creates and associates", adminCreatesAndAssociates],
  ["3 auditor filters the trail", auditorFilters],
  ["4 wrong password and sign out", wrongPasswordAndSignOut],
  ["5 admin manages users, ingest tokens and a personal token", adminManages],
  ["6 the API documentation under its policy", apiDocumentation],
  ["7 scientist reads requests per endpoint", scientistEndpoints],
  ["8 admin attaches a source", adminAttachesSource],
  ["9 scientist makes an alert rule", scientistAlertRule],
];

let failed = 0;
for (const [name, run] of scenarios) {
  const started = Date.now();
  try {
    const detail = await run();
    console.log(`PASS ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${detail}`);
  } catch (err) {
    failed++;
    const message = (err instanceof Error ? err.message : String(err)).replace(/\x1b\[[0-9;]*m/g, "");
    const lines = message.split("\n");
    const shown = lines.length > 12 ? [...lines.slice(0, 12), `    … (${lines.length - 12} more lines)`] : lines;
    console.log(`FAIL ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${shown.join("\n")}`);
  }
}
rmSync(profileRoot, { recursive: true, force: true });
console.log(failed ? `${failed} of ${scenarios.length} scenarios failed; screenshots in ${outDir}` : `all ${scenarios.length} scenarios passed; screenshots in ${outDir}`);
process.exit(failed ? 1 : 0);
