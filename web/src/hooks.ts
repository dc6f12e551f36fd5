// Small hooks: fetch with abort and reload, the element width, the session context.

import { createContext, type RefObject } from "preact";
import { useCallback, useContext, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, errorMessage, isAbort } from "./lib/api";
import type { User } from "./lib/types";

export interface SessionContextValue {
  user: User;
  signOut: () => Promise<void>;
  /** Ends the session locally with a message for the sign-in page. */
  endSession: (message: string) => void;
}

export const SessionContext = createContext<SessionContextValue | null>(null);

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside a session");
  return value;
}

export interface Fetched<T> {
  data: T | undefined;
  error: string | null;
  /** The HTTP status of the failure (0: the server was not reached), null without one. */
  errorStatus: number | null;
  loading: boolean;
  reload: () => void;
}

/** GETs an API path (null: nothing to fetch); aborts the previous request when it changes. */
export function useApi<T>(path: string | null): Fetched<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [errorStatus, setErrorStatus] = useState<number | null>(null);
  const [loading, setLoading] = useState(path !== null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) {
      setLoading(false);
      return;
    }
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    setErrorStatus(null);
    api.get<T>(path, undefined, controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setLoading(false);
      },
      (err: unknown) => {
        if (isAbort(err) || controller.signal.aborted) return;
        setError(errorMessage(err));
        setErrorStatus(err instanceof ApiError ? err.status : null);
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, errorStatus, loading, reload };
}

/** Calls `callback` every `ms` milliseconds while the page is visible (null: never); stops on
 * unmount. For light polling of lists that change on the server's side. */
export function useInterval(callback: () => void, ms: number | null): void {
  const latest = useRef(callback);
  latest.current = callback;
  useEffect(() => {
    if (ms === null) return;
    const timer = window.setInterval(() => {
      if (document.visibilityState !== "hidden") latest.current();
    }, ms);
    return () => window.clearInterval(timer);
  }, [ms]);
}

/** The content width of an element, rounded to `step` pixels, kept up to date. */
export function useWidth<E extends HTMLElement>(step = 1): [RefObject<E | null>, number] {
  const ref = useRef<E>(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => {
      const w = Math.floor(el.clientWidth / step) * step;
      setWidth((old) => (old === w ? old : w));
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [step]);
  return [ref, width];
}

/** Runs an async action, keeping its pending state and error message. */
export function useAction(): {
  pending: boolean;
  error: string | null;
  setError: (e: string | null) => void;
  run: <T>(action: () => Promise<T>) => Promise<T | undefined>;
} {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const run = useCallback(async <T,>(action: () => Promise<T>) => {
    setPending(true);
    setError(null);
    try {
      return await action();
    } catch (err) {
      if (mounted.current) setError(errorMessage(err));
      return undefined;
    } finally {
      if (mounted.current) setPending(false);
    }
  }, []);
  return { pending, error, setError, run };
}

/** Sets the document title. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · MyMonit` : "MyMonit";
  }, [title]);
}
