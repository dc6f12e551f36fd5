// A tiny History-API router: paths to pages, and which role may open which page.

import type { Role } from "./types";

export type AdminTab = "users" | "experiments" | "associations" | "measure-types" | "ingest-tokens" | "sources";
export const ADMIN_TABS: { id: AdminTab; label: string }[] = [
  { id: "users", label: "Users" },
  { id: "experiments", label: "Experiments" },
  { id: "associations", label: "Associations" },
  { id: "measure-types", label: "Measure types" },
  { id: "ingest-tokens", label: "Ingest tokens" },
  { id: "sources", label: "Sources" },
];

export type Route =
  | { page: "overview" }
  | { page: "dashboard"; experimentId: number }
  | { page: "admin"; tab: AdminTab }
  | { page: "audit" }
  | { page: "settings" }
  | { page: "not-found"; path: string };

/** The route of a path (query and hash ignored, trailing slash tolerated). */
export function matchRoute(path: string): Route {
  const bare = (path.split(/[?#]/)[0] || "/").replace(/\/+$/, "") || "/";
  if (bare === "/") return { page: "overview" };
  let m = /^\/experiments\/(\d+)$/.exec(bare);
  if (m) return { page: "dashboard", experimentId: Number(m[1]) };
  if (bare === "/admin") return { page: "admin", tab: "users" };
  m = /^\/admin\/([a-z-]+)$/.exec(bare);
  if (m && ADMIN_TABS.some((t) => t.id === m![1])) return { page: "admin", tab: m[1] as AdminTab };
  if (bare === "/audit") return { page: "audit" };
  if (bare === "/settings") return { page: "settings" };
  return { page: "not-found", path: bare };
}

export type Page = Route["page"];

const PAGES: Record<Role, Page[]> = {
  ADMIN: ["overview", "admin", "settings"],
  SCIENTIST: ["overview", "dashboard", "settings"],
  AUDITOR: ["audit", "settings"],
};

/** Whether a role may open a page (the server enforces the same through its permissions). */
export function mayOpen(role: Role, page: Page): boolean {
  return page === "not-found" || PAGES[role].includes(page);
}

/** Where a role starts. */
export function homeOf(role: Role): string {
  return role === "AUDITOR" ? "/audit" : "/";
}

/** The header's links for a role. */
export function navFor(role: Role): { path: string; label: string; page: Page }[] {
  const links: { path: string; label: string; page: Page }[] = [];
  if (mayOpen(role, "overview")) links.push({ path: "/", label: "Overview", page: "overview" });
  if (mayOpen(role, "admin")) links.push({ path: "/admin/users", label: "Admin", page: "admin" });
  if (mayOpen(role, "audit")) links.push({ path: "/audit", label: "Audit", page: "audit" });
  links.push({ path: "/settings", label: "Settings", page: "settings" });
  return links;
}

type Listener = () => void;
const listeners = new Set<Listener>();

/** Goes to a path within the app (pushState) and tells the listeners. */
export function navigate(path: string, replace = false): void {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  listeners.forEach((l) => l());
}

export function onNavigate(listener: Listener): () => void {
  listeners.add(listener);
  const pop = () => listener();
  window.addEventListener("popstate", pop);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("popstate", pop);
  };
}
