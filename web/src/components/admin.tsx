// The forms of the admin tabs: a card with a create form and a dialog with an edit form. With
// ui's DataTable, a tab is then its fields, its columns and its requests.

import type { ComponentChildren } from "preact";
import { useAction } from "../hooks";
import { errorMessage } from "../lib/api";
import { Alert, Card, Dialog, Notice } from "./ui";

export interface CreateCardProps<T> {
  title: string;
  submitLabel: string;
  /** The button's label while the request runs (for requests the server takes time over). */
  busyLabel?: string;
  /** The request. What it throws, a refusal or a check of the form, shows in the card. */
  submit: () => Promise<T>;
  /** The created thing: reset the fields, tell the user, reload the list. */
  onCreated: (created: T) => void;
  /** Called before each attempt, to clear an earlier notice. */
  onSubmit?: () => void;
  /** The form's fields. */
  children: ComponentChildren;
  /** One row of fields ending with the button (hints hidden), or a grid of fields with hints. */
  layout?: "inline" | "grid";
  /** A sentence above the form. */
  intro?: ComponentChildren;
  /** Why the form's choices could not be loaded. */
  loadError?: string | null;
  /** A success message shown under the form. */
  notice?: string | null;
}

/** A card with a create form: its fields, a submit button disabled while the request runs,
 * the refusal in an alert, and an optional success notice. */
export function CreateCard<T>(props: CreateCardProps<T>) {
  const action = useAction();
  const grid = props.layout === "grid";
  const button = (
    <button type="submit" class="btn btn-primary" disabled={action.pending}>
      {action.pending && props.busyLabel ? props.busyLabel : props.submitLabel}
    </button>
  );
  return (
    <Card title={props.title}>
      {props.intro}
      <Alert message={props.loadError} />
      <form
        class={grid ? "form-grid" : "inline-form"}
        aria-busy={action.pending}
        onSubmit={async (e) => {
          e.preventDefault();
          props.onSubmit?.();
          const created = await action.run(props.submit);
          if (created !== undefined) props.onCreated(created);
        }}
      >
        {props.children}
        {grid ? <div class="form-actions">{button}</div> : button}
      </form>
      <Alert message={action.error} />
      {props.notice && <Notice kind="success">{props.notice}</Notice>}
    </Card>
  );
}

export interface FormDialogProps<T> {
  title: string;
  /** The submit button's label ("Save", "Rename"…). */
  submitLabel: string;
  /** The request, or null when nothing changed (the dialog just closes). What it throws
   * shows in the dialog, which stays open. */
  submit: () => Promise<T> | null;
  onSaved: (saved: T) => void;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
}

/** A modal edit form: its fields, the refusal, Cancel and the submit button. */
export function FormDialog<T>(props: FormDialogProps<T>) {
  const action = useAction();
  return (
    <Dialog title={props.title} onClose={props.onClose} wide={props.wide}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          let request: Promise<T> | null;
          try {
            request = props.submit();
          } catch (err) {
            action.setError(errorMessage(err));
            return;
          }
          if (request === null) {
            props.onClose();
            return;
          }
          const started = request;
          const saved = await action.run(() => started);
          if (saved !== undefined) props.onSaved(saved);
        }}
      >
        {props.children}
        <Alert message={action.error} />
        <div class="dialog-buttons">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={action.pending}>
            {props.submitLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
