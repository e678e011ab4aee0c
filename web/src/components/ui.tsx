import { useEffect, useId, useRef, useState, type ButtonHTMLAttributes, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from 'react';
import { errorText } from '../api/client.ts';
import type { Loadable } from '../api/viewModel.ts';
import { ago, dateTime } from '../format.ts';

type Variant = 'primary' | 'secondary' | 'danger' | 'ghost';

export function Button({ variant = 'secondary', busy, children, ...rest }: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant; busy?: boolean }) {
  return (
    <button type="button" {...rest} className={`btn btn-${variant} ${rest.className ?? ''}`} disabled={rest.disabled || busy} aria-busy={busy || undefined}>
      {busy ? <span className="spinner" aria-hidden="true" /> : null}
      {children}
    </button>
  );
}

export function PageHeader({ title, subtitle, actions }: { title: ReactNode; subtitle?: ReactNode; actions?: ReactNode }) {
  useEffect(() => {
    if (typeof title === 'string') document.title = `${title} · Atrium`;
  }, [title]);
  return (
    <div className="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle ? <p className="subtitle">{subtitle}</p> : null}
      </div>
      {actions ? <div className="actions">{actions}</div> : null}
    </div>
  );
}

export function Section({ title, actions, children, id }: { title: string; actions?: ReactNode; children: ReactNode; id?: string }) {
  const h = useId();
  return (
    <section className="card" aria-labelledby={id ?? h}>
      <div className="section-header">
        <h2 id={id ?? h}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** An API error body's message (or why the API was unreachable), announced to screen readers. */
export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <div className="note note-error" role="alert">
      {title ? <strong>{title} </strong> : null}
      {errorText(error)}
    </div>
  );
}

export function Notice({ children, tone = 'info' }: { children: ReactNode; tone?: 'info' | 'success' | 'warning' }) {
  return (
    <div className={`note note-${tone}`} role="status">
      {children}
    </div>
  );
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty">
      <svg viewBox="0 0 48 48" width="48" height="48" aria-hidden="true">
        <rect x="6" y="10" width="36" height="28" rx="5" fill="none" stroke="currentColor" strokeWidth="2.5" />
        <path d="M6 18h36" stroke="currentColor" strokeWidth="2.5" />
      </svg>
      <h2>{title}</h2>
      {children ? <p>{children}</p> : null}
      {action}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> {label}
    </div>
  );
}

const PHASE_TONE: Record<string, string> = {
  running: 'ok',
  starting: 'busy',
  pending: 'busy',
  stopping: 'busy',
  stopped: 'idle',
  failed: 'bad',
};

export function PhaseBadge({ phase, desired }: { phase: string; desired?: string }) {
  const tone = desired === 'deleted' ? 'busy' : (PHASE_TONE[phase] ?? 'idle');
  const label = desired === 'deleted' ? 'deleting' : phase;
  return (
    <span className={`badge badge-${tone}`}>
      <span className="dot" aria-hidden="true" />
      {label}
    </span>
  );
}

export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: ReactNode;
  error?: string | undefined;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const describedBy = [hint ? hintId : '', error ? errId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, ...(describedBy ? { 'aria-describedby': describedBy } : {}), ...(error ? { 'aria-invalid': true } : {}) })}
      {hint ? (
        <div className="hint" id={hintId}>
          {hint}
        </div>
      ) : null}
      {error ? (
        <div className="field-error" id={errId}>
          {error}
        </div>
      ) : null}
    </div>
  );
}

export function TextInput(props: InputHTMLAttributes<HTMLInputElement>) {
  return <input type="text" {...props} className={`input ${props.className ?? ''}`} />;
}

export function Select(props: SelectHTMLAttributes<HTMLSelectElement>) {
  return <select {...props} className={`input ${props.className ?? ''}`} />;
}

/**
 * A modal dialog on the native `<dialog>`: focus moves in and is trapped,
 * Escape closes, focus returns to what opened it.
 */
export function Dialog({ open, onClose, title, children, wide }: { open: boolean; onClose: () => void; title: string; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      d.showModal();
      // showModal focuses the first focusable element (the close button); people expect to type into the form
      (d.querySelector<HTMLElement>('[data-autofocus]') ?? d.querySelector<HTMLElement>('input:not([disabled]):not([type=hidden]), select, textarea'))?.focus();
    }
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className={`dialog ${wide ? 'dialog-wide' : ''}`} aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      {open ? (
        <>
          <div className="dialog-header">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="icon-btn" onClick={onClose} aria-label="Close">
              ×
            </button>
          </div>
          {children}
        </>
      ) : null}
    </dialog>
  );
}

/** The footer of a form in a dialog: Cancel, and the form's submit button. */
export function FormActions({ submit, busy, disabled, onCancel }: { submit: string; busy: boolean; disabled?: boolean; onCancel: () => void }) {
  return (
    <div className="dialog-actions">
      <Button onClick={onCancel}>Cancel</Button>
      <Button type="submit" variant="primary" busy={busy} disabled={disabled}>
        {submit}
      </Button>
    </div>
  );
}

/** Asks before something that cannot be undone; shows the API's refusal in place if it fails. */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (open) setError(null);
  }, [open]);
  return (
    <Dialog open={open} onClose={onClose} title={title}>
      <div className="dialog-body">{children}</div>
      <ErrorNote error={error} />
      <div className="dialog-actions">
        <Button onClick={onClose} data-autofocus>
          Cancel
        </Button>
        <Button
          variant="danger"
          busy={busy}
          onClick={async () => {
            setBusy(true);
            setError(null);
            try {
              await onConfirm();
              onClose();
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          {confirmLabel}
        </Button>
      </div>
    </Dialog>
  );
}

/** A value to copy (a command, a token): selectable text and a copy button that says when it worked. */
export function CopyField({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="copy-field">
      <code tabIndex={0}>
        {value}
      </code>
      <Button
        variant="ghost"
        onClick={async () => {
          await navigator.clipboard.writeText(value).catch(() => undefined);
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        }}
        aria-label={`Copy ${label}`}
      >
        {copied ? 'Copied' : 'Copy'}
      </Button>
    </div>
  );
}

/** One quota line: used of limit as a bar, with the numbers in words for screen readers. */
export function QuotaBar({ label, used, limit, usedText, limitText }: { label: string; used: number; limit: number; usedText: string; limitText: string }) {
  const pct = limit > 0 ? Math.min(100, (used / limit) * 100) : used > 0 ? 100 : 0;
  const tone = pct >= 100 ? 'full' : pct >= 80 ? 'high' : 'ok';
  return (
    <div className="quota">
      <div className="quota-label">
        <span>{label}</span>
        <span className="quota-figures">
          {usedText} of {limitText}
        </span>
      </div>
      <div
        className={`bar bar-${tone}`}
        role="meter"
        aria-label={`${label}: ${usedText} of ${limitText} used`}
        aria-valuemin={0}
        aria-valuemax={limit}
        aria-valuenow={Math.min(used, limit)}
      >
        <div className="bar-fill" style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

/**
 * A table's header row. Roles are explicit (here and on rows and cells)
 * because phones show tables as cards (`display: block`), which drops the
 * implied table semantics in some browsers. `actions` adds the row-actions
 * column, named for screen readers only.
 */
export function TableHead({ columns, actions }: { columns: Array<string | { label: string; className: string }>; actions?: boolean }) {
  return (
    <thead role="rowgroup">
      <tr role="row">
        {columns.map((c) => {
          const { label, className } = typeof c === 'string' ? { label: c, className: undefined } : c;
          return (
            <th key={label} role="columnheader" scope="col" className={className}>
              {label}
            </th>
          );
        })}
        {actions ? (
          <th role="columnheader" scope="col">
            <span className="sr-only">Actions</span>
          </th>
        ) : null}
      </tr>
    </thead>
  );
}

/** What a view shows for a Loadable: `children` with the data once it is there, a spinner meanwhile, why not otherwise. */
export function Loaded<T>({ value, loading, failed, children }: { value: Loadable<T>; loading: string; failed: string; children: (data: T) => ReactNode }) {
  if (value.data !== undefined) return <>{children(value.data)}</>;
  if (value.pending) return <Loading label={loading} />;
  return <ErrorNote error={value.error} title={failed} />;
}

/** A moment as "3 minutes ago", with the exact date and time on hover and for machines. */
export function Ago({ at }: { at: string }) {
  return (
    <time dateTime={at} title={dateTime(at)}>
      {ago(at)}
    </time>
  );
}

/** The last cell of a table row: the row's buttons, labelled for the card layout on phones. */
export function ActionsCell({ children }: { children: ReactNode }) {
  return (
    <td role="cell" className="row-actions-cell" data-label="Actions">
      <div className="row-actions">{children}</div>
    </td>
  );
}
