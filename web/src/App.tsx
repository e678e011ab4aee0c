import { BrowserRouter, Route, Routes, Link } from 'react-router';
import { CliLoginPage } from './pages/CliLoginPage.tsx';
import { ApiError } from './api/client.ts';
import { LiveEventsProvider } from './api/events.tsx';
import { SessionProvider, useMeQuery } from './api/session.tsx';
import { Layout } from './components/Layout.tsx';
import { EmptyState, ErrorNote, Loading, PageHeader } from './components/ui.tsx';
import { AdminPage } from './pages/admin/AdminPage.tsx';
import { LoginPage } from './pages/LoginPage.tsx';
import { SettingsPage } from './pages/SettingsPage.tsx';
import { TeamPage } from './pages/TeamPage.tsx';
import { TeamsPage } from './pages/TeamsPage.tsx';
import { WorkspacePage } from './pages/WorkspacePage.tsx';
import { WorkspacesPage } from './pages/WorkspacesPage.tsx';

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="*" element={<SignedIn />} />
      </Routes>
    </BrowserRouter>
  );
}

/** Every page but sign-in: needs the person (a 401 sends the browser to /login), then one event stream for all of them. */
function SignedIn() {
  const me = useMeQuery();
  if (me.isPending || (me.error instanceof ApiError && me.error.status === 401)) {
    return (
      <div className="auth-page">
        <Loading />
      </div>
    );
  }
  if (me.error) {
    return (
      <div className="auth-page">
        <div className="card auth-card">
          <ErrorNote error={me.error} title="Atrium could not load your account." />
        </div>
      </div>
    );
  }
  return (
    <SessionProvider me={me.data}>
      <LiveEventsProvider>
        <Layout>
          <Routes>
            <Route path="/" element={<WorkspacesPage />} />
            <Route path="/workspaces/:team/:ws" element={<WorkspacePage />} />
            <Route path="/teams" element={<TeamsPage />} />
            <Route path="/teams/:team" element={<TeamPage />} />
            <Route path="/settings" element={<SettingsPage />} />
            <Route path="/cli-login" element={<CliLoginPage />} />
            <Route path="/admin/*" element={<AdminPage />} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Layout>
      </LiveEventsProvider>
    </SessionProvider>
  );
}

function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <section className="card" aria-label="Not found">
        <EmptyState title="There is nothing at this address" action={<Link to="/">Go to your workspaces</Link>}>
          The link may be old, or the team or workspace it pointed to was removed.
        </EmptyState>
      </section>
    </>
  );
}
