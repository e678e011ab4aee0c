import { useId, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { isValidName, NAME_RULE } from '../../../../src/domain/index.ts';
import type { NewTeam, QuotaChange, TeamView } from '../../api/types.ts';
import { runThen, type Change } from '../../api/viewModel.ts';
import { Ago, Button, ConfirmDialog, Dialog, EmptyState, ErrorNote, Field, FormActions, Loading, Notice, Section, Table, TextInput, type Column } from '../../components/ui.tsx';
import { plural } from '../../format.ts';
import { matches } from './adminKit.ts';
import { FindBar } from './FindBar.tsx';
import { changedQuota, EMPTY_QUOTA, gpuSummary, quotaSummary, quotaToFields, readQuota, type QuotaErrors, type QuotaFields } from './quotaFields.ts';

export interface QuotaEdit {
  team: string;
  change: QuotaChange;
}

export interface SensitiveEdit {
  team: string;
  sensitive: boolean;
}

export interface TeamsAdminViewProps {
  /** undefined while loading */
  teams: TeamView[] | undefined;
  /** false when the list stopped before its end */
  complete: boolean;
  error: unknown;
  create: Change<NewTeam, TeamView>;
  quota: Change<QuotaEdit>;
  /** marking a team sensitive: refusals shown above the table */
  mark: Change<SensitiveEdit>;
  /** clearing the mark, asked for first: refusals shown in the confirmation */
  unmark: Change<SensitiveEdit>;
}

export function TeamsAdminView({ teams, complete, error, create, quota, mark, unmark }: TeamsAdminViewProps) {
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<TeamView | null>(null);
  const [editing, setEditing] = useState<TeamView | null>(null);
  const [unmarking, setUnmarking] = useState<TeamView | null>(null);
  const [filter, setFilter] = useState('');
  const shown = teams?.filter((t) => matches(filter, t.name, t.displayName));
  const openCreate = () => {
    create.reset();
    setCreating(true);
  };
  const createButton = (
    <Button variant="primary" onClick={openCreate}>
      Create team
    </Button>
  );
  /** the mark a team is being given or cleared of, shown at once while the API is asked */
  const pendingSensitive = (team: string) =>
    mark.pending && mark.input?.team === team ? true : unmark.pending && unmark.input?.team === team ? false : undefined;
  const toggle = (t: TeamView) => {
    if (t.sensitive) setUnmarking(t);
    else runThen(mark, { team: t.name, sensitive: true });
  };

  return (
    <>
      {created ? (
        <Notice tone="success">
          <div className="admin-notice">
            <p className="admin-notice-body">
              Created team <Link to={`/teams/${created.name}`}>{created.displayName || created.name}</Link>. Add its members on the team's page.
            </p>
            <Button variant="ghost" className="btn-small" onClick={() => setCreated(null)}>
              Dismiss
            </Button>
          </div>
        </Notice>
      ) : null}
      <Section title="Teams" actions={teams && teams.length > 0 ? createButton : null}>
        <ErrorNote error={error} />
        {mark.error && mark.input ? <ErrorNote error={mark.error} title={`Team ${mark.input.team} was not marked sensitive.`} /> : null}
        {teams === undefined && !error ? <Loading label="Loading teams…" /> : null}
        {teams && teams.length === 0 ? (
          <EmptyState title="No teams yet" action={createButton}>
            Teams hold workspaces and share a quota. Every user also has a personal team of their own.
          </EmptyState>
        ) : null}
        {teams && teams.length > 0 && shown ? (
          <>
            <FindBar label="Find a team" placeholder="Name or display name" value={filter} onChange={setFilter} shown={shown.length} total={teams.length} noun="team" />
            <Table
              caption="Teams"
              columns={teamColumns(pendingSensitive, toggle)}
              rows={shown}
              rowKey={(t) => t.name}
              empty={<EmptyState title="No team matches">No team's name contains “{filter.trim()}”.</EmptyState>}
              actions={(t) => (
                <Button
                  className="btn-small"
                  onClick={() => {
                    quota.reset();
                    setEditing(t);
                  }}
                >
                  Edit quota<span className="sr-only"> of {t.name}</span>
                </Button>
              )}
            />
            {complete ? null : (
              <p className="muted">
                Showing the first {plural(teams.length, 'team')}; <code>atrium teams ls --all</code> lists every one.
              </p>
            )}
          </>
        ) : null}
      </Section>

      <Dialog open={creating} onClose={() => setCreating(false)} title="Create team" wide>
        <CreateTeamForm
          create={create}
          onCancel={() => setCreating(false)}
          onCreated={(t) => {
            setCreating(false);
            setCreated(t);
          }}
        />
      </Dialog>

      <Dialog open={editing !== null} onClose={() => setEditing(null)} title={`Quota of ${editing?.displayName || editing?.name || 'team'}`} wide>
        {editing ? <EditQuotaForm team={editing} quota={quota} onDone={() => setEditing(null)} /> : null}
      </Dialog>

      <ConfirmDialog
        open={unmarking !== null}
        title={`Clear the sensitive mark of ${unmarking?.name ?? ''}?`}
        confirmLabel="Clear sensitive mark"
        onConfirm={() => unmark.run({ team: unmarking?.name ?? '', sensitive: false })}
        onClose={() => setUnmarking(null)}
      >
        <p>
          Team <strong>{unmarking?.displayName || unmarking?.name}</strong> may then launch standard profiles as well, whose workspaces are not sandboxed. Keep it
          sensitive while it works with data that needs the stronger isolation.
        </p>
      </ConfirmDialog>
    </>
  );
}

function teamColumns(pending: (team: string) => boolean | undefined, onToggle: (t: TeamView) => void): Array<Column<TeamView>> {
  return [
    {
      key: 'team',
      header: 'Team',
      cellClassName: 'cell-main',
      cell: (team) => (
        <>
          <Link className="cell-title" to={`/teams/${team.name}`}>
            {team.displayName || team.name}
          </Link>
          {team.personal ? <span className="tag">personal</span> : null}
          {team.displayName && team.displayName !== team.name ? <div className="cell-sub">{team.name}</div> : null}
        </>
      ),
    },
    { key: 'sensitive', header: 'Sensitive', cell: (team) => <SensitiveSwitch team={team} pending={pending(team.name)} onToggle={() => onToggle(team)} /> },
    {
      key: 'quota',
      header: 'Quota',
      cell: (team) => {
        const gpus = gpuSummary(team.quota.gpu);
        return (
          <div className="admin-stack">
            <div>{quotaSummary(team.quota)}</div>
            <div className="cell-sub">{gpus ? `GPUs: ${gpus}` : 'No GPUs'}</div>
          </div>
        );
      },
    },
    { key: 'created', header: 'Created', cell: (team) => <Ago at={team.createdAt} /> },
  ];
}

/** The sensitive mark as a switch, showing the mark asked for (and a spinner) until the API answers. */
function SensitiveSwitch({ team, pending, onToggle }: { team: TeamView; pending: boolean | undefined; onToggle: () => void }) {
  const id = useId();
  return (
    <span className="admin-switch">
      <input id={id} type="checkbox" checked={pending ?? team.sensitive} disabled={pending !== undefined} onChange={onToggle} />
      <label htmlFor={id}>
        Sandboxed only<span className="sr-only"> ({team.name})</span>
      </label>
      {pending !== undefined ? <span className="spinner" aria-hidden="true" /> : null}
    </span>
  );
}

/** The five quota fields, for a new team (empty: the platform default) or an edit (prefilled). */
function QuotaInputs({ fields, errors, onChange, hint }: { fields: QuotaFields; errors: QuotaErrors; onChange: (f: QuotaFields) => void; hint: string }) {
  const set = (key: keyof QuotaFields) => (e: { target: { value: string } }) => onChange({ ...fields, [key]: e.target.value });
  return (
    <fieldset className="admin-fieldset">
      <legend>Quota</legend>
      <p className="hint admin-legend-hint">{hint}</p>
      <div className="admin-quota-grid">
        <Field label="CPU" hint="Cores, e.g. 8 or 500m" error={errors.cpu}>
          {(p) => <TextInput {...p} value={fields.cpu} onChange={set('cpu')} inputMode="decimal" autoComplete="off" spellCheck={false} />}
        </Field>
        <Field label="Memory" hint="e.g. 32Gi" error={errors.memory}>
          {(p) => <TextInput {...p} value={fields.memory} onChange={set('memory')} autoComplete="off" spellCheck={false} />}
        </Field>
        <Field label="Storage" hint="Homes, e.g. 500Gi" error={errors.storage}>
          {(p) => <TextInput {...p} value={fields.storage} onChange={set('storage')} autoComplete="off" spellCheck={false} />}
        </Field>
        <Field label="Workspaces" hint="How many" error={errors.workspaces}>
          {(p) => <TextInput {...p} value={fields.workspaces} onChange={set('workspaces')} inputMode="numeric" autoComplete="off" />}
        </Field>
      </div>
      <Field label="GPUs" hint="type=count pairs, e.g. a100=2, t4=1. A type not listed allows none." error={errors.gpu}>
        {(p) => <TextInput {...p} value={fields.gpu} onChange={set('gpu')} autoComplete="off" spellCheck={false} />}
      </Field>
    </fieldset>
  );
}

function CreateTeamForm({ create, onCancel, onCreated }: { create: Change<NewTeam, TeamView>; onCancel: () => void; onCreated: (t: TeamView) => void }) {
  const [name, setName] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [owner, setOwner] = useState('');
  const [sensitive, setSensitive] = useState(false);
  const [fields, setFields] = useState<QuotaFields>(EMPTY_QUOTA);
  const [checked, setChecked] = useState(false);
  const sensitiveId = useId();
  const quota = readQuota(fields);
  const errors = {
    name: isValidName(name.trim()) ? undefined : name.trim() ? 'This is not a valid team name.' : 'Enter a name.',
    owner: owner.trim() === '' || isValidName(owner.trim()) ? undefined : 'A username, like jane.',
  };
  const valid = !errors.name && !errors.owner && Object.keys(quota.errors).length === 0;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setChecked(true);
    if (!valid) return;
    const body: NewTeam = {
      name: name.trim(),
      ...(displayName.trim() ? { displayName: displayName.trim() } : {}),
      ...(owner.trim() ? { owner: owner.trim() } : {}),
      ...(sensitive ? { sensitive: true } : {}),
      ...(Object.keys(quota.change).length ? { quota: quota.change } : {}),
    };
    runThen(create, body, onCreated);
  };
  return (
    <form onSubmit={submit} noValidate>
      <div className="grid-2 admin-grid-tight">
        <Field label="Name" hint={`${NAME_RULE}.`} error={checked ? errors.name : undefined}>
          {(p) => <TextInput {...p} value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" autoCapitalize="none" spellCheck={false} required />}
        </Field>
        <Field label="Display name (optional)" hint="How the portal shows it, e.g. Machine learning.">
          {(p) => <TextInput {...p} value={displayName} onChange={(e) => setDisplayName(e.target.value)} maxLength={128} autoComplete="off" />}
        </Field>
      </div>
      <Field label="Owner (optional)" hint="The username of its first owner, who can then add members. Leave empty to add people later." error={checked ? errors.owner : undefined}>
        {(p) => <TextInput {...p} value={owner} onChange={(e) => setOwner(e.target.value)} autoComplete="off" autoCapitalize="none" spellCheck={false} />}
      </Field>
      <div className="checkbox admin-check">
        <input id={sensitiveId} type="checkbox" checked={sensitive} onChange={(e) => setSensitive(e.target.checked)} aria-describedby={`${sensitiveId}-hint`} />
        <label htmlFor={sensitiveId}>
          Sensitive
          <span className="hint" id={`${sensitiveId}-hint`}>
            Its workspaces may only use sandboxed profiles: for teams whose data needs the stronger isolation.
          </span>
        </label>
      </div>
      <QuotaInputs
        fields={fields}
        errors={checked ? quota.errors : {}}
        onChange={setFields}
        hint="Leave a field empty for the platform's default. Kubernetes quantities: 4, 500m, 16Gi."
      />
      <ErrorNote error={create.error} />
      <FormActions submit="Create team" busy={create.pending} onCancel={onCancel} />
    </form>
  );
}

function EditQuotaForm({ team, quota, onDone }: { team: TeamView; quota: Change<QuotaEdit>; onDone: () => void }) {
  const [fields, setFields] = useState<QuotaFields>(() => quotaToFields(team.quota));
  const [checked, setChecked] = useState(false);
  const read = readQuota(fields, true);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setChecked(true);
    if (Object.keys(read.errors).length) return;
    const change = changedQuota(read.change, team.quota);
    if (Object.keys(change).length === 0) return onDone();
    runThen(quota, { team: team.name, change }, onDone);
  };
  return (
    <form onSubmit={submit} noValidate>
      <QuotaInputs
        fields={fields}
        errors={checked ? read.errors : {}}
        onChange={setFields}
        hint="Only what you change is sent. Lowering a limit below what the team uses now stops nothing, but refuses new starts until it fits."
      />
      <ErrorNote error={quota.error} />
      <FormActions submit="Save quota" busy={quota.pending} onCancel={onDone} />
    </form>
  );
}
