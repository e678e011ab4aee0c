import { useEffect, useId, type ReactNode } from 'react';

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
