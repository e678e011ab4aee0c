import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import type { ImageProgress, ImageStep } from '../../api/imageEvents.ts';
import type { ImageEvent, ImageImport, ImageImportStarted, ImageView } from '../../api/types.ts';
import type { Change, Loadable } from '../../api/viewModel.ts';
import { Ago, Button, ConfirmDialog, EmptyState, ErrorNote, Field, Loaded, Section, Table, TextInput, type Column } from '../../components/ui.tsx';
import { bytes, plural } from '../../format.ts';

export interface ImagesPageViewProps {
  images: Loadable<{ items: ImageView[]; importing: string[] }>;
  /** each image's steps heard on the live stream since the page opened, by name */
  progress: ReadonlyMap<string, ImageProgress>;
  /** the live stream of steps is connected */
  live: boolean;
  importImage: Change<ImageImport, ImageImportStarted>;
  removeImage: (name: string) => Promise<unknown>;
}

/** An import started from this page: what the API answered, and when it was asked for. */
interface Started extends ImageImportStarted {
  source: string;
  /** steps heard from then on are this import's (an earlier import of the same name had ended before) */
  since: string;
}

/** The API's rule for image names (schemas.ts `ImageName`). */
const IMAGE_NAME = /^[a-z0-9][a-z0-9._/:@-]{0,127}$/;
const IMAGE_NAME_RULE = 'lowercase letters, digits and . _ / : @ -, starting with a letter or digit, at most 128 characters';
const MAX_SOURCE = 1024;

const SETTLED = new Set<ImageEvent['state']>(['ready', 'failed', 'removed']);
const STATE_TONE: Record<ImageEvent['state'], string> = { importing: 'busy', unpacking: 'busy', ready: 'ok', failed: 'bad', removed: 'idle' };

const workspaceLink = (ref: string) => {
  const [team, name] = ref.split('/');
  return team && name ? `/workspaces/${encodeURIComponent(team)}/${encodeURIComponent(name)}` : undefined;
};

/** `sha256:0123456789ab…` as its first 12 hex digits. */
const shortDigest = (digest: string) => digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);

const clock = (at: string) => new Date(at).toLocaleTimeString('en', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function ImagesPageView({ images, progress, live, importImage, removeImage }: ImagesPageViewProps) {
  const [removing, setRemoving] = useState<ImageView | null>(null);
  const [started, setStarted] = useState<Started[]>([]);
  const list = images.data;
  // names being imported now: what the list said, and what the stream says since
  const underWay = new Set(list?.importing ?? []);
  for (const p of progress.values()) {
    if (SETTLED.has(p.state)) underWay.delete(p.name);
    else underWay.add(p.name);
  }
  const startedHere = new Set(started.map((s) => s.name));
  const elsewhere = [...underWay].filter((n) => !startedHere.has(n)).sort();

  return (
    <>
      <Section title="Images" actions={list && list.items.length > 0 ? <span className="muted">{plural(list.items.length, 'image')}</span> : undefined}>
        <p className="muted admin-intro">
          Images are what workspaces run: a profile names one in its <code>image</code> (without one, workspaces run the host’s <code>/usr</code>). Imports copy
          an image into this server’s store; a workspace made from an image keeps it in use until the workspace is deleted.
        </p>
        <Loaded value={images} loading="Loading images…" failed="Atrium could not load the images.">
          {(data) => (
            <>
              {elsewhere.length > 0 ? (
                <div className="image-underway">
                  <h3>Being imported now</h3>
                  <ul>
                    {elsewhere.map((name) => {
                      const last = progress.get(name)?.steps.at(-1);
                      return (
                        <li key={name}>
                          <code>{name}</code>
                          {last ? <span className="muted"> · {last.message}</span> : null}
                        </li>
                      );
                    })}
                  </ul>
                </div>
              ) : null}
              <Table
                caption="Images"
                columns={imageColumns(underWay)}
                rows={[...data.items].sort((a, b) => a.name.localeCompare(b.name))}
                rowKey={(i) => i.name}
                empty={
                  <EmptyState title="No images yet">
                    Import one below, then name it in a profile’s <code>image</code>. Until then, every workspace runs the host’s <code>/usr</code>.
                  </EmptyState>
                }
                actions={(i) => (
                  <Button variant="danger" className="btn-small" aria-label={`Remove image ${i.name}`} onClick={() => setRemoving(i)}>
                    Remove
                  </Button>
                )}
              />
            </>
          )}
        </Loaded>
      </Section>

      <Section title="Import an image">
        <ImportForm
          importImage={importImage}
          onStarted={(s) => setStarted((was) => [s, ...was.filter((o) => o.name !== s.name)])}
        />
        {!live ? <p className="hint">Connecting to the live progress of imports…</p> : null}
        {started.map((s) => (
          <ImportProgressBox
            key={`${s.name} ${s.since}`}
            started={s}
            progress={progress.get(s.name)}
            onDismiss={() => setStarted((was) => was.filter((o) => o !== s))}
          />
        ))}
      </Section>

      <ConfirmDialog
        open={removing !== null}
        title={`Remove image ${removing?.name ?? ''}?`}
        confirmLabel="Remove image"
        onConfirm={() => removeImage(removing!.name)}
        onClose={() => setRemoving(null)}
      >
        {removing && removing.usedBy.length > 0 ? (
          <p>
            {plural(removing.usedBy.length, 'workspace')} still {removing.usedBy.length === 1 ? 'uses' : 'use'} it ({removing.usedBy.join(', ')}): Atrium refuses
            to remove an image while a workspace, running or stopped, was made from it.
          </p>
        ) : (
          <p>Its files and unpacked root are deleted. Profiles that name it cannot start new workspaces until it is imported again.</p>
        )}
      </ConfirmDialog>
    </>
  );
}

function imageColumns(underWay: ReadonlySet<string>): Array<Column<ImageView>> {
  return [
    {
      key: 'image',
      header: 'Image',
      cellClassName: 'cell-main',
      cell: (i) => (
        <>
          <span className="cell-title admin-break">{i.name}</span>
          {underWay.has(i.name) ? <span className="tag">importing again</span> : null}
        </>
      ),
    },
    {
      key: 'digest',
      header: 'Digest',
      cell: (i) => (
        <code title={i.digest} className="admin-nowrap">
          {shortDigest(i.digest)}
        </code>
      ),
    },
    { key: 'size', header: 'Size', className: 'num', cell: (i) => <span title={`${i.sizeBytes.toLocaleString('en')} bytes`}>{bytes(i.sizeBytes)}</span> },
    { key: 'imported', header: 'Imported', cell: (i) => <Ago at={i.importedAt} /> },
    {
      key: 'unpacked',
      header: 'Unpacked',
      cell: (i) => (i.unpacked ? <span className="badge badge-ok">ready</span> : <span className="muted">at first start</span>),
    },
    {
      key: 'used',
      header: 'Used by',
      cell: (i) =>
        i.usedBy.length === 0 ? (
          <span className="muted">no workspace</span>
        ) : (
          <ul className="admin-grants">
            {i.usedBy.map((ref) => {
              const to = workspaceLink(ref);
              return <li key={ref}>{to ? <Link to={to}>{ref}</Link> : ref}</li>;
            })}
          </ul>
        ),
    },
    { key: 'source', header: 'Source', cell: (i) => <code className="admin-break image-source">{i.source}</code> },
  ];
}

function ImportForm({ importImage, onStarted }: { importImage: Change<ImageImport, ImageImportStarted>; onStarted: (s: Started) => void }) {
  const [source, setSource] = useState('');
  const [name, setName] = useState('');
  const [tried, setTried] = useState(false);

  const from = source.trim();
  const as = name.trim();
  const sourceProblem = !from
    ? 'Enter what to import, e.g. python:3.11.'
    : from.length > MAX_SOURCE
      ? `At most ${MAX_SOURCE.toLocaleString('en')} characters.`
      : undefined;
  const nameProblem = as && !IMAGE_NAME.test(as) ? `Image names are ${IMAGE_NAME_RULE}.` : undefined;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (sourceProblem || nameProblem) return;
    const since = new Date().toISOString();
    try {
      const started = await importImage.run({ source: from, ...(as ? { name: as } : {}) });
      onStarted({ ...started, source: from, since });
      setSource('');
      setName('');
      setTried(false);
    } catch {
      // the refusal is shown above the form; what was typed stays for another try
    }
  }

  return (
    <form className="image-import" onSubmit={submit} noValidate>
      <ErrorNote error={importImage.error} title="The import did not start." />
      <div className="grid-2 admin-grid-tight">
        <Field
          label="Source"
          hint={
            <>
              A registry reference (<code>python:3.11</code>, <code>docker://ghcr.io/org/image:tag</code>), or an image on the server: an OCI layout or archive
              (<code>oci:PATH</code>, <code>oci-archive:FILE</code>, <code>docker-archive:FILE</code>) or a path.
            </>
          }
          error={tried ? sourceProblem : undefined}
        >
          {(p) => (
            <TextInput
              {...p}
              name="source"
              autoComplete="off"
              autoCapitalize="none"
              spellCheck={false}
              maxLength={MAX_SOURCE}
              placeholder="e.g. python:3.11"
              value={source}
              onChange={(e) => setSource(e.target.value)}
            />
          )}
        </Field>
        <Field label="Name (optional)" hint="What profiles call it in their image. Without one, it is named after the source; an existing name is replaced for later starts." error={tried ? nameProblem : undefined}>
          {(p) => (
            <TextInput
              {...p}
              name="imageName"
              autoComplete="off"
              autoCapitalize="none"
              spellCheck={false}
              maxLength={128}
              placeholder="e.g. python:3.11"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          )}
        </Field>
      </div>
      <Button type="submit" variant="primary" busy={importImage.pending}>
        Import
      </Button>
    </form>
  );
}

/** One import started here: its state and every step the stream has told of it. */
function ImportProgressBox({ started, progress, onDismiss }: { started: Started; progress: ImageProgress | undefined; onDismiss: () => void }) {
  const heard = progress?.steps.filter((s) => s.at >= started.since) ?? [];
  const steps: ImageStep[] = heard.length > 0 ? heard : [{ state: started.state, message: started.message, at: started.since }];
  const state = steps.at(-1)!.state;
  const done = SETTLED.has(state);
  return (
    <div className="image-progress">
      <div className="image-progress-head">
        <h3>
          <code>{started.name}</code>
        </h3>
        <span className={`badge badge-${STATE_TONE[state]}`}>
          {done ? <span className="dot" aria-hidden="true" /> : <span className="spinner" aria-hidden="true" />}
          {state}
        </span>
        {done ? (
          <Button variant="ghost" className="btn-small" onClick={onDismiss}>
            Dismiss<span className="sr-only"> the import of {started.name}</span>
          </Button>
        ) : null}
      </div>
      <div className="image-steps" role="log" tabIndex={0} aria-label={`Progress of the import of ${started.name}`}>
        <ol>
          {steps.map((s, i) => (
            <li key={i} className={s.state === 'failed' ? 'image-step-failed' : undefined}>
              <time dateTime={s.at}>{clock(s.at)}</time> {s.message}
            </li>
          ))}
        </ol>
      </div>
    </div>
  );
}
