import { useState, type FormEvent, type ReactNode } from 'react';
import type { SshKeyView, TokenCreatedView, TokenView } from '../api/types.ts';
import type { Change, Loadable } from '../api/viewModel.ts';
import { Ago, Button, ConfirmDialog, CopyField, EmptyState, ErrorNote, Field, Loaded, Notice, PageHeader, Section, Select, Table, TextInput, type Column } from '../components/ui.tsx';
import { ago, dateTime } from '../format.ts';
import './settings.css';

export interface NewKey {
  publicKey: string;
  name: string | undefined;
}

export interface NewToken {
  name: string;
  expiresIn: string;
}

export interface SettingsPageViewProps {
  /** where the portal is served, for the examples */
  origin: string;
  keys: Loadable<SshKeyView[]>;
  tokens: Loadable<TokenView[]>;
  addKey: Change<NewKey>;
  removeKey: (id: string) => Promise<unknown>;
  createToken: Change<NewToken>;
  /** the token just made: its secret is shown this once */
  created: TokenCreatedView | undefined;
  onSecretCopied: () => void;
  revokeToken: (id: string) => Promise<unknown>;
}

/** The API's rule for token and key names (schemas.ts `TokenName`). */
const PRINTABLE = /^[\x20-\x7e]{1,64}$/;
const NAME_RULE = '1–64 characters: letters, digits, spaces and ASCII punctuation';

/** The API's Duration values offered for a token's lifetime. */
const EXPIRIES: Array<[string, string]> = [
  ['30d', '30 days'],
  ['90d', '90 days'],
  ['365d', '1 year'],
  ['never', 'Never'],
];

export function SettingsPageView(props: SettingsPageViewProps) {
  return (
    <>
      <PageHeader title="Keys & tokens" subtitle="How you reach Atrium from your own machine: SSH keys for your workspaces, API tokens for the CLI and scripts." />
      <SshKeys {...props} />
      <ApiTokens {...props} />
    </>
  );
}

const KEY_COLUMNS: Array<Column<SshKeyView>> = [
  {
    key: 'name',
    header: 'Name',
    cellClassName: 'cell-main',
    cell: (k) => (
      <>
        <span className="cell-title">{k.name}</span>
        <div className="cell-sub">{k.publicKey.split(' ')[0]}</div>
      </>
    ),
  },
  { key: 'fingerprint', header: 'Fingerprint', cell: (k) => <code className="fingerprint">{k.fingerprint}</code> },
  { key: 'added', header: 'Added', cell: (k) => <Ago at={k.createdAt} /> },
];

function SshKeys({ keys, addKey, removeKey }: SettingsPageViewProps) {
  const [removing, setRemoving] = useState<SshKeyView | null>(null);
  return (
    <Section title="SSH keys" id="ssh-keys">
      <p className="settings-lead">
        Your public keys let you connect to your workspaces with SSH and VS Code Remote-SSH through Atrium’s SSH gateway; <code>atrium config-ssh</code> writes
        the entries to your SSH config.
      </p>
      <Loaded value={keys} loading="Loading your keys…" failed="Atrium could not load your SSH keys.">
        {(list) => (
          <Table
            caption="SSH keys"
            columns={KEY_COLUMNS}
            rows={list}
            rowKey={(k) => k.id}
            empty={<EmptyState title="No SSH keys yet">Add the public key of each computer you work from, below.</EmptyState>}
            actions={(k) => (
              <Button variant="danger" className="btn-small" aria-label={`Remove key ${k.name}`} onClick={() => setRemoving(k)}>
                Remove
              </Button>
            )}
          />
        )}
      </Loaded>
      <AddKey addKey={addKey} />
      <ConfirmDialog
        open={removing !== null}
        title={`Remove key ${removing?.name ?? ''}?`}
        confirmLabel="Remove key"
        onConfirm={() => removeKey(removing!.id)}
        onClose={() => setRemoving(null)}
      >
        <p>
          The computer holding this key can no longer connect to your workspaces over SSH. You can add the key again later.
        </p>
        {removing ? <code className="fingerprint">{removing.fingerprint}</code> : null}
      </ConfirmDialog>
    </Section>
  );
}

function AddKey({ addKey }: { addKey: Change<NewKey> }) {
  const [publicKey, setPublicKey] = useState('');
  const [name, setName] = useState('');
  const [tried, setTried] = useState(false);
  const [added, setAdded] = useState(false);

  const line = publicKey.trim();
  const keyProblem = !line
    ? 'Paste your public key.'
    : line.includes('PRIVATE KEY')
      ? 'This is a private key: never share it. Paste the public key, from the file ending in .pub.'
      : line.length < 16 || /[\r\n]/.test(line)
        ? 'Paste one line: the whole contents of the .pub file.'
        : undefined;
  const nameProblem = name.trim() && !PRINTABLE.test(name.trim()) ? `Names are ${NAME_RULE}.` : undefined;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    setAdded(false);
    if (keyProblem || nameProblem) return;
    try {
      await addKey.run({ publicKey: line, name: name.trim() || undefined });
      setPublicKey('');
      setName('');
      setTried(false);
      setAdded(true);
    } catch {
      // the refusal is shown above the form; what was pasted stays for another try
    }
  }

  return (
    <form className="settings-form" onSubmit={submit} noValidate>
      <h3>Add a key</h3>
      {added ? <Notice tone="success">Key added. It works for every workspace you can connect to.</Notice> : null}
      <ErrorNote error={addKey.error} title="Could not add the key." />
      <Field label="Public key" hint={<>Paste the contents of <code>~/.ssh/id_ed25519.pub</code> (or another <code>.pub</code> file): one line starting with <code>ssh-ed25519</code>, <code>ssh-rsa</code> or <code>ecdsa-sha2-…</code>.</>} error={tried ? keyProblem : undefined}>
        {(p) => (
          <textarea
            {...p}
            className="input"
            name="publicKey"
            rows={3}
            spellCheck={false}
            autoCapitalize="none"
            autoComplete="off"
            placeholder="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… you@laptop"
            value={publicKey}
            onChange={(e) => setPublicKey(e.target.value)}
          />
        )}
      </Field>
      <div className="settings-narrow">
        <Field label="Name (optional)" hint="Without one, the key is named after the comment at its end." error={tried ? nameProblem : undefined}>
          {(p) => <TextInput {...p} name="keyName" autoComplete="off" maxLength={64} placeholder="e.g. work laptop" value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
      </div>
      <Button type="submit" variant="primary" busy={addKey.pending}>
        Add key
      </Button>
    </form>
  );
}

function expiry(t: TokenView) {
  if (!t.expiresAt) return <span className="muted">never</span>;
  const past = Date.parse(t.expiresAt) <= Date.now();
  return (
    <time dateTime={t.expiresAt} title={dateTime(t.expiresAt)}>
      {past ? <span className="badge badge-bad">expired {ago(t.expiresAt)}</span> : ago(t.expiresAt)}
    </time>
  );
}

const TOKEN_COLUMNS: Array<Column<TokenView>> = [
  { key: 'name', header: 'Name', cellClassName: 'cell-main', cell: (t) => <span className="cell-title">{t.name}</span> },
  { key: 'created', header: 'Created', cell: (t) => <Ago at={t.createdAt} /> },
  { key: 'expires', header: 'Expires', cell: expiry },
  { key: 'used', header: 'Last used', cell: (t) => (t.lastUsedAt ? <Ago at={t.lastUsedAt} /> : <span className="muted">never</span>) },
];

function ApiTokens({ origin, tokens, createToken, created, onSecretCopied, revokeToken }: SettingsPageViewProps) {
  const [revoking, setRevoking] = useState<TokenView | null>(null);
  return (
    <Section title="API tokens">
      <p className="settings-lead">
        Tokens sign in the <code>atrium</code> CLI and your scripts as you, with everything you are allowed to do. Give each one a name saying where it is used,
        and revoke it when that is over.
      </p>
      <Loaded value={tokens} loading="Loading your tokens…" failed="Atrium could not load your API tokens.">
        {(list) => (
          <Table
            caption="API tokens"
            columns={TOKEN_COLUMNS}
            rows={list}
            rowKey={(t) => t.id}
            empty={
              <EmptyState title="No API tokens">
                Create one below, or run <code>atrium login</code>, which makes one for the CLI.
              </EmptyState>
            }
            actions={(t) => (
              <Button variant="danger" className="btn-small" aria-label={`Revoke token ${t.name}`} onClick={() => setRevoking(t)}>
                Revoke
              </Button>
            )}
          />
        )}
      </Loaded>
      <CreateToken createToken={createToken} secret={created ? <NewSecret origin={origin} created={created} onDone={onSecretCopied} /> : null} />
      <ConfirmDialog
        open={revoking !== null}
        title={`Revoke token ${revoking?.name ?? ''}?`}
        confirmLabel="Revoke token"
        onConfirm={() => revokeToken(revoking!.id)}
        onClose={() => setRevoking(null)}
      >
        Anything still using this token (a CLI, a script, a CI job) is refused from now on. This cannot be undone.
      </ConfirmDialog>
    </Section>
  );
}

function NewSecret({ origin, created, onDone }: { origin: string; created: TokenCreatedView; onDone: () => void }) {
  const { token, info } = created;
  return (
    <Notice tone="success">
      <div className="new-secret">
        <p>
          <strong>Token “{info.name}” created.</strong> Copy it now: it is not shown again.
        </p>
        <CopyField value={token} label={`API token ${info.name}`} />
        <p>Use it without leaving it in your shell history: read it into a variable (paste, then Enter), then</p>
        <CopyField value={`read -rs ATRIUM_TOKEN && export ATRIUM_TOKEN ATRIUM_URL=${origin}`} label="shell example" />
        <CopyField value="atrium whoami" label="CLI example" />
        <CopyField value={`curl -H "Authorization: Bearer $ATRIUM_TOKEN" ${origin}/api/v1/me`} label="curl example" />
        <div className="new-secret-actions">
          <Button onClick={onDone}>I have copied it</Button>
        </div>
      </div>
    </Notice>
  );
}

/** The form, with the secret of the token it just made shown right where the person is looking. */
function CreateToken({ createToken, secret }: { createToken: Change<NewToken>; secret: ReactNode }) {
  const [name, setName] = useState('');
  const [expiresIn, setExpiresIn] = useState('90d');
  const [tried, setTried] = useState(false);

  const wanted = name.trim();
  const problem = !wanted ? 'Give the token a name, e.g. where it is used.' : !PRINTABLE.test(wanted) ? `Names are ${NAME_RULE}.` : undefined;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (problem) return;
    try {
      await createToken.run({ name: wanted, expiresIn });
      setName('');
      setTried(false);
    } catch {
      // the refusal is shown above the form; what was typed stays for another try
    }
  }

  return (
    <form className="settings-form" onSubmit={submit} noValidate>
      <h3>Create a token</h3>
      {secret}
      <ErrorNote error={createToken.error} title="Could not create the token." />
      <div className="inline-form">
        <Field label="Name" error={tried ? problem : undefined}>
          {(p) => <TextInput {...p} name="tokenName" autoComplete="off" maxLength={64} placeholder="e.g. CI deploy job" value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Expires after">
          {(p) => (
            <Select {...p} name="expiresIn" value={expiresIn} onChange={(e) => setExpiresIn(e.target.value)}>
              {EXPIRIES.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </Select>
          )}
        </Field>
        <Button type="submit" variant="primary" busy={createToken.pending}>
          Create token
        </Button>
      </div>
    </form>
  );
}
