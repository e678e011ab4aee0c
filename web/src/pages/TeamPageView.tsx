import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { isValidName, NAME_RULE } from '../../../src/domain/index.ts';
import { ROLES } from '../../../src/domain/index.ts';
import { ApiError } from '../api/client.ts';
import type { MemberView, NewVolume, Role, TeamView, UsageView, WorkspaceView } from '../api/types.ts';
import type { Change, Loadable } from '../api/viewModel.ts';
import { Ago, Button, ConfirmDialog, EmptyState, ErrorNote, Field, Loaded, Loading, Notice, PageHeader, PhaseBadge, Section, Select, Table, TextInput, type Column } from '../components/ui.tsx';
import { plural, resources } from '../format.ts';
import { QuotaBars } from './QuotaBars.tsx';
import { VolumesSection, type TeamVolumes, type VolumeEdit } from './VolumesSection.tsx';
import './team.css';

export interface MemberChange {
  username: string;
  role: Role;
}

export interface TeamPageViewProps {
  /** the team's name, from the address */
  name: string;
  /** my username */
  me: string;
  admin: boolean;
  team: Loadable<TeamView>;
  usage: Loadable<UsageView>;
  members: Loadable<MemberView[]>;
  workspaces: Loadable<WorkspaceView[]>;
  /** owners of the team and admins: add, change and remove members */
  canManage: boolean;
  addMember: Change<MemberChange>;
  changeRole: Change<MemberChange>;
  removeMember: (username: string) => Promise<unknown>;
  volumes: Loadable<TeamVolumes>;
  /** editors and owners of the team, and admins: create and grow volumes */
  canManageVolumes: boolean;
  /** owners of the team and admins: delete volumes */
  canDeleteVolumes: boolean;
  createVolume: Change<NewVolume>;
  updateVolume: Change<VolumeEdit>;
  deleteVolume: (name: string) => Promise<unknown>;
}

const ROLE_HELP: Record<Role, string> = {
  owner: 'manages members and all of the team’s workspaces',
  editor: 'creates and uses their own workspaces, sees the team’s',
  viewer: 'sees the team’s workspaces',
};

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** One team: who is in it, what it may use and uses, its workspaces and its volumes. */
export function TeamPageView(props: TeamPageViewProps) {
  const { name, team } = props;
  if (team.error instanceof ApiError && team.error.status === 404) return <TeamNotFound name={name} />;
  if (!team.data) {
    return (
      <>
        <Breadcrumb />
        <PageHeader title={name} />
        {team.pending ? <Loading label="Loading team…" /> : <ErrorNote error={team.error} title="Atrium could not load this team." />}
      </>
    );
  }
  const t = team.data;
  return (
    <>
      <Breadcrumb />
      <PageHeader
        title={t.displayName || t.name}
        subtitle={
          <span className="team-facts">
            {t.displayName && t.displayName !== t.name ? <code>{t.name}</code> : null}
            <span className="badge badge-idle">{t.personal ? 'Personal team' : 'Shared team'}</span>
            {t.sensitive ? <span className="badge badge-busy">Sensitive: sandboxed profiles only</span> : null}
            <span className="badge badge-idle">{t.role ? `Your role: ${t.role}` : 'You are not a member (admin view)'}</span>
          </span>
        }
      />
      {t.sensitive ? (
        <Notice tone="warning">This team handles sensitive work, so its workspaces may only use sandboxed profiles. Atrium refuses any other profile here.</Notice>
      ) : null}
      <div className="team-grid">
        <QuotaSection {...props} />
        <MembersSection {...props} />
      </div>
      <WorkspacesSection {...props} />
      <VolumesSection
        team={t.name}
        volumes={props.volumes}
        canManage={props.canManageVolumes}
        canDelete={props.canDeleteVolumes}
        canPublish={props.admin}
        createVolume={props.createVolume}
        updateVolume={props.updateVolume}
        deleteVolume={props.deleteVolume}
      />
    </>
  );
}

function Breadcrumb() {
  return (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      <Link to="/teams">← All teams</Link>
    </nav>
  );
}

function TeamNotFound({ name }: { name: string }) {
  return (
    <>
      <Breadcrumb />
      <PageHeader title="Team not found" />
      <section className="card team-missing" aria-labelledby="team-missing">
        <h2 id="team-missing">This team does not exist, or you are not a member</h2>
        <p>
          There is no team called <code>{name}</code> that you can see. Check the name, or ask one of the team’s owners to add you.
        </p>
        <Link to="/teams">See your teams</Link>
      </section>
    </>
  );
}

function QuotaSection({ usage, admin }: TeamPageViewProps) {
  return (
    <Section title="Quota and usage">
      <Loaded value={usage} loading="Loading usage…" failed="Usage is unavailable.">
        {(data) => (
          <>
            <QuotaBars usage={data} />
            <p className="hint quota-note">
              Starting and running workspaces count their CPU, memory and GPU limits; every workspace counts its storage, running or not, and every volume its size.
              {admin ? (
                <>
                  {' '}
                  Change the quota in <Link to="/admin/teams">Admin → Teams</Link>.
                </>
              ) : null}
            </p>
          </>
        )}
      </Loaded>
    </Section>
  );
}

function MembersSection({ name, me, admin, members, canManage, addMember, changeRole, removeMember }: TeamPageViewProps) {
  const [removing, setRemoving] = useState<string | null>(null);
  const [demoting, setDemoting] = useState<MemberChange | null>(null);
  const list = members.data;

  const askRole = (m: MemberView, role: Role) => {
    // giving up my own ownership takes my right to undo it: ask first (admins keep theirs)
    if (m.username === me && !admin && m.role === 'owner' && role !== 'owner') setDemoting({ username: m.username, role });
    else changeRole.run({ username: m.username, role }).catch(() => undefined);
  };

  const columns: Array<Column<MemberView>> = [
    {
      key: 'member',
      header: 'Member',
      cellClassName: 'cell-main',
      cell: (m) => (
        <>
          <span className="cell-title">{m.username}</span>
          {m.username === me ? <span className="muted"> (you)</span> : null}
        </>
      ),
    },
    {
      key: 'role',
      header: 'Role',
      cell: (m) =>
        canManage ? (
          <Select
            className="role-select"
            aria-label={`Role of ${m.username}`}
            value={m.role}
            disabled={changeRole.pending && changeRole.input?.username === m.username}
            onChange={(e) => askRole(m, e.target.value as Role)}
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {capital(r)}
              </option>
            ))}
          </Select>
        ) : (
          capital(m.role)
        ),
    },
    { key: 'since', header: 'Since', cell: (m) => <Ago at={m.since} /> },
    // memberships an identity provider's group grants follow that group at each sign-in; the others were granted by hand
    { key: 'from', header: 'Granted by', cell: (m) => (m.group ? <span title="kept in step with this identity-provider group at each sign-in">group {m.group}</span> : <span className="muted">hand</span>) },
  ];

  return (
    <Section title="Members" actions={list ? <span className="muted">{plural(list.length, 'member')}</span> : undefined}>
      {!canManage && list ? <p className="hint members-note">Only the team’s owners can add or remove members and change roles.</p> : null}
      {changeRole.error && changeRole.input && !demoting ? <ErrorNote error={changeRole.error} title={`Could not change the role of ${changeRole.input.username}.`} /> : null}
      <Loaded value={members} loading="Loading members…" failed="Atrium could not load the members.">
        {(list) => (
          <Table
            caption="Members"
            columns={columns}
            rows={list}
            rowKey={(m) => m.username}
            empty={<EmptyState title="No members">This team has no members yet.</EmptyState>}
            actions={
              canManage
                ? (m) => (
                    <Button variant="danger" className="btn-small" aria-label={`Remove ${m.username}`} onClick={() => setRemoving(m.username)}>
                      Remove
                    </Button>
                  )
                : undefined
            }
          />
        )}
      </Loaded>
      {canManage ? <AddMember members={list ?? []} addMember={addMember} /> : null}
      <ConfirmDialog
        open={removing !== null}
        title={removing === me ? `Leave team ${name}?` : `Remove ${removing ?? ''} from ${name}?`}
        confirmLabel={removing === me ? 'Leave team' : 'Remove member'}
        onConfirm={() => removeMember(removing!)}
        onClose={() => setRemoving(null)}
      >
        {removing === me
          ? 'You lose access to this team and its workspaces straight away. Only an owner can add you again.'
          : `${removing ?? ''} loses access to this team and its workspaces straight away. You can add them again at any time.`}
      </ConfirmDialog>
      <ConfirmDialog
        open={demoting !== null}
        title={`Give up ownership of ${name}?`}
        confirmLabel={`Become ${demoting?.role ?? ''}`}
        onConfirm={() => changeRole.run(demoting!)}
        onClose={() => setDemoting(null)}
      >
        You will no longer be able to manage members or the team’s workspaces. Only another owner can make you an owner again.
      </ConfirmDialog>
    </Section>
  );
}

function AddMember({ members, addMember }: { members: MemberView[]; addMember: Change<MemberChange> }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<Role>('editor');
  const [tried, setTried] = useState(false);
  const [added, setAdded] = useState<MemberChange | null>(null);

  const wanted = username.trim().toLowerCase();
  const problem = !wanted
    ? 'Enter the username of the person to add.'
    : !isValidName(wanted)
      ? `Usernames are ${NAME_RULE}.`
      : members.some((m) => m.username === wanted)
        ? `${wanted} is already a member; change their role in the list above.`
        : undefined;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    setAdded(null);
    if (problem) return;
    try {
      await addMember.run({ username: wanted, role });
      setAdded({ username: wanted, role });
      setUsername('');
      setTried(false);
    } catch {
      // the refusal is shown by the form; what was typed stays for another try
    }
  }

  return (
    <form className="add-member" onSubmit={submit} noValidate>
      <h3>Add a member</h3>
      {added ? (
        <Notice tone="success">
          {added.username} is now a member, as {added.role}.
        </Notice>
      ) : null}
      <ErrorNote error={addMember.error} title="Could not add the member." />
      <div className="inline-form">
        <Field label="Username" error={tried ? problem : undefined}>
          {(p) => (
            <TextInput
              {...p}
              name="username"
              autoComplete="off"
              autoCapitalize="none"
              spellCheck={false}
              placeholder="e.g. jane-doe"
              value={username}
              onChange={(e) => setUsername(e.target.value)}
            />
          )}
        </Field>
        <Field label="Role">
          {(p) => (
            <Select {...p} name="role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {capital(r)}
                </option>
              ))}
            </Select>
          )}
        </Field>
        <Button type="submit" variant="primary" busy={addMember.pending}>
          Add member
        </Button>
      </div>
      <p className="hint">
        {capital(role)}: {ROLE_HELP[role]}.
      </p>
    </form>
  );
}

function WorkspacesSection({ name, workspaces }: TeamPageViewProps) {
  const list = workspaces.data;
  return (
    <Section title="Workspaces" actions={list && list.length > 0 ? <span className="muted">{plural(list.length, 'workspace')}</span> : undefined}>
      <Loaded value={workspaces} loading="Loading workspaces…" failed="Atrium could not load the workspaces.">
        {(list) => (
          <Table
            caption="Workspaces"
            columns={WORKSPACE_COLUMNS}
            rows={list}
            rowKey={(w) => w.id}
            empty={
              <EmptyState title="No workspaces in this team yet" action={<Link to="/">Go to your workspaces</Link>}>
                Workspaces that the team’s members create in <code>{name}</code> appear here, with who owns them and what they use.
              </EmptyState>
            }
          />
        )}
      </Loaded>
    </Section>
  );
}

const WORKSPACE_COLUMNS: Array<Column<WorkspaceView>> = [
  {
    key: 'workspace',
    header: 'Workspace',
    cellClassName: 'cell-main',
    cell: (w) => (
      <>
        <Link className="cell-title" to={`/workspaces/${encodeURIComponent(w.team)}/${encodeURIComponent(w.name)}`}>
          {w.name}
        </Link>
        {w.shared ? <div className="cell-sub">Shared with the team’s editors</div> : null}
      </>
    ),
  },
  { key: 'owner', header: 'Owner', cell: (w) => w.owner },
  { key: 'profile', header: 'Profile', cell: (w) => w.profile },
  { key: 'status', header: 'Status', cell: (w) => <PhaseBadge phase={w.phase} desired={w.desired} /> },
  { key: 'resources', header: 'Resources', cellClassName: 'cell-resources', cell: (w) => resources(w.resources) },
  { key: 'activity', header: 'Last activity', cell: (w) => (w.lastActivityAt ? <Ago at={w.lastActivityAt} /> : <span className="muted">none yet</span>) },
];
