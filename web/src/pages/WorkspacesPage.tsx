import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useSession } from '../api/session.tsx';
import type { WorkspaceView } from '../api/types.ts';
import { LaunchDialog } from './LaunchDialog.tsx';
import { WorkspacesPageView } from './WorkspacesPageView.tsx';

/** My workspaces across every team I belong to, kept live by the portal's event stream. */
export function WorkspacesPage() {
  const { api, me, can } = useSession();
  const list = useQuery({ queryKey: ['workspaces', 'mine'], queryFn: () => api.workspaces() });
  const [launching, setLaunching] = useState(false);
  const [launched, setLaunched] = useState<WorkspaceView | null>(null);
  const canLaunch = me.teams.some((t) => can('workspace.create', { kind: 'team', id: t.name }));
  return (
    <>
      <WorkspacesPageView
        workspaces={list.data?.items}
        more={Boolean(list.data?.nextCursor)}
        error={list.error}
        canLaunch={canLaunch}
        launched={launched}
        me={me.user.username}
        onLaunch={() => setLaunching(true)}
      />
      {canLaunch ? (
        <LaunchDialog
          open={launching}
          onClose={() => setLaunching(false)}
          onLaunched={(ws) => {
            setLaunching(false);
            setLaunched(ws);
          }}
        />
      ) : null}
    </>
  );
}
