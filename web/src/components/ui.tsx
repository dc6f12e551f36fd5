// Shared bits: links, alerts, loading and empty states, tables, dialogs, copy buttons.

import type { AnchorHTMLAttributes, ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { navigate } from "../lib/router";

/** An in-app link: a real <a href>, handled by the History API on plain clicks. */
export function Link(props: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { href, onClick, ...rest } = props;
  return (
    <a
      href={href}
      {...rest}
      onClick={(event) => {
        onClick?.(event as never);
        if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(href);
      }}
    />
  );
}

export function Alert({ message, kind = "error" }: { message: string | null | undefined; kind?: "error" | "warning" }) {
  if (!message) return null;
  return (
    <div class={`alert alert-${kind}`} role="alert">
      {message}
    </div>
  );
}

export function Notice({ children, kind = "info" }: { children: ComponentChildren; kind?: "info" | "success" | "warning" }) {
  return (
    <div class={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** A fetched list in its states: the error, loading, an empty message, or the rows (in a
 * horizontally scrolling wrapper, for tables at phone width). */
export function ListOf<T>({
  fetched,
  empty,
  children,
}: {
  fetched: { data: T[] | undefined; error: string | null; loading: boolean };
  empty: string;
  children: (rows: T[]) => ComponentChildren;
}) {
  const rows = fetched.data;
  return (
    <>
      <Alert message={fetched.error} />
      {fetched.loading && !rows && <Loading />}
      {rows && rows.length === 0 && <Empty>{empty}</Empty>}
      {rows && rows.length > 0 && <div class="table-wrap">{children(rows)}</div>}
    </>
  );
}

export interface Column<T> {
  /** The header's text. */
  header: ComponentChildren;
  cell: (row: T) => ComponentChildren;
  /** Classes of the body cells ("num", "mono", "nowrap"…); "num" also aligns the header. */
  class?: string;
  /** A tooltip of the body cell (the whole of a shortened text). */
  title?: (row: T) => string | undefined;
}

export interface DataTableProps<T> {
  fetched: { data: T[] | undefined; error: string | null; loading: boolean };
  /** What an empty list says. */
  empty: string;
  columns: Column<T>[];
  rowKey: (row: T) => string | number;
  /** The buttons of a row, in a last column headed "Actions" for screen readers. */
  actions?: (row: T) => ComponentChildren;
  rowClass?: (row: T) => string | undefined;
  id?: string;
  class?: string;
}

/** A fetched list as a table (in ListOf's loading, error and empty states). */
export function DataTable<T>(props: DataTableProps<T>) {
  return (
    <ListOf fetched={props.fetched} empty={props.empty}>
      {(rows) => (
        <table class={props.class ? `data ${props.class}` : "data"} id={props.id}>
          <thead>
            <tr>
              {props.columns.map((c, i) => (
                <th scope="col" key={i} class={c.class?.split(" ").includes("num") ? "num" : undefined}>
                  {c.header}
                </th>
              ))}
              {props.actions && (
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={props.rowKey(row)} class={props.rowClass?.(row)}>
                {props.columns.map((c, i) => (
                  <td key={i} class={c.class} title={c.title?.(row)}>
                    {c.cell(row)}
                  </td>
                ))}
                {props.actions && <td class="actions">{props.actions(row)}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </ListOf>
  );
}

export function Card(props: { title?: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren; class?: string; id?: string }) {
  return (
    <section class={`card ${props.class ?? ""}`} id={props.id}>
      {(props.title || props.actions) && (
        <header class="card-head">
          {props.title && <h2>{props.title}</h2>}
          {props.actions && <div class="card-actions">{props.actions}</div>}
        </header>
      )}
      {props.children}
    </section>
  );
}

const FOCUSABLE = "input:not([disabled]), select:not([disabled]), textarea:not([disabled]), button:not([disabled]), a[href]";

/** A modal dialog (native <dialog>): focuses its first control, closes with Escape. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement as HTMLElement | null;
    if (!dialog.open) dialog.showModal();
    const first = dialog.querySelector<HTMLElement>(`.dialog-body ${FOCUSABLE}`) ?? dialog.querySelector<HTMLElement>(FOCUSABLE);
    first?.focus();
    const cancel = (event: Event) => {
      event.preventDefault();
      onClose.current();
    };
    dialog.addEventListener("cancel", cancel);
    return () => {
      dialog.removeEventListener("cancel", cancel);
      if (dialog.open) dialog.close();
      opener?.focus?.();
    };
  }, []);
  return (
    <dialog ref={ref} class={props.wide ? "dialog wide" : "dialog"} aria-labelledby="dialog-title">
      <h2 id="dialog-title">{props.title}</h2>
      <div class="dialog-body">{props.children}</div>
    </dialog>
  );
}

/** A confirmation: the question, Cancel and a confirm button; shows the action's error. */
export function ConfirmDialog(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <div class="dialog-text">{props.children}</div>
      <Alert message={error} />
      <div class="dialog-buttons">
        <button type="button" class="btn" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? "btn btn-danger" : "btn btn-primary"}
          disabled={pending}
          onClick={async () => {
            setPending(true);
            setError(null);
            try {
              await props.onConfirm();
              props.onClose();
            } catch (err) {
              setError(err instanceof Error ? err.message : String(err));
              setPending(false);
            }
          }}
        >
          {props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

/** Copies text to the clipboard, or selects it for the user to copy when that is refused. */
export async function copyText(text: string, fallback: HTMLElement | null): Promise<boolean> {
  try {
    if (!navigator.clipboard) throw new Error("no clipboard");
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallback) {
      const selection = window.getSelection();
      const range = document.createRange();
      range.selectNodeContents(fallback);
      selection?.removeAllRanges();
      selection?.addRange(range);
    }
    return false;
  }
}

/** A code block with a "Copy" button. */
export function CopyBlock({ text, label }: { text: string; label: string }) {
  const ref = useRef<HTMLPreElement>(null);
  const [status, setStatus] = useState<string>("");
  return (
    <div class="copy-block">
      <pre ref={ref} aria-label={label} tabIndex={0}>
        <code>{text}</code>
      </pre>
      <div class="copy-row">
        <button
          type="button"
          class="btn btn-small"
          onClick={async () => {
            const copied = await copyText(text, ref.current);
            setStatus(copied ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy");
          }}
        >
          Copy
        </button>
        <span class="muted" role="status" aria-live="polite">
          {status}
        </span>
      </div>
    </div>
  );
}

/** A labelled form field (label above the control). */
export function Field(props: { id: string; label: string; children: ComponentChildren; hint?: ComponentChildren }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && <div class="hint">{props.hint}</div>}
    </div>
  );
}

export function Brand() {
  return (
    <span class="brand">
      <img src="/favicon.svg" alt="" width={24} height={24} />
      <span>MyMonit</span>
    </span>
  );
}
