import { useId, useState, type FormEvent } from 'react';
import { isValidName, NAME_RULE } from '../../../../src/domain/index.ts';
import type { NewUser, UserChange, UserCreatedView, UserView } from '../../api/types.ts';
import { runThen, type Change } from '../../api/viewModel.ts';
import { Ago, Button, ConfirmDialog, CopyField, Dialog, EmptyState, ErrorNote, Field, FormActions, Loading, Notice, Section, Table, TextInput, type Column } from '../../components/ui.tsx';
import { plural } from '../../format.ts';
import { matches } from './adminKit.ts';
import { FindBar } from './FindBar.tsx';

export interface UserEdit {
  username: string;
  change: UserChange;
}

export interface UsersPageViewProps {
  /** undefined while loading */
  users: UserView[] | undefined;
  /** false when the list stopped before its end (shown as a note) */
  complete: boolean;
  error: unknown;
  /** the signed-in admin, who may not disable themselves or drop their own admin role */
  me: string;
  create: Change<NewUser, UserCreatedView>;
  /** enable, make admin, revoke admin: refusals shown above the table */
  change: Change<UserEdit>;
  /** disabling, asked for first: refusals shown in the confirmation */
  disable: Change<UserEdit>;
}

export function UsersPageView({ users, complete, error, me, create, change, disable }: UsersPageViewProps) {
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<UserCreatedView | null>(null);
  const [disabling, setDisabling] = useState<UserView | null>(null);
  const [filter, setFilter] = useState('');
  const shown = users?.filter((u) => matches(filter, u.username, u.displayName, u.email));
  const openCreate = () => {
    create.reset();
    setCreating(true);
  };
  const createButton = (
    <Button variant="primary" onClick={openCreate}>
      Create user
    </Button>
  );

  return (
    <>
      {created ? <CreatedNotice created={created} onDismiss={() => setCreated(null)} /> : null}
      <Section title="Users" actions={users && users.length > 0 ? createButton : null}>
        <ErrorNote error={error} />
        {change.error && change.input ? <ErrorNote error={change.error} title={`${change.input.username} was not changed.`} /> : null}
        {users === undefined && !error ? <Loading label="Loading users…" /> : null}
        {users && users.length === 0 ? (
          <EmptyState title="No users yet" action={createButton}>
            People sign in with an account an admin creates here, or through single sign-on when Atrium sits behind an authenticating proxy.
          </EmptyState>
        ) : null}
        {users && users.length > 0 && shown ? (
          <>
            <FindBar label="Find a user" placeholder="Username, name or email" value={filter} onChange={setFilter} shown={shown.length} total={users.length} noun="user" />
            <Table
              caption="Users"
              columns={userColumns(me)}
              rows={shown}
              rowKey={(u) => u.id}
              empty={<EmptyState title="No user matches">Nobody's username, name or email contains “{filter.trim()}”.</EmptyState>}
              actions={(u) => <UserActions user={u} self={u.username === me} change={change} onDisable={() => setDisabling(u)} />}
            />
            {complete ? null : (
              <p className="muted">
                Showing the first {plural(users.length, 'user')}; <code>atrium users ls</code> lists every one.
              </p>
            )}
          </>
        ) : null}
      </Section>

      <Dialog open={creating} onClose={() => setCreating(false)} title="Create user">
        <CreateUserForm
          create={create}
          onCancel={() => setCreating(false)}
          onCreated={(result) => {
            setCreating(false);
            setCreated(result);
          }}
        />
      </Dialog>

      <ConfirmDialog
        open={disabling !== null}
        title={`Disable ${disabling?.username ?? ''}?`}
        confirmLabel="Disable user"
        onConfirm={() => disable.run({ username: disabling?.username ?? '', change: { disabled: true } })}
        onClose={() => setDisabling(null)}
      >
        <p>
          Disabling <strong>{disabling?.displayName || disabling?.username}</strong> ends their sessions, revokes their API tokens and stops their workspaces. Their
          workspaces and homes are kept: enable the account again to let them back in.
        </p>
      </ConfirmDialog>
    </>
  );
}

function userColumns(me: string): Array<Column<UserView>> {
  return [
    {
      key: 'user',
      header: 'User',
      cellClassName: 'cell-main',
      cell: (user) => (
        <>
          <div className="cell-title">
            {user.username}
            {user.username === me ? <span className="tag">you</span> : null}
          </div>
          {user.displayName && user.displayName !== user.username ? <div className="cell-sub">{user.displayName}</div> : null}
        </>
      ),
    },
    { key: 'email', header: 'Email', cell: (user) => (user.email ? <span className="admin-break">{user.email}</span> : <span className="muted">—</span>) },
    {
      key: 'status',
      header: 'Status',
      cell: (user) => (
        <span className="admin-badges">
          {user.disabled ? (
            <span className="badge badge-bad">
              <span className="dot" aria-hidden="true" />
              Disabled
            </span>
          ) : (
            <span className="badge badge-ok">
              <span className="dot" aria-hidden="true" />
              Active
            </span>
          )}
          {user.admin ? <span className="badge badge-busy">Admin</span> : null}
          {user.sso ? (
            <span className="badge badge-idle" title={user.externalSubject ? `Single sign-on as ${user.externalSubject}` : 'Single sign-on'}>
              SSO
            </span>
          ) : null}
        </span>
      ),
    },
    { key: 'created', header: 'Created', cell: (user) => <Ago at={user.createdAt} /> },
  ];
}

/** Make or revoke admin, enable or disable: never on one's own account. */
function UserActions({ user, self, change, onDisable }: { user: UserView; self: boolean; change: Change<UserEdit>; onDisable: () => void }) {
  if (self) return <span className="muted admin-self">Your own account</span>;
  const busy = change.pending && change.input?.username === user.username;
  const busyWith = (key: keyof UserChange) => busy && change.input !== undefined && key in change.input.change;
  return (
    <>
      <Button
        className="btn-small"
        busy={busyWith('admin')}
        disabled={busy}
        onClick={() => runThen(change, { username: user.username, change: { admin: !user.admin } })}
      >
        {user.admin ? (
          <>
            Revoke admin<span className="sr-only"> from {user.username}</span>
          </>
        ) : (
          <span>
            Make<span className="sr-only"> {user.username}</span> admin
          </span>
        )}
      </Button>
      {user.disabled ? (
        <Button
          className="btn-small"
          busy={busyWith('disabled')}
          disabled={busy}
          onClick={() => runThen(change, { username: user.username, change: { disabled: false } })}
        >
          Enable<span className="sr-only"> {user.username}</span>
        </Button>
      ) : (
        <Button className="btn-small" variant="danger" disabled={busy} onClick={onDisable}>
          Disable<span className="sr-only"> {user.username}</span>
        </Button>
      )}
    </>
  );
}

/** Shown after creating a user: the generated password appears here once and never again. */
function CreatedNotice({ created, onDismiss }: { created: UserCreatedView; onDismiss: () => void }) {
  return (
    <Notice tone="success">
      <div className="admin-notice">
        <div className="admin-notice-body">
          <p>
            Created user <strong>{created.user.username}</strong>
            {created.password ? '. Atrium generated their password:' : ' with the password you chose.'}
          </p>
          {created.password ? (
            <>
              <CopyField value={created.password} label={`password of ${created.user.username}`} />
              <p className="admin-notice-hint">It is shown only now: copy it and pass it on securely. They can change it once signed in.</p>
            </>
          ) : null}
        </div>
        <Button variant="ghost" className="btn-small" onClick={onDismiss}>
          Dismiss
        </Button>
      </div>
    </Notice>
  );
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

function CreateUserForm({ create, onCancel, onCreated }: { create: Change<NewUser, UserCreatedView>; onCancel: () => void; onCreated: (u: UserCreatedView) => void }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [admin, setAdmin] = useState(false);
  const [checked, setChecked] = useState(false);
  const adminId = useId();
  const errors = {
    username: isValidName(username.trim()) ? undefined : username.trim() ? 'This is not a valid username.' : 'Enter a username.',
    email: email.trim() === '' || EMAIL.test(email.trim()) ? undefined : 'An email address, like jane@example.com.',
    password: password === '' || (password.length >= 8 && password.length <= 256) ? undefined : 'At least 8 characters (at most 256).',
  };
  const shownError = (e: string | undefined) => (checked ? e : undefined);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setChecked(true);
    if (errors.username || errors.email || errors.password) return;
    const body: NewUser = {
      username: username.trim(),
      ...(displayName.trim() ? { displayName: displayName.trim() } : {}),
      ...(email.trim() ? { email: email.trim() } : {}),
      ...(password ? { password } : {}),
      ...(admin ? { admin: true } : {}),
    };
    runThen(create, body, onCreated);
  };
  return (
    <form onSubmit={submit} noValidate>
      <Field label="Username" hint={`${NAME_RULE}. It also names their personal team.`} error={shownError(errors.username)}>
        {(p) => <TextInput {...p} value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" autoCapitalize="none" spellCheck={false} required />}
      </Field>
      <Field label="Display name (optional)">{(p) => <TextInput {...p} value={displayName} onChange={(e) => setDisplayName(e.target.value)} maxLength={128} autoComplete="off" />}</Field>
      <Field label="Email (optional)" error={shownError(errors.email)}>
        {(p) => <TextInput {...p} type="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} autoComplete="off" />}
      </Field>
      <Field label="Password (optional)" hint="Leave empty and Atrium generates one, shown to you once." error={shownError(errors.password)}>
        {(p) => <TextInput {...p} type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />}
      </Field>
      <div className="checkbox admin-check">
        <input id={adminId} type="checkbox" checked={admin} onChange={(e) => setAdmin(e.target.checked)} aria-describedby={`${adminId}-hint`} />
        <label htmlFor={adminId}>
          Platform admin
          <span className="hint" id={`${adminId}-hint`}>
            Can manage every user, team, quota, GPU pool and workspace, and read the audit log.
          </span>
        </label>
      </div>
      <ErrorNote error={create.error} />
      <FormActions submit="Create user" busy={create.pending} onCancel={onCancel} />
    </form>
  );
}
