import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useMemo, useState, type FormEvent } from 'react';
import { isValidName, NAME_RULE } from '../../../src/domain/index.ts';
import { launchRefusal } from '../admission.ts';
import { useSession } from '../api/session.tsx';
import type { ProfileView, WorkspaceView } from '../api/types.ts';
import { Dialog, ErrorNote, Field, FormActions, Loading, Select, TextInput } from '../components/ui.tsx';
import { resources } from '../format.ts';

/**
 * Launch a workspace: a team I may create in, a name, and a profile. Each
 * profile shows what it takes and is disabled, with the reason, when the
 * team's quota has no room for it (the server's own admission rule).
 */
export function LaunchDialog({ open, onClose, onLaunched }: { open: boolean; onClose: () => void; onLaunched: (ws: WorkspaceView) => void }) {
  const { api, me, can } = useSession();
  const qc = useQueryClient();
  const teams = me.teams.filter((t) => can('workspace.create', { kind: 'team', id: t.name }));
  const personal = teams.find((t) => t.personal)?.name ?? teams[0]?.name ?? '';
  const [team, setTeam] = useState(personal);
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState('');
  const [touched, setTouched] = useState(false);

  const profiles = useQuery({ queryKey: ['profiles'], queryFn: api.profiles, enabled: open, staleTime: 60_000 });
  const [teamInfo, usage] = useQueries({
    queries: [
      { queryKey: ['team', team], queryFn: () => api.team(team), enabled: open && team !== '' },
      { queryKey: ['usage', team], queryFn: () => api.usage(team), enabled: open && team !== '' },
    ],
  });
  const refusals = useMemo(() => {
    const out = new Map<string, string | undefined>();
    if (!teamInfo.data || !usage.data) return out;
    for (const p of profiles.data?.items ?? []) out.set(p.name, launchRefusal(p, teamInfo.data, usage.data));
    return out;
  }, [profiles.data, teamInfo.data, usage.data]);
  // the chosen profile while it still fits; otherwise the first that does
  const fits = (name: string) => name !== '' && refusals.has(name) && !refusals.get(name);
  const profile = !refusals.size || fits(chosen) ? chosen : ([...refusals].find(([, why]) => !why)?.[0] ?? '');

  const launch = useMutation({
    mutationFn: () => api.createWorkspace(team, { name, profile, start: true }),
    onSuccess: async (ws) => {
      await Promise.all([qc.invalidateQueries({ queryKey: ['workspaces'] }), qc.invalidateQueries({ queryKey: ['usage', team] })]);
      onLaunched(ws);
    },
  });
  // every opening starts afresh; what was typed or refused last time is gone (adjusted while rendering, not in an effect)
  const [wasOpen, setWasOpen] = useState(open);
  if (open !== wasOpen) {
    setWasOpen(open);
    if (open) {
      setName('');
      setTouched(false);
      setTeam(personal);
    }
  }
  const { reset } = launch;
  useEffect(() => {
    if (open) reset();
  }, [open, reset]);
  const nameError = touched && !isValidName(name) ? `Use ${NAME_RULE}.` : undefined;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!isValidName(name) || !profile) return;
    launch.mutate();
  };
  const legend = useId();

  return (
    <Dialog open={open} onClose={onClose} title="New workspace" wide>
      <form onSubmit={submit} noValidate>
        <div className="launch-top">
          <Field label="Team" hint={teams.length > 1 ? 'Quota is charged to this team.' : undefined}>
            {(p) => (
              <Select {...p} value={team} onChange={(e) => setTeam(e.target.value)}>
                {teams.map((t) => (
                  <option key={t.name} value={t.name}>
                    {t.name}
                    {t.personal ? ' (personal)' : ''}
                  </option>
                ))}
              </Select>
            )}
          </Field>
          <Field label="Name" hint={nameError ? undefined : 'Lowercase letters, digits and hyphens, e.g. thesis-lab.'} error={nameError}>
            {(p) => (
              <TextInput
                {...p}
                value={name}
                data-autofocus
                autoComplete="off"
                autoCapitalize="none"
                spellCheck={false}
                maxLength={32}
                onChange={(e) => setName(e.target.value.toLowerCase())}
                onBlur={() => name && setTouched(true)}
              />
            )}
          </Field>
        </div>
        <fieldset className="profiles" aria-describedby={legend}>
          <legend>Profile</legend>
          <p className="hint" id={legend}>
            {usage.data ? `What team ${team} has left is checked for each profile.` : 'Each profile sets the resources, environment and isolation.'}
          </p>
          {profiles.isPending || usage.isPending || teamInfo.isPending ? <Loading label="Loading profiles…" /> : null}
          <ErrorNote error={profiles.error ?? usage.error ?? teamInfo.error} />
          <div className="profile-grid">
            {(profiles.data?.items ?? []).map((p) => (
              <ProfileOption key={p.name} profile={p} refusal={refusals.get(p.name)} checked={profile === p.name} onChoose={() => setChosen(p.name)} />
            ))}
          </div>
          {profiles.data && profiles.data.items.length === 0 ? <p className="muted">No profile is available to your teams. Ask a platform admin.</p> : null}
        </fieldset>
        <ErrorNote error={launch.error} title="The workspace was not created." />
        <FormActions submit="Launch" busy={launch.isPending} disabled={!profile || !team} onCancel={onClose} />
      </form>
    </Dialog>
  );
}

function ProfileOption({ profile, refusal, checked, onChoose }: { profile: ProfileView; refusal: string | undefined; checked: boolean; onChoose: () => void }) {
  const id = useId();
  const disabled = refusal !== undefined;
  return (
    <label className={`profile ${checked ? 'profile-checked' : ''} ${disabled ? 'profile-disabled' : ''}`} htmlFor={id}>
      <input type="radio" id={id} name="profile" value={profile.name} checked={checked} disabled={disabled} onChange={onChoose} aria-describedby={`${id}-d`} />
      <span className="profile-body">
        <span className="profile-name">
          {profile.displayName} <code>{profile.name}</code>
        </span>
        <span className="profile-desc" id={`${id}-d`}>
          {profile.description ? <span>{profile.description}</span> : null}
          <span className="profile-res">{resources(profile.resources)}</span>
          <span className="profile-meta">
            {profile.environment} · {profile.tier === 'sandboxed' ? 'sandboxed (stronger isolation)' : 'standard isolation'} · {profile.idleTimeout === 'never' ? 'never stopped when idle' : `stops after ${profile.idleTimeout} idle`}
          </span>
          {refusal ? <span className="profile-refusal">Not available: {refusal}</span> : null}
        </span>
      </span>
    </label>
  );
}
