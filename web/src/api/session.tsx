import { useQuery } from '@tanstack/react-query';
import { createContext, useContext, useMemo, type ReactNode } from 'react';
import { can, type Action, type Resource, type Subject } from '../../../src/domain/index.ts';
import type { Endpoints } from './endpoints.ts';
import type { MeView, Role, WorkspaceView } from './types.ts';

interface Session {
  api: Endpoints;
  me: MeView;
  /** the server's own `can()`, with teams and people named instead of by id */
  can: (action: Action, resource: Resource) => boolean;
  canOnWorkspace: (action: Action, ws: WorkspaceView) => boolean;
  role: (team: string) => Role | undefined;
}

const ApiContext = createContext<Endpoints | null>(null);
const SessionContext = createContext<Session | null>(null);

export function ApiProvider({ api, children }: { api: Endpoints; children: ReactNode }) {
  return <ApiContext.Provider value={api}>{children}</ApiContext.Provider>;
}

export function useApi(): Endpoints {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside ApiProvider');
  return api;
}

export function useMeQuery() {
  const api = useApi();
  return useQuery({ queryKey: ['me'], queryFn: api.me, retry: false, staleTime: 30_000 });
}

/** Provides the signed-in person to the pages below it. */
export function SessionProvider({ me, children }: { me: MeView; children: ReactNode }) {
  const api = useApi();
  const value = useMemo<Session>(() => {
    const roles = new Map(me.teams.map((t) => [t.name, t.role] as const));
    const subject: Subject = { kind: 'user', id: me.user.username, username: me.user.username, admin: me.user.admin, roles };
    return {
      api,
      me,
      can: (action, resource) => can(subject, action, resource),
      canOnWorkspace: (action, ws) => can(subject, action, { kind: 'workspace', teamId: ws.team, ownerId: ws.owner, shared: ws.shared }),
      role: (team) => roles.get(team),
    };
  }, [api, me]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}
