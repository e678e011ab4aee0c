import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useSession } from '../api/session.tsx';
import type { WorkspaceView } from '../api/types.ts';
import { Button, ConfirmDialog, ErrorNote } from '../components/ui.tsx';

/** Whether the workspace is on its way up (asked to run and not there yet). */
export const isStarting = (ws: WorkspaceView) => ws.desired === 'running' && (ws.phase === 'pending' || ws.phase === 'starting' || ws.phase === 'stopping');

/**
 * Open, start, stop and delete, each shown only to whoever `can()` do it
 * (the API refuses the rest anyway). Open goes through the portal's
 * `/w/<team>/<ws>/`, which hands the workspace's own origin a one-time code.
 */
export function WorkspaceActions({ ws, onDeleted, compact }: { ws: WorkspaceView; onDeleted?: () => void; compact?: boolean }) {
  const { api, canOnWorkspace } = useSession();
  const qc = useQueryClient();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [purge, setPurge] = useState(false);
  const refresh = async () => {
    await Promise.all([
      qc.invalidateQueries({ queryKey: ['workspaces'] }),
      qc.invalidateQueries({ queryKey: ['workspace', ws.team, ws.name] }),
      qc.invalidateQueries({ queryKey: ['usage', ws.team] }),
    ]);
  };
  const start = useMutation({ mutationFn: () => api.startWorkspace(ws.team, ws.name), onSuccess: refresh });
  const stop = useMutation({ mutationFn: () => api.stopWorkspace(ws.team, ws.name), onSuccess: refresh });
  const size = compact ? 'btn-small' : '';
  const canOperate = canOnWorkspace('workspace.operate', ws);
  const canConnect = canOnWorkspace('workspace.connect', ws);
  const deleting = ws.desired === 'deleted';
  const label = `${ws.team}/${ws.name}`;

  return (
    <>
      <div className="row-actions">
        {canConnect && ws.phase === 'running' && !deleting ? (
          <a className={`btn btn-primary ${size}`} href={ws.url} target="_blank" rel="noopener" aria-label={`Open ${label} (new tab)`}>
            Open
          </a>
        ) : null}
        {canOperate && !deleting && ws.desired !== 'running' ? (
          <Button className={size} busy={start.isPending} onClick={() => start.mutate()} aria-label={`Start ${label}`}>
            Start
          </Button>
        ) : null}
        {canOperate && !deleting && ws.desired === 'running' ? (
          <Button className={size} busy={stop.isPending} onClick={() => stop.mutate()} aria-label={`Stop ${label}`}>
            Stop
          </Button>
        ) : null}
        {canOperate && !deleting ? (
          <Button className={size} variant="danger" onClick={() => setConfirmDelete(true)} aria-label={`Delete ${label}`}>
            Delete
          </Button>
        ) : null}
      </div>
      <ErrorNote error={start.error ?? stop.error} />
      <ConfirmDialog
        open={confirmDelete}
        title={`Delete ${label}?`}
        confirmLabel={purge ? 'Delete workspace and home' : 'Delete workspace'}
        onClose={() => {
          setConfirmDelete(false);
          setPurge(false);
        }}
        onConfirm={async () => {
          await api.deleteWorkspace(ws.team, ws.name, purge);
          await refresh();
          onDeleted?.();
        }}
      >
        <p>The workspace stops and is removed. Its home is kept unless you also delete it below.</p>
        <label className="checkbox">
          <input type="checkbox" checked={purge} onChange={(e) => setPurge(e.target.checked)} />
          <span>
            Also delete the home ({ws.resources.storage}): every file in it is lost. <strong>This cannot be undone.</strong>
          </span>
        </label>
      </ConfirmDialog>
    </>
  );
}
