import { Fragment, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import type { AuditView } from '../../api/types.ts';
import { Button, EmptyState, ErrorNote, Field, Loading, Section, Table, TextInput, type Column } from '../../components/ui.tsx';
import { ago, dateTime, plural } from '../../format.ts';
import { FILTER_KEYS, filtersSearch, fromLocalInput, toLocalInput, type AuditFilters } from './auditFilters.ts';

export interface AuditPageViewProps {
  /** every loaded entry, newest first; undefined while the first page loads */
  entries: AuditView[] | undefined;
  error: unknown;
  filters: AuditFilters;
  hasMore: boolean;
  loadingMore: boolean;
  refreshing: boolean;
  onLoadMore: () => void;
  onRefresh: () => void;
  onFilter: (filters: AuditFilters) => void;
}

export function AuditPageView({ entries, error, filters, hasMore, loadingMore, refreshing, onLoadMore, onRefresh, onFilter }: AuditPageViewProps) {
  const filtered = FILTER_KEYS.some((k) => filters[k]);
  return (
    <Section
      title="Audit log"
      actions={
        <Button className="btn-small" onClick={onRefresh} busy={refreshing}>
          Refresh
        </Button>
      }
    >
      <p className="muted admin-intro">Every change made through Atrium and every refusal, newest first: who, what, on which target, and how it ended.</p>
      {/* a new address (a link, Clear, back) starts the form over from it */}
      <FilterForm key={filtersSearch(filters)} filters={filters} onFilter={onFilter} />
      <ErrorNote error={error} />
      {entries === undefined && !error ? <Loading label="Loading the audit log…" /> : null}
      {entries && entries.length === 0 ? (
        filtered ? (
          <EmptyState title="No entries match these filters" action={<Button onClick={() => onFilter({})}>Clear filters</Button>}>
            Actor and target must match exactly; action matches its beginning, so <code>workspace.</code> finds every workspace action.
          </EmptyState>
        ) : (
          <EmptyState title="The audit log is empty">Changes and refusals appear here as soon as someone signs in or changes something.</EmptyState>
        )
      ) : null}
      {entries && entries.length > 0 ? (
        <>
          <Table className="admin-audit" caption="Audit log entries" columns={auditColumns(filters)} rows={entries} rowKey={(e) => e.id} />
          <div className="admin-more">
            <p className="muted" aria-live="polite">
              {hasMore ? `Showing the latest ${plural(entries.length, 'entry', 'entries')}` : `All ${plural(entries.length, 'entry', 'entries')}`}
              {filtered ? ' matching the filters' : ''}.
            </p>
            {hasMore ? (
              <Button onClick={onLoadMore} busy={loadingMore}>
                Load more
              </Button>
            ) : null}
          </div>
        </>
      ) : null}
    </Section>
  );
}

function auditColumns(filters: AuditFilters): Array<Column<AuditView>> {
  return [
    {
      key: 'time',
      header: 'Time',
      cellClassName: 'cell-main',
      cell: (e) => (
        <>
          <time dateTime={e.at} className="cell-title admin-nowrap">
            {dateTime(e.at)}
          </time>
          <div className="cell-sub">{ago(e.at)}</div>
        </>
      ),
    },
    {
      key: 'actor',
      header: 'Actor',
      cell: (e) => (
        <Link to={filtersSearch({ ...filters, actor: e.actor })} title={`Only entries by ${e.actor}`}>
          {e.actor}
        </Link>
      ),
    },
    { key: 'action', header: 'Action', cell: (e) => <code>{e.action}</code> },
    {
      key: 'target',
      header: 'Target',
      cell: (e) =>
        e.target ? (
          <Link to={filtersSearch({ ...filters, target: e.target })} title={`Only entries on ${e.target}`}>
            {breakable(e.target)}
          </Link>
        ) : (
          <span className="muted">—</span>
        ),
    },
    { key: 'result', header: 'Result', cell: (e) => <AuditResult entry={e} /> },
    { key: 'status', header: 'HTTP', className: 'num', cell: (e) => e.status },
    { key: 'ip', header: 'IP', cell: (e) => <span className="admin-nowrap">{e.ip}</span> },
  ];
}

function AuditResult({ entry: e }: { entry: AuditView }) {
  const ok = e.result === 'ok';
  const message = typeof e.details.message === 'string' && e.details.message ? e.details.message : undefined;
  return (
    <div className="admin-result">
      <span className={`badge ${ok ? 'badge-ok' : 'badge-bad'}`}>
        <span aria-hidden="true">{ok ? '✓' : '✕'}</span>
        {ok ? 'ok' : e.result}
      </span>
      {message ? <div className="cell-sub">{message}</div> : null}
    </div>
  );
}

/** A path-like target that may wrap after each '/', never inside a name. */
function breakable(target: string) {
  return target.split('/').map((part, i) => (
    <Fragment key={i}>
      {i > 0 ? (
        <>
          /<wbr />
        </>
      ) : null}
      {part}
    </Fragment>
  ));
}

const ACTION = /^[a-z.-]+$/;

function FilterForm({ filters, onFilter }: { filters: AuditFilters; onFilter: (f: AuditFilters) => void }) {
  const [actor, setActor] = useState(filters.actor ?? '');
  const [action, setAction] = useState(filters.action ?? '');
  const [target, setTarget] = useState(filters.target ?? '');
  const [result, setResult] = useState(filters.result ?? '');
  const [since, setSince] = useState(toLocalInput(filters.since));
  const [until, setUntil] = useState(toLocalInput(filters.until));
  const [checked, setChecked] = useState(false);
  const sinceIso = fromLocalInput(since);
  const untilIso = fromLocalInput(until);
  const errors = {
    action: action.trim() === '' || ACTION.test(action.trim()) ? undefined : 'Lowercase letters, dots and hyphens, e.g. workspace. or user.create.',
    until: sinceIso && untilIso && untilIso < sinceIso ? 'Until must come after since.' : undefined,
  };
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    setChecked(true);
    if (errors.action || errors.until) return;
    const next: AuditFilters = {};
    if (actor.trim()) next.actor = actor.trim();
    if (action.trim()) next.action = action.trim();
    if (target.trim()) next.target = target.trim();
    if (result.trim()) next.result = result.trim();
    if (sinceIso) next.since = sinceIso;
    if (untilIso) next.until = untilIso;
    onFilter(next);
  };
  const clear = () => {
    for (const set of [setActor, setAction, setTarget, setResult, setSince, setUntil]) set('');
    setChecked(false);
    onFilter({});
  };
  const any = FILTER_KEYS.some((k) => filters[k]) || [actor, action, target, result, since, until].some((v) => v.trim() !== '');
  return (
    <form className="admin-filters" onSubmit={submit} noValidate aria-label="Filter the audit log">
      <Field label="Actor" hint="A username, exactly.">
        {(p) => <TextInput {...p} value={actor} onChange={(e) => setActor(e.target.value)} placeholder="jane" autoComplete="off" autoCapitalize="none" spellCheck={false} />}
      </Field>
      <Field label="Action" hint="Its beginning, e.g. workspace." error={checked ? errors.action : undefined}>
        {(p) => <TextInput {...p} value={action} onChange={(e) => setAction(e.target.value)} placeholder="workspace." autoComplete="off" autoCapitalize="none" spellCheck={false} />}
      </Field>
      <Field label="Target" hint="Exactly, e.g. teams/ml.">
        {(p) => <TextInput {...p} value={target} onChange={(e) => setTarget(e.target.value)} placeholder="teams/ml" autoComplete="off" autoCapitalize="none" spellCheck={false} />}
      </Field>
      <Field label="Result" hint="ok, or an error code.">
        {(p) => <TextInput {...p} value={result} onChange={(e) => setResult(e.target.value)} placeholder="ok" autoComplete="off" autoCapitalize="none" spellCheck={false} />}
      </Field>
      <Field label="Since (your time)">{(p) => <TextInput {...p} type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />}</Field>
      <Field label="Until (your time)" error={checked ? errors.until : undefined}>
        {(p) => <TextInput {...p} type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />}
      </Field>
      <div className="admin-filter-actions">
        <Button type="submit" variant="primary">
          Apply filters
        </Button>
        <Button onClick={clear} disabled={!any}>
          Clear
        </Button>
      </div>
    </form>
  );
}
