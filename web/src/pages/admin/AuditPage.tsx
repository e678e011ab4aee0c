import { useInfiniteQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { useSession } from '../../api/session.tsx';
import { filtersSearch, readFilters, type AuditFilters } from './auditFilters.ts';
import { AuditPageView } from './AuditPageView.tsx';

/** The audit log, newest first, 100 entries a page; its filters live in the address. */
export function AuditPage() {
  const { api } = useSession();
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const log = useInfiniteQuery({
    queryKey: ['admin', 'audit', filters],
    queryFn: ({ pageParam }) => api.audit({ ...filters, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const apply = (next: AuditFilters) => setParams(new URLSearchParams(filtersSearch(next)));
  return (
    <AuditPageView
      entries={log.data?.pages.flatMap((p) => p.items)}
      error={log.error}
      filters={filters}
      hasMore={log.hasNextPage}
      loadingMore={log.isFetchingNextPage}
      refreshing={log.isRefetching && !log.isFetchingNextPage}
      onLoadMore={() => void log.fetchNextPage()}
      onRefresh={() => void log.refetch()}
      onFilter={apply}
    />
  );
}
