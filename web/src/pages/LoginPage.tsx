import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { useLocation, useNavigate, useSearchParams } from 'react-router';
import { safeNext } from '../../../src/domain/index.ts';
import { useApi, useMeQuery } from '../api/session.tsx';
import { Logo } from '../components/Logo.tsx';
import { Button, ErrorNote, Field, Notice, TextInput } from '../components/ui.tsx';

/** A workspace, which the browser loads from the server (through the proxy); every other path is a portal page. */
const serverPath = (p: string) => p.startsWith('/w/');

/**
 * Sign-in with a local account. Someone already signed in (a session, or
 * single sign-on through the auth proxy's trusted header) goes straight on to
 * where they were headed.
 */
export function LoginPage() {
  const [params] = useSearchParams();
  const location = useLocation();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const next = safeNext(params.get('next'), '/');
  const me = useMeQuery();

  const signedIn = me.data !== undefined;
  useEffect(() => {
    if (!signedIn) return;
    if (!serverPath(next)) void navigate(next, { replace: true });
    else if (location.pathname !== next) window.location.assign(next);
  }, [signedIn, next, navigate, location.pathname]);

  const signedOut = (location.state as { signedOut?: boolean } | null)?.signedOut;
  const expired = params.get('expired') === '1';
  // signing in refetches the person; the effect above then goes on to `next`
  return <LoginPageView next={next} expired={expired} signedOut={Boolean(signedOut)} onSignedIn={() => qc.invalidateQueries({ queryKey: ['me'] })} />;
}

export function LoginPageView({ next, expired, signedOut, onSignedIn }: { next: string; expired: boolean; signedOut: boolean; onSignedIn: () => Promise<void> }) {
  const api = useApi();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [providers, setProviders] = useState<Array<{ name: string; displayName: string; login: string }>>([]);
  useEffect(() => {
    document.title = 'Sign in · Atrium';
    // identity providers (auth.oidc) are buttons above the password form; none configured, none shown
    api.providers().then((r) => setProviders(r.items), () => setProviders([]));
  }, [api]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!username.trim() || !password) {
      setError(new Error('Enter your username and password.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.login(username.trim(), password);
      await onSignedIn();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <div className="auth-page">
      <main className="card auth-card">
        <div className="brand">
          <Logo />
          <span>Atrium</span>
        </div>
        <h1>Sign in</h1>
        <p className="subtitle auth-subtitle">
          {next.startsWith('/w/') ? (
            <>
              to open <code>{next.split('/').slice(2, 4).join('/')}</code>
            </>
          ) : (
            'to your workspaces'
          )}
        </p>
        {expired ? <Notice tone="warning">Your session has ended. Sign in again to carry on where you were.</Notice> : null}
        {signedOut ? <Notice tone="success">You have signed out.</Notice> : null}
        <ErrorNote error={error} />
        {providers.length > 0 ? (
          <div className="sso-buttons">
            {providers.map((p) => (
              <a key={p.name} className="btn" href={`${p.login}?next=${encodeURIComponent(next)}`}>
                Sign in with {p.displayName}
              </a>
            ))}
            <p className="subtitle">or with a username and password</p>
          </div>
        ) : null}
        <form onSubmit={submit} noValidate>
          <Field label="Username">
            {(p) => <TextInput {...p} name="username" autoComplete="username" autoCapitalize="none" spellCheck={false} required value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />}
          </Field>
          <Field label="Password">
            {(p) => <TextInput {...p} name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />}
          </Field>
          <Button type="submit" variant="primary" busy={busy}>
            Sign in
          </Button>
        </form>
      </main>
    </div>
  );
}
