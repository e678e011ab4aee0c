import type { ReactNode } from 'react';
import { errorText } from '../api/client.ts';
import type { Loadable } from '../api/viewModel.ts';

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

/** What a view shows for a Loadable: `children` with the data once it is there, a spinner meanwhile, why not otherwise. */
export function Loaded<T>({ value, loading, failed, children }: { value: Loadable<T>; loading: string; failed: string; children: (data: T) => ReactNode }) {
  if (value.data !== undefined) return <>{children(value.data)}</>;
  if (value.pending) return <Loading label={loading} />;
  return <ErrorNote error={value.error} title={failed} />;
}
