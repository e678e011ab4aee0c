import { useMutation } from '@tanstack/react-query';
import { useEffect } from 'react';
import { useSearchParams } from 'react-router';
import { useSession } from '../api/session.tsx';
import { PageHeader, Section } from '../components/Page.tsx';
import { Button, ErrorNote, Notice } from '../components/ui.tsx';

const CODE = /^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$/;

/** `/cli-login?code=…`: approving `atrium login --sso` for the person signed in here. */
export function CliLoginPage() {
  const { api, me } = useSession();
  const [params] = useSearchParams();
  const code = params.get('code') ?? '';
  const approve = useMutation({ mutationFn: () => api.approveCliLogin(code) });
  useEffect(() => {
    document.title = 'Approve a CLI sign-in · Atrium';
  }, []);
  return <CliLoginPageView code={code} username={me.user.username} approved={approve.isSuccess} busy={approve.isPending} error={approve.error} onApprove={() => approve.mutate()} />;
}

export function CliLoginPageView(p: { code: string; username: string; approved: boolean; busy: boolean; error: unknown; onApprove: () => void }) {
  const valid = CODE.test(p.code);
  return (
    <>
      <PageHeader title="Approve a CLI sign-in" subtitle={`as ${p.username}`} />
      <Section title="Code">
        {!valid ? (
          <Notice tone="warning">This link has no valid code. Run <code>atrium login --sso</code> again and open the address it shows.</Notice>
        ) : p.approved ? (
          <Notice tone="success">Approved. Go back to your terminal: the CLI is signed in as {p.username}.</Notice>
        ) : (
          <>
            <p className="cli-code">
              <code>{p.code}</code>
            </p>
            <p className="hint">Approve only if your own terminal shows this very code, right now. The CLI that shows it gets an API token that acts as you.</p>
            <ErrorNote error={p.error} />
            <Button variant="primary" busy={p.busy} onClick={p.onApprove}>
              Approve
            </Button>
          </>
        )}
      </Section>
    </>
  );
}
