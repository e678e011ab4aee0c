import { useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from 'react';
import { useApi } from './session.tsx';
import { openEventStream } from './stream.ts';
import type { EventView } from './types.ts';

/** The latest word from a workspace's events: what it is doing right now. */
export interface Progress {
  phase: string | undefined;
  message: string;
  at: string;
}

interface LiveEvents {
  progress: (key: string) => Progress | undefined;
  subscribe: (listener: () => void) => () => void;
  connected: () => boolean;
  version: () => number;
}

const Ctx = createContext<LiveEvents | null>(null);

/** Event types that change what lists and usage show. */
const CHANGES = new Set(['created', 'desired', 'phase', 'deleted']);

/**
 * One event stream for the whole portal (`GET /api/v1/events`: every team I
 * belong to), however many workspaces a page shows. On every `ready` (first
 * connection and each reconnection) the shown state is fetched again, then
 * kept current from the stream: phases and steps are kept per workspace for
 * progress, and the lists and usage they change are refetched; `volume`
 * events refetch the teams' volumes.
 */
export function LiveEventsProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const api = useApi();
  const store = useMemo(() => {
    const latest = new Map<string, Progress>();
    const listeners = new Set<() => void>();
    // one mutable record the stream updates and the store's readers read, outside React's state
    const state = { connected: false, version: 0 };
    const notify = () => {
      state.version++;
      listeners.forEach((l) => l());
    };
    return {
      latest,
      notify,
      setConnected(v: boolean) {
        if (state.connected !== v) {
          state.connected = v;
          notify();
        }
      },
      api: {
        progress: (key: string) => latest.get(key),
        subscribe: (l: () => void) => {
          listeners.add(l);
          return () => {
            listeners.delete(l);
          };
        },
        connected: () => state.connected,
        version: () => state.version,
      } satisfies LiveEvents,
    };
  }, []);

  useEffect(() => {
    let refetch: ReturnType<typeof setTimeout> | undefined;
    const refresh = () => {
      clearTimeout(refetch);
      // a burst of events (a start moves through several phases) becomes one refetch
      refetch = setTimeout(() => {
        void qc.invalidateQueries({ queryKey: ['workspaces'] });
        void qc.invalidateQueries({ queryKey: ['workspace'] });
        void qc.invalidateQueries({ queryKey: ['usage'] });
        void qc.invalidateQueries({ queryKey: ['pools'] });
        // my SSH access lists the workspaces I may enter (refetched only while a Connect panel shows it)
        void qc.invalidateQueries({ queryKey: ['ssh'] });
        // which workspaces mount each volume
        void qc.invalidateQueries({ queryKey: ['volumes'] });
      }, 150);
    };
    const onEvent = (m: MessageEvent<string>) => {
      const e = JSON.parse(m.data) as EventView;
      if (!e.workspace) return;
      const key = `${e.team}/${e.workspace}`;
      const phase = typeof e.data.phase === 'string' ? e.data.phase : store.latest.get(key)?.phase;
      store.latest.set(key, { phase, message: e.message, at: e.at });
      store.notify();
      if (CHANGES.has(e.type)) refresh();
    };
    // a team's volume was created, changed or deleted: its volumes (and the datasets of the teams it is published to), and the storage they take
    const onVolume = (m: MessageEvent<string>) => {
      const e = JSON.parse(m.data) as EventView;
      void qc.invalidateQueries({ queryKey: ['volumes'] });
      void qc.invalidateQueries({ queryKey: ['usage', e.team] });
    };
    const close = openEventStream('/api/v1/events', {
      listeners: { ...Object.fromEntries(['created', 'desired', 'phase', 'step', 'idle-warning', 'deleted'].map((t) => [t, onEvent])), volume: onVolume },
      onReady: refresh,
      setConnected: (c) => store.setConnected(c),
      checkSession: () => api.me(),
    });
    return () => {
      clearTimeout(refetch);
      close();
    };
  }, [api, qc, store]);

  return <Ctx.Provider value={store.api}>{children}</Ctx.Provider>;
}

function useLive(): LiveEvents {
  const live = useContext(Ctx);
  if (!live) throw new Error('useLive outside LiveEventsProvider');
  return live;
}

/** What a workspace's events last said, re-rendering as they arrive. */
export function useProgress(team: string, name: string): Progress | undefined {
  const live = useLive();
  useSyncExternalStore(live.subscribe, live.version);
  return live.progress(`${team}/${name}`);
}

export function useLiveConnected(): boolean {
  const live = useLive();
  return useSyncExternalStore(live.subscribe, live.connected);
}
