import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useMemo, useState, type FormEvent } from 'react';
import { defaultVolumePath, isValidName, NAME_RULE, overlappingPaths, VolumePath } from '../../../src/domain/index.ts';
import { launchRefusal } from '../admission.ts';
import { useSession } from '../api/session.tsx';
import type { ProfileView, VolumeMount, VolumeView, WorkspaceView } from '../api/types.ts';
import { Dialog, ErrorNote, Field, FormActions, Loading, Select, TextInput } from '../components/ui.tsx';
import { resources } from '../format.ts';

/**
 * Launch a workspace: a team I may create in, a name, a profile, and the
 * volumes to mount besides the profile's. Each profile shows what it takes
 * and is disabled, with the reason, when the team's quota has no room for it
 * (the server's own admission rule).
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
  /** the volumes to mount (`name`, or `team/name` for a dataset), each with the path typed for it ('' for the default) */
  const [mounts, setMounts] = useState<ReadonlyMap<string, string>>(new Map());

  const profiles = useQuery({ queryKey: ['profiles'], queryFn: api.profiles, enabled: open, staleTime: 60_000 });
  const [teamInfo, usage] = useQueries({
    queries: [
      { queryKey: ['team', team], queryFn: () => api.team(team), enabled: open && team !== '' },
      { queryKey: ['usage', team], queryFn: () => api.usage(team), enabled: open && team !== '' },
    ],
  });
  const volumes = useQuery({ queryKey: ['volumes', team], queryFn: () => api.volumes(team), enabled: open && team !== '' });
  const refusals = useMemo(() => {
    const out = new Map<string, string | undefined>();
    if (!teamInfo.data || !usage.data) return out;
    for (const p of profiles.data?.items ?? []) out.set(p.name, launchRefusal(p, teamInfo.data, usage.data));
    return out;
  }, [profiles.data, teamInfo.data, usage.data]);
  // the chosen profile while it still fits; otherwise the first that does
  const fits = (name: string) => name !== '' && refusals.has(name) && !refusals.get(name);
  const profile = !refusals.size || fits(chosen) ? chosen : ([...refusals].find(([, why]) => !why)?.[0] ?? '');

  const chosenProfile = profiles.data?.items.find((p) => p.name === profile);
  // volumes still there (one may have been deleted meanwhile), and not what the profile mounts itself
  const offered = new Set([...(volumes.data?.items ?? []).map((v) => v.name), ...(volumes.data?.datasets ?? []).map((v) => `${v.team}/${v.name}`)]);
  const extraMounts = [...mounts].filter(([ref]) => offered.has(ref) && !chosenProfile?.volumes.some((v) => v.volume === ref));
  const mountProblem = checkMounts(extraMounts, chosenProfile);
  const launch = useMutation({
    mutationFn: () => {
      const picked: VolumeMount[] = extraMounts.map(([volume, path]) => (path.trim() ? { volume, path: path.trim() } : { volume }));
      return api.createWorkspace(team, { name, profile, start: true, ...(picked.length > 0 ? { volumes: picked } : {}) });
    },
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
      setMounts(new Map());
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
    if (!isValidName(name) || !profile || mountProblem) return;
    launch.mutate();
  };
  const legend = useId();

  return (
    <Dialog open={open} onClose={onClose} title="New workspace" wide>
      <form onSubmit={submit} noValidate>
        <div className="launch-top">
          <Field label="Team" hint={teams.length > 1 ? 'Quota is charged to this team.' : undefined}>
            {(p) => (
              <Select
                {...p}
                value={team}
                onChange={(e) => {
                  setTeam(e.target.value);
                  // volume names are the team's own: another team has others
                  setMounts(new Map());
                }}
              >
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
        <VolumePicker
          team={team}
          volumes={volumes.data}
          error={volumes.error}
          profile={chosenProfile}
          mounts={mounts}
          onChange={setMounts}
          problem={touched ? mountProblem : undefined}
        />
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
          {profile.image ? (
            <span className="profile-meta">
              image <code>{profile.image}</code>
            </span>
          ) : null}
          {profile.volumes.length > 0 ? (
            <span className="profile-meta">mounts {profile.volumes.map((v) => `${v.volume} at ${v.path ?? defaultVolumePath(lastPart(v.volume))}`).join(', ')}</span>
          ) : null}
          {refusal ? <span className="profile-refusal">Not available: {refusal}</span> : null}
        </span>
      </span>
    </label>
  );
}

const PATH_RE = new RegExp(VolumePath.pattern ?? '^/');
const MAX_MOUNTS = 16;
const lastPart = (ref: string) => ref.slice(ref.lastIndexOf('/') + 1);

/** Where each mount goes: the path typed, or `/data/<name>`. */
const mountPath = (ref: string, typed: string | undefined) => typed?.trim() || defaultVolumePath(lastPart(ref));

/** Why the chosen mounts cannot be launched (as the server would refuse them), or undefined. */
function checkMounts(mounts: ReadonlyArray<[ref: string, path: string]>, profile: ProfileView | undefined): string | undefined {
  if (mounts.length > MAX_MOUNTS) return `Pick at most ${MAX_MOUNTS} volumes.`;
  for (const [ref, typed] of mounts) {
    if (typed.trim() && !PATH_RE.test(typed.trim())) return `The path of ${ref} must be under /data or /home/jovyan, e.g. /data/${lastPart(ref)}.`;
  }
  const paths = [...mounts].map(([ref, typed]) => mountPath(ref, typed));
  for (const v of profile?.volumes ?? []) paths.push(mountPath(v.volume, v.path));
  const clash = overlappingPaths(paths);
  if (clash) return clash[0] === clash[1] ? `Two volumes would be mounted at ${clash[0]}: give one another path.` : `${clash[1]} is inside ${clash[0]}: one would hide the other.`;
  return undefined;
}

/**
 * The team's volumes and the datasets published to it, as checkboxes; a
 * checked one can be given a path. Those the chosen profile mounts already
 * are shown checked and disabled.
 */
function VolumePicker({
  team,
  volumes,
  error,
  profile,
  mounts,
  onChange,
  problem,
}: {
  team: string;
  volumes: { items: VolumeView[]; datasets: VolumeView[] } | undefined;
  error: unknown;
  profile: ProfileView | undefined;
  mounts: ReadonlyMap<string, string>;
  onChange: (m: ReadonlyMap<string, string>) => void;
  problem: string | undefined;
}) {
  const hint = useId();
  if (error) return <ErrorNote error={error} title={`The volumes of ${team} could not be loaded.`} />;
  if (!volumes || volumes.items.length + volumes.datasets.length === 0) return null;
  const byProfile = new Set(profile?.volumes.map((v) => v.volume));
  const options = [
    ...volumes.items.map((v) => ({ ref: v.name, volume: v, dataset: false })),
    ...volumes.datasets.map((v) => ({ ref: `${v.team}/${v.name}`, volume: v, dataset: true })),
  ];
  const toggle = (ref: string, on: boolean) => {
    const next = new Map(mounts);
    if (on) next.set(ref, '');
    else next.delete(ref);
    onChange(next);
  };
  const setPath = (ref: string, path: string) => onChange(new Map(mounts).set(ref, path));
  return (
    <fieldset className="volume-picker" aria-describedby={hint}>
      <legend>Volumes (optional)</legend>
      <p className="hint" id={hint}>
        Mounted besides the profile’s, at <code>/data/&lt;name&gt;</code> unless you give a path under <code>/data</code> or <code>/home/jovyan</code>. Datasets are read-only.
      </p>
      <ul className="volume-options">
        {options.map((o) => (
          <VolumeOption
            key={o.ref}
            option={o}
            inProfile={byProfile.has(o.ref)}
            path={mounts.get(o.ref)}
            onToggle={(on) => toggle(o.ref, on)}
            onPath={(p) => setPath(o.ref, p)}
          />
        ))}
      </ul>
      {problem ? (
        <div className="field-error" role="alert">
          {problem}
        </div>
      ) : null}
    </fieldset>
  );
}

function VolumeOption({
  option,
  inProfile,
  path,
  onToggle,
  onPath,
}: {
  option: { ref: string; volume: VolumeView; dataset: boolean };
  inProfile: boolean;
  /** the path typed, when chosen */
  path: string | undefined;
  onToggle: (on: boolean) => void;
  onPath: (path: string) => void;
}) {
  const id = useId();
  const { ref, volume, dataset } = option;
  const chosen = path !== undefined;
  const facts = [volume.size, dataset ? 'dataset, read-only' : volume.readOnlyFor === 'viewers' ? 'read-only for viewers' : '', inProfile ? 'mounted by the profile' : ''].filter(Boolean).join(' · ');
  return (
    <li className="volume-option">
      <div className="checkbox">
        <input id={id} type="checkbox" checked={chosen || inProfile} disabled={inProfile} onChange={(e) => onToggle(e.target.checked)} aria-describedby={`${id}-d`} />
        <label htmlFor={id}>
          <code>{ref}</code>
          <span className="hint" id={`${id}-d`}>
            {facts}
          </span>
        </label>
      </div>
      {chosen ? (
        <TextInput
          className="volume-path"
          aria-label={`Path of ${ref}`}
          autoComplete="off"
          autoCapitalize="none"
          spellCheck={false}
          maxLength={200}
          placeholder={defaultVolumePath(volume.name)}
          value={path}
          onChange={(e) => onPath(e.target.value)}
        />
      ) : null}
    </li>
  );
}
