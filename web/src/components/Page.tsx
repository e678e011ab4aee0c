import { useEffect, useId, type ReactNode } from 'react';
import { useLocation } from 'react-router';

/** The page's title (also the document's), and its actions. */
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

/** A card with a heading. `id` names the heading as a link's target (`#id`): it can take focus, for `useHashTarget`. */
export function Section({ title, actions, children, id }: { title: string; actions?: ReactNode; children: ReactNode; id?: string }) {
  const h = useId();
  return (
    <section className="card" aria-labelledby={id ?? h}>
      <div className="section-header">
        <h2 id={id ?? h} tabIndex={id ? -1 : undefined}>
          {title}
        </h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/**
 * Brings what a link's `#id` names (a `Section` with that id) into view and
 * gives it focus, so keyboard and screen-reader users land there too: a
 * route change within the portal does neither by itself.
 */
export function useHashTarget() {
  const { hash } = useLocation();
  useEffect(() => {
    if (hash.length < 2) return;
    const target = document.getElementById(decodeURIComponent(hash.slice(1)));
    if (!target) return;
    target.scrollIntoView({ block: 'start' });
    target.focus({ preventScroll: true });
  }, [hash]);
}
