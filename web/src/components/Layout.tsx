import { useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { NavLink, useNavigate } from 'react-router';
import { useLiveConnected } from '../api/events.tsx';
import { useSession } from '../api/session.tsx';
import { Logo } from './Logo.tsx';

/** The frame of every signed-in page: brand, navigation, the person and sign-out, then the page. */
export function Layout({ children }: { children: ReactNode }) {
  const { me, api } = useSession();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const live = useLiveConnected();
  const [signingOut, setSigningOut] = useState(false);
  const links: Array<[string, string]> = [
    ['/', 'Workspaces'],
    ['/teams', 'Teams'],
    ['/settings', 'Keys & tokens'],
  ];
  if (me.user.admin) links.push(['/admin', 'Admin']);
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <NavLink to="/" className="brand" aria-label="Atrium home">
            <Logo />
            <span>Atrium</span>
          </NavLink>
          <nav aria-label="Main" className="nav">
            {links.map(([to, label]) => (
              <NavLink key={to} to={to} end={to === '/'} className={({ isActive }) => (isActive ? 'active' : '')}>
                {label}
              </NavLink>
            ))}
          </nav>
          <div className="who">
            <span className={`live ${live ? 'live-on' : 'live-off'}`} title={live ? 'Live updates on' : 'Live updates reconnecting'}>
              <span className="dot" aria-hidden="true" />
              <span className="sr-only">{live ? 'Live updates on' : 'Live updates reconnecting'}</span>
            </span>
            <span className="username" title={me.user.email ?? undefined}>
              {me.user.displayName || me.user.username}
              {me.user.admin ? <span className="tag">admin</span> : null}
            </span>
            {me.via !== 'header' ? (
              <button
                type="button"
                className="btn btn-ghost"
                disabled={signingOut}
                onClick={async () => {
                  setSigningOut(true);
                  const out = await api.logout().catch(() => undefined);
                  qc.clear();
                  // signed in with an identity provider: its session ends too, and it sends the browser back to the sign-in page
                  if (out?.endSession) window.location.assign(out.endSession);
                  else void navigate('/login', { replace: true, state: { signedOut: true } });
                }}
              >
                Sign out
              </button>
            ) : null}
          </div>
        </div>
      </header>
      <main id="main" className="content" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
