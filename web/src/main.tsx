import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import './styles.css';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { ApiError, createApiClient } from './api/client.ts';
import { endpoints } from './api/endpoints.ts';
import { ApiProvider } from './api/session.tsx';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      // refusals and missing things do not get better by asking again
      retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
      refetchOnWindowFocus: true,
    },
  },
});

/**
 * When the session ends while the portal is open (expired, revoked, account
 * disabled) every query is dropped and the sign-in page says why, with the
 * page the person was on as where to come back to.
 */
function sessionEnded() {
  if (location.pathname === '/login') return;
  const hadSession = queryClient.getQueryData(['me']) !== undefined;
  queryClient.clear();
  const next = location.pathname + location.search;
  const params = new URLSearchParams({ next });
  if (hadSession) params.set('expired', '1');
  // replace, not push: Back must not return to a page that can only fail
  history.replaceState(null, '', `/login?${params}`);
  dispatchEvent(new PopStateEvent('popstate'));
}

const api = endpoints(createApiClient({ onUnauthenticated: sessionEnded }));

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <ApiProvider api={api}>
        <App />
      </ApiProvider>
    </QueryClientProvider>
  </StrictMode>,
);
