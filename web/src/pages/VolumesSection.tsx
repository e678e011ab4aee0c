import { useId, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { isValidName, NAME_RULE, parseBytes } from '../../../src/domain/index.ts';
import type { NewVolume, VolumeChange, VolumeView } from '../api/types.ts';
import { runThen, type Change, type Loadable } from '../api/viewModel.ts';
import { Ago, Button, ConfirmDialog, Dialog, EmptyState, ErrorNote, Field, FormActions, Loaded, Notice, Section, Table, TextInput, type Column } from '../components/ui.tsx';
import { plural } from '../format.ts';

export interface VolumeEdit {
  volume: string;
  change: VolumeChange;
}

export interface TeamVolumes {
  items: VolumeView[];
  /** other teams' volumes published to this one */
  datasets: VolumeView[];
}

export interface VolumesSectionProps {
  /** the team's name */
  team: string;
  volumes: Loadable<TeamVolumes>;
  /** editors, owners and admins: create and grow volumes, change who reads them */
  canManage: boolean;
  /** owners and admins: delete volumes */
  canDelete: boolean;
  /** platform admins: publish volumes to other teams */
  canPublish: boolean;
  createVolume: Change<NewVolume>;
  /** a resize, a change of who reads it, or a publication */
  updateVolume: Change<VolumeEdit>;
  deleteVolume: (name: string) => Promise<unknown>;
}

/** The sizes a volume takes: a Kubernetes quantity of bytes, like the API's. */
const SIZE_HINT = 'A size such as 10Gi or 500Mi.';
const sizeProblem = (size: string): string | undefined => {
  if (!size) return 'Enter a size, e.g. 10Gi.';
  const bytes = parseBytes(size);
  if (bytes === undefined) return `“${size}” is not a size. ${SIZE_HINT}`;
  if (bytes === 0) return 'A volume needs some room: more than 0.';
  return undefined;
};

const workspaceLink = (ref: string) => {
  const [team, name] = ref.split('/');
  return team && name ? `/workspaces/${encodeURIComponent(team)}/${encodeURIComponent(name)}` : undefined;
};

function Refs({ refs, none, link }: { refs: string[]; none: string; link: (ref: string) => string | undefined }) {
  if (refs.length === 0) return <span className="muted">{none}</span>;
  return (
    <ul className="volume-refs">
      {refs.map((ref) => {
        const to = link(ref);
        return <li key={ref}>{to ? <Link to={to}>{ref}</Link> : ref}</li>;
      })}
    </ul>
  );
}

const teamLink = (t: string) => `/teams/${encodeURIComponent(t)}`;

/** A team's volumes (create, grow, publish, delete, as the person's role allows) and the datasets other teams published to it. */
export function VolumesSection({ team, volumes, canManage, canDelete, canPublish, createVolume, updateVolume, deleteVolume }: VolumesSectionProps) {
  const [editing, setEditing] = useState<VolumeView | null>(null);
  const [publishing, setPublishing] = useState<VolumeView | null>(null);
  const [deleting, setDeleting] = useState<VolumeView | null>(null);
  const list = volumes.data?.items;

  const columns: Array<Column<VolumeView>> = [
    { key: 'volume', header: 'Volume', cellClassName: 'cell-main', cell: (v) => <span className="cell-title">{v.name}</span> },
    { key: 'size', header: 'Size', className: 'num', cell: (v) => v.size },
    { key: 'readonly', header: 'Read-only for', cell: (v) => (v.readOnlyFor === 'viewers' ? 'Viewers' : <span className="muted">Nobody</span>) },
    { key: 'published', header: 'Published to', cell: (v) => <Refs refs={v.sharedWith} none="Not published" link={teamLink} /> },
    { key: 'mounted', header: 'Mounted by', cell: (v) => <Refs refs={v.mountedBy} none="No workspace" link={workspaceLink} /> },
    { key: 'created', header: 'Created', cell: (v) => <Ago at={v.createdAt} /> },
  ];
  const anyAction = canManage || canPublish || canDelete;

  return (
    <Section title="Volumes" actions={list && list.length > 0 ? <span className="muted">{plural(list.length, 'volume')}</span> : undefined}>
      <p className="hint volumes-note">
        Storage the team’s workspaces share, counted against its storage quota; pick them when launching a workspace (at <code>/data/&lt;name&gt;</code> unless
        you choose a path). {canManage ? (canDelete ? '' : 'Only the team’s owners can delete a volume.') : 'Only the team’s editors and owners can create and grow volumes.'}
      </p>
      <Loaded value={volumes} loading="Loading volumes…" failed="Atrium could not load the volumes.">
        {(data) => (
          <>
            <Table
              caption={`Volumes of ${team}`}
              columns={columns}
              rows={data.items}
              rowKey={(v) => v.name}
              empty={<EmptyState title="No volumes yet">{canManage ? 'Create one below to share data between the team’s workspaces.' : 'The team has no volumes.'}</EmptyState>}
              actions={
                anyAction
                  ? (v) => (
                      <>
                        {canManage ? (
                          <Button
                            className="btn-small"
                            onClick={() => {
                              updateVolume.reset();
                              setEditing(v);
                            }}
                          >
                            Edit<span className="sr-only"> volume {v.name}</span>
                          </Button>
                        ) : null}
                        {canPublish ? (
                          <Button
                            className="btn-small"
                            onClick={() => {
                              updateVolume.reset();
                              setPublishing(v);
                            }}
                          >
                            Publish<span className="sr-only"> volume {v.name}</span>
                          </Button>
                        ) : null}
                        {canDelete ? (
                          <Button variant="danger" className="btn-small" aria-label={`Delete volume ${v.name}`} onClick={() => setDeleting(v)}>
                            Delete
                          </Button>
                        ) : null}
                      </>
                    )
                  : undefined
              }
            />
            <Datasets team={team} datasets={data.datasets} />
          </>
        )}
      </Loaded>
      {canManage ? <CreateVolume existing={list ?? []} createVolume={createVolume} /> : null}

      <Dialog open={editing !== null} onClose={() => setEditing(null)} title={`Edit volume ${editing?.name ?? ''}`}>
        {editing ? <EditVolumeForm volume={editing} updateVolume={updateVolume} onDone={() => setEditing(null)} /> : null}
      </Dialog>
      <Dialog open={publishing !== null} onClose={() => setPublishing(null)} title={`Publish volume ${publishing?.name ?? ''}`}>
        {publishing ? <PublishForm volume={publishing} updateVolume={updateVolume} onDone={() => setPublishing(null)} /> : null}
      </Dialog>
      <ConfirmDialog
        open={deleting !== null}
        title={`Delete volume ${deleting?.name ?? ''}?`}
        confirmLabel="Delete volume"
        onConfirm={() => deleteVolume(deleting!.name)}
        onClose={() => setDeleting(null)}
      >
        {deleting && deleting.mountedBy.length > 0 ? (
          <p>
            {deleting.mountedBy.join(', ')} {deleting.mountedBy.length === 1 ? 'mounts' : 'mount'} it: Atrium refuses to delete a volume while a workspace,
            running or not, mounts it. Delete those workspaces first.
          </p>
        ) : (
          <p>Its data is deleted for good{deleting && deleting.sharedWith.length > 0 ? `, and the teams it is published to (${deleting.sharedWith.join(', ')}) lose it` : ''}. This cannot be undone.</p>
        )}
      </ConfirmDialog>
    </Section>
  );
}

const DATASET_COLUMNS: Array<Column<VolumeView>> = [
  {
    key: 'dataset',
    header: 'Dataset',
    cellClassName: 'cell-main',
    cell: (v) => (
      <span className="cell-title">
        {v.team}/{v.name}
      </span>
    ),
  },
  { key: 'size', header: 'Size', className: 'num', cell: (v) => v.size },
  {
    key: 'from',
    header: 'Published by',
    cell: (v) => <Link to={teamLink(v.team)}>{v.team}</Link>,
  },
  { key: 'access', header: 'Access', cell: () => <span className="badge badge-idle">read-only</span> },
  { key: 'created', header: 'Created', cell: (v) => <Ago at={v.createdAt} /> },
];

function Datasets({ team, datasets }: { team: string; datasets: VolumeView[] }) {
  return (
    <div className="datasets">
      <h3>Datasets published to {team}</h3>
      {datasets.length === 0 ? (
        <p className="hint">No other team has published a volume to this one. Platform admins publish volumes as read-only datasets.</p>
      ) : (
        <>
          <p className="hint">Other teams’ volumes, mounted read-only as <code>team/name</code>.</p>
          <Table caption={`Datasets published to ${team}`} columns={DATASET_COLUMNS} rows={datasets} rowKey={(v) => `${v.team}/${v.name}`} />
        </>
      )}
    </div>
  );
}

function CreateVolume({ existing, createVolume }: { existing: VolumeView[]; createVolume: Change<NewVolume> }) {
  const [name, setName] = useState('');
  const [size, setSize] = useState('');
  const [viewersReadOnly, setViewersReadOnly] = useState(false);
  const [tried, setTried] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const checkId = useId();

  const wanted = name.trim().toLowerCase();
  const wantedSize = size.trim();
  const nameProblem = !wanted
    ? 'Name the volume, e.g. corpus.'
    : !isValidName(wanted)
      ? `Volume names are ${NAME_RULE}.`
      : existing.some((v) => v.name === wanted)
        ? `The team already has a volume called ${wanted}.`
        : undefined;
  const sizeError = sizeProblem(wantedSize);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    setCreated(null);
    if (nameProblem || sizeError) return;
    try {
      await createVolume.run({ name: wanted, size: wantedSize, readOnlyFor: viewersReadOnly ? 'viewers' : 'none' });
      setCreated(wanted);
      setName('');
      setSize('');
      setViewersReadOnly(false);
      setTried(false);
    } catch {
      // the refusal (a full storage quota, a name taken meanwhile) is shown above the form; what was typed stays
    }
  }

  return (
    <form className="create-volume" onSubmit={submit} noValidate>
      <h3>Create a volume</h3>
      {created ? <Notice tone="success">Volume {created} created.</Notice> : null}
      <ErrorNote error={createVolume.error} title="Could not create the volume." />
      <div className="inline-form">
        <Field label="Volume name" error={tried ? nameProblem : undefined}>
          {(p) => (
            <TextInput
              {...p}
              name="volumeName"
              autoComplete="off"
              autoCapitalize="none"
              spellCheck={false}
              maxLength={32}
              placeholder="e.g. corpus"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          )}
        </Field>
        <Field label="Size" error={tried ? sizeError : undefined}>
          {(p) => <TextInput {...p} name="volumeSize" autoComplete="off" spellCheck={false} maxLength={32} placeholder="e.g. 10Gi" value={size} onChange={(e) => setSize(e.target.value)} />}
        </Field>
        <Button type="submit" variant="primary" busy={createVolume.pending}>
          Create volume
        </Button>
      </div>
      <div className="checkbox volume-check">
        <input id={checkId} type="checkbox" checked={viewersReadOnly} onChange={(e) => setViewersReadOnly(e.target.checked)} aria-describedby={`${checkId}-hint`} />
        <label htmlFor={checkId}>
          Read-only for viewers
          <span className="hint" id={`${checkId}-hint`}>
            Workspaces whose owner is a viewer of the team mount it read-only.
          </span>
        </label>
      </div>
      <p className="hint">{SIZE_HINT} Its whole size counts against the team’s storage quota from the start; volumes can grow later, never shrink.</p>
    </form>
  );
}

/** Grow a volume, or change who reads it: only what changed is sent. */
function EditVolumeForm({ volume, updateVolume, onDone }: { volume: VolumeView; updateVolume: Change<VolumeEdit>; onDone: () => void }) {
  const [size, setSize] = useState(volume.size);
  const [viewersReadOnly, setViewersReadOnly] = useState(volume.readOnlyFor === 'viewers');
  const [tried, setTried] = useState(false);
  const checkId = useId();
  const wanted = size.trim();
  const bytes = parseBytes(wanted);
  const problem = sizeProblem(wanted) ?? (bytes !== undefined && bytes < volume.sizeBytes ? `Volumes never shrink: enter ${volume.size} or more.` : undefined);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (problem) return;
    const change: VolumeChange = {
      ...(bytes !== volume.sizeBytes ? { size: wanted } : {}),
      ...(viewersReadOnly !== (volume.readOnlyFor === 'viewers') ? { readOnlyFor: viewersReadOnly ? 'viewers' : 'none' } : {}),
    };
    if (Object.keys(change).length === 0) return onDone();
    runThen(updateVolume, { volume: volume.name, change }, onDone);
  };
  return (
    <form onSubmit={submit} noValidate>
      <Field label="Size" hint={`Now ${volume.size}. Growing it counts the difference against the team’s storage quota; running workspaces see the new size at once.`} error={tried ? problem : undefined}>
        {(p) => <TextInput {...p} name="volumeSize" autoComplete="off" spellCheck={false} maxLength={32} value={size} onChange={(e) => setSize(e.target.value)} />}
      </Field>
      <div className="checkbox volume-check">
        <input id={checkId} type="checkbox" checked={viewersReadOnly} onChange={(e) => setViewersReadOnly(e.target.checked)} aria-describedby={`${checkId}-hint`} />
        <label htmlFor={checkId}>
          Read-only for viewers
          <span className="hint" id={`${checkId}-hint`}>
            A change applies to workspaces at their next start.
          </span>
        </label>
      </div>
      <ErrorNote error={updateVolume.error} title="The volume was not changed." />
      <FormActions submit="Save" busy={updateVolume.pending} onCancel={onDone} />
    </form>
  );
}

/** The teams a volume is published to, read-only, as a dataset (admins): all of them are sent, none unpublishes it. */
function PublishForm({ volume, updateVolume, onDone }: { volume: VolumeView; updateVolume: Change<VolumeEdit>; onDone: () => void }) {
  const [teams, setTeams] = useState(volume.sharedWith.join(', '));
  const [tried, setTried] = useState(false);
  const names = [...new Set(teams.split(/[\s,;]+/).map((t) => t.trim().toLowerCase()).filter(Boolean))];
  const bad = names.find((t) => !isValidName(t));
  const problem = bad ? `“${bad}” is not a team name: ${NAME_RULE}.` : names.includes(volume.team) ? `${volume.team} owns the volume already.` : undefined;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (problem) return;
    const same = names.length === volume.sharedWith.length && names.every((t) => volume.sharedWith.includes(t));
    if (same) return onDone();
    runThen(updateVolume, { volume: volume.name, change: { sharedWith: names } }, onDone);
  };
  return (
    <form onSubmit={submit} noValidate>
      <Field
        label="Teams"
        hint={`The teams whose workspaces may mount it read-only, as ${volume.team}/${volume.name}; separate them with commas. Leave empty to unpublish it.`}
        error={tried ? problem : undefined}
      >
        {(p) => (
          <TextInput {...p} name="sharedWith" autoComplete="off" autoCapitalize="none" spellCheck={false} placeholder="e.g. vision, nlp" value={teams} onChange={(e) => setTeams(e.target.value)} />
        )}
      </Field>
      <ErrorNote error={updateVolume.error} title="The volume’s publication was not changed." />
      <FormActions submit={names.length === 0 && volume.sharedWith.length > 0 ? 'Unpublish' : 'Publish'} busy={updateVolume.pending} onCancel={onDone} />
    </form>
  );
}
