import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from 'react-router';
import { useSession } from '../api/session.tsx';
import type { NewVolume } from '../api/types.ts';
import { asChange, loadable } from '../api/viewModel.ts';
import { TeamPageView, type MemberChange } from './TeamPageView.tsx';
import type { VolumeEdit } from './VolumesSection.tsx';

/** `/teams/:team`: the team, its quota and usage (live), its members, its workspaces and its volumes (live). */
export function TeamPage() {
  const name = useParams().team ?? '';
  const { api, me, can } = useSession();
  const qc = useQueryClient();
  const navigate = useNavigate();

  const team = useQuery({ queryKey: ['team', name], queryFn: () => api.team(name) });
  const usage = useQuery({ queryKey: ['usage', name], queryFn: () => api.usage(name) });
  const members = useQuery({ queryKey: ['members', name], queryFn: () => api.members(name).then((r) => r.items) });
  const workspaces = useQuery({ queryKey: ['workspaces', 'team', name], queryFn: () => api.teamWorkspaces(name).then((r) => r.items) });
  // kept current by the portal's event stream (`volume` events of the teams I belong to); refetched after my own changes too, for admins outside the team
  const volumes = useQuery({ queryKey: ['volumes', name], queryFn: () => api.volumes(name) });

  /** After a membership change: the list, and my own role when the change was mine. */
  const refresh = async (username: string) => {
    const mine = username === me.user.username;
    await Promise.all([
      qc.invalidateQueries({ queryKey: ['members', name] }),
      mine ? qc.invalidateQueries({ queryKey: ['me'] }) : null,
      mine ? qc.invalidateQueries({ queryKey: ['team', name] }) : null,
    ]);
  };
  const setMember = ({ username, role }: MemberChange) => api.setMember(name, username, role);
  const addMember = useMutation({ mutationFn: setMember, onSuccess: (_, v) => refresh(v.username) });
  const changeRole = useMutation({ mutationFn: setMember, onSuccess: (_, v) => refresh(v.username) });
  const removeMember = useMutation({
    mutationFn: (username: string) => api.removeMember(name, username),
    onSuccess: async (_, username) => {
      await refresh(username);
      if (username === me.user.username && !me.user.admin) void navigate('/teams');
    },
  });

  /** After a volume change: every team's volume lists (datasets are other teams' volumes), and the storage this team uses. */
  const volumesChanged = () => Promise.all([qc.invalidateQueries({ queryKey: ['volumes'] }), qc.invalidateQueries({ queryKey: ['usage', name] })]);
  const createVolume = useMutation({ mutationFn: (body: NewVolume) => api.createVolume(name, body), onSuccess: volumesChanged });
  const updateVolume = useMutation({ mutationFn: ({ volume, change }: VolumeEdit) => api.updateVolume(name, volume, change), onSuccess: volumesChanged });
  const deleteVolume = useMutation({ mutationFn: (volume: string) => api.deleteVolume(name, volume), onSuccess: volumesChanged });

  return (
    <TeamPageView
      name={name}
      me={me.user.username}
      admin={me.user.admin}
      team={loadable(team)}
      usage={loadable(usage)}
      members={loadable(members)}
      workspaces={loadable(workspaces)}
      canManage={can('team.members.update', { kind: 'team', id: name })}
      addMember={asChange(addMember)}
      changeRole={asChange(changeRole)}
      removeMember={removeMember.mutateAsync}
      volumes={loadable(volumes)}
      canManageVolumes={can('volume.manage', { kind: 'team', id: name })}
      canDeleteVolumes={can('volume.delete', { kind: 'team', id: name })}
      createVolume={asChange(createVolume)}
      updateVolume={asChange(updateVolume)}
      deleteVolume={deleteVolume.mutateAsync}
    />
  );
}
