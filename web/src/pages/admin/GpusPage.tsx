import { useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { useSession } from '../../api/session.tsx';
import type { GrantView } from '../../api/types.ts';
import { allPages } from './adminKit.ts';
import { GpusPageView } from './GpusPageView.tsx';

/** The GPU inventory: pools and their use, the teams granted each, and the workspaces holding GPUs now. */
export function GpusPage() {
  const { api } = useSession();
  const qc = useQueryClient();
  const pools = useQuery({ queryKey: ['pools'], queryFn: () => api.pools().then((r) => r.items) });
  const grants = useQueries({
    queries: (pools.data ?? []).map((p) => ({ queryKey: ['pools', p.name, 'grants'], queryFn: () => api.grants(p.name).then((r) => r.items) })),
  });
  const holders = useQuery({
    queryKey: ['admin', 'gpu-holders'],
    queryFn: async () => {
      const all = await allPages((cursor) => api.workspaces({ all: true, holdsGpu: true, limit: 500, cursor }), 10);
      return { items: all.items, complete: all.complete };
    },
  });

  // the live event stream refreshes the pools on every workspace change; the holders follow them
  const poolsAt = pools.dataUpdatedAt;
  const seenPoolsAt = useRef(poolsAt);
  useEffect(() => {
    if (poolsAt !== seenPoolsAt.current && seenPoolsAt.current !== 0) void qc.invalidateQueries({ queryKey: ['admin', 'gpu-holders'] });
    seenPoolsAt.current = poolsAt;
  }, [poolsAt, qc]);

  const grantsByPool = new Map<string, { grants: GrantView[] | undefined; error: unknown }>();
  (pools.data ?? []).forEach((p, i) => grantsByPool.set(p.name, { grants: grants[i]?.data, error: grants[i]?.error ?? null }));
  return (
    <GpusPageView
      pools={pools.data}
      poolsError={pools.error}
      grants={grantsByPool}
      holders={holders.data?.items}
      holdersComplete={holders.data?.complete ?? true}
      holdersError={holders.error}
    />
  );
}
