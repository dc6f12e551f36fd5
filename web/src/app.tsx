// The shell: session restore, sign-in, the header, and the page for the current path.

import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { Alert, Brand, Link, Loading } from "./components/ui";
import { SessionContext, useSession, type SessionContextValue } from "./hooks";
import { api, errorMessage } from "./lib/api";
import { homeOf, matchRoute, mayOpen, navFor, navigate, onNavigate } from "./lib/router";
import type { User } from "./lib/types";
import { AdminPage } from "./pages/admin/index";
import { AuditPage } from "./pages/audit";
import { DashboardPage } from "./pages/dashboard";
import { OverviewPage } from "./pages/overview";
import { SettingsPage } from "./pages/settings";
import { SignInPage } from "./pages/signin";

type State =
  | { status: "loading" }
  | { status: "unavailable"; error: string }
  | { status: "signed-out"; message?: string }
  | { status: "signed-in"; user: User };

const ROLE_LABEL: Record<User["role"], string> = { ADMIN: "Admin", SCIENTIST: "Scientist", AUDITOR: "Auditor" };

export function App() {
  const [state, setState] = useState<State>({ status: "loading" });
  const [path, setPath] = useState(location.pathname);

  useEffect(() => onNavigate(() => setPath(location.pathname)), []);

  const restore = useCallback(() => {
    setState({ status: "loading" });
    api.restoreSession().then(
      (session) => setState(session ? { status: "signed-in", user: session.user } : { status: "signed-out" }),
      (err) => setState({ status: "unavailable", error: errorMessage(err) }),
    );
  }, []);

  useEffect(() => {
    api.onUnauthorized = () => setState({ status: "signed-out", message: "Your session ended: sign in again" });
    restore();
  }, [restore]);

  const session = useMemo<SessionContextValue | null>(() => {
    if (state.status !== "signed-in") return null;
    return {
      user: state.user,
      signOut: async () => {
        await api.signOut();
        setState({ status: "signed-out", message: "You signed out." });
        navigate("/", true);
      },
      endSession: (message: string) => {
        api.setCsrfToken(null);
        setState({ status: "signed-out", message });
      },
    };
  }, [state]);

  if (state.status === "loading") {
    return (
      <main class="center-page">
        <Loading label="Starting MyMonit…" />
      </main>
    );
  }
  if (state.status === "unavailable") {
    return (
      <main class="center-page">
        <div class="signin-card">
          <Brand />
          <Alert message={`MyMonit is not reachable: ${state.error}`} />
          <button type="button" class="btn btn-primary" onClick={restore}>
            Try again
          </button>
        </div>
      </main>
    );
  }
  if (state.status === "signed-out" || !session) {
    return (
      <SignInPage
        message={state.status === "signed-out" ? state.message : undefined}
        onSignedIn={(user) => {
          setState({ status: "signed-in", user });
          const route = matchRoute(location.pathname);
          if (!mayOpen(user.role, route.page) || route.page === "not-found") navigate(homeOf(user.role), true);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Shell path={path} />
    </SessionContext.Provider>
  );
}

function Shell({ path }: { path: string }) {
  const session = useSession();
  const { user } = session;
  const route = matchRoute(path);
  const [signOutError, setSignOutError] = useState<string | null>(null);

  // An auditor opening "/" goes to the audit trail; other roles' home is the overview.
  useEffect(() => {
    if (route.page === "overview" && !mayOpen(user.role, "overview")) navigate(homeOf(user.role), true);
  }, [route.page, user.role]);

  useEffect(() => {
    window.scrollTo(0, 0);
  }, [path]);

  let page;
  if (!mayOpen(user.role, route.page)) {
    page = (
      <div class="page">
        <h1>Not available</h1>
        <p>
          {route.page === "dashboard" && user.role === "ADMIN"
            ? "Admins manage experiments but cannot read their measures (separation of duties)."
            : `This page is not available to the ${ROLE_LABEL[user.role].toLowerCase()} role.`}
        </p>
        <Link href={homeOf(user.role)} class="btn">
          Go to your home page
        </Link>
      </div>
    );
  } else {
    switch (route.page) {
      case "overview":
        page = <OverviewPage />;
        break;
      case "dashboard":
        page = <DashboardPage key={route.experimentId} experimentId={route.experimentId} />;
        break;
      case "admin":
        page = <AdminPage tab={route.tab} />;
        break;
      case "audit":
        page = <AuditPage />;
        break;
      case "settings":
        page = <SettingsPage />;
        break;
      default:
        page = (
          <div class="page">
            <h1>Page not found</h1>
            <p>
              There is no page at <code>{route.path}</code>.
            </p>
            <Link href={homeOf(user.role)} class="btn">
              Go to your home page
            </Link>
          </div>
        );
    }
  }

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link href={homeOf(user.role)} class="brand-link" aria-label="MyMonit home">
          <Brand />
        </Link>
        <nav aria-label="Main">
          <ul>
            {navFor(user.role).map((link) => (
              <li key={link.path}>
                <Link href={link.path} aria-current={route.page === link.page ? "page" : undefined}>
                  {link.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class="who-name">{user.name}</span>
          <span class={`role role-${user.role.toLowerCase()}`}>{ROLE_LABEL[user.role]}</span>
          <button
            type="button"
            class="btn btn-small"
            onClick={async () => {
              setSignOutError(null);
              try {
                await session.signOut();
              } catch (err) {
                setSignOutError(errorMessage(err));
              }
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      {signOutError && (
        <div class="page">
          <Alert message={`Signing out failed: ${signOutError}`} />
        </div>
      )}
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
