import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useSession } from '../../api/session.tsx';
import type { NewTeam } from '../../api/types.ts';
import { asChange } from '../../api/viewModel.ts';
import { allPages } from './adminKit.ts';
import { TeamsAdminView, type QuotaEdit, type SensitiveEdit } from './TeamsAdminView.tsx';

/** Every team on the platform: create one, change its quota, mark it sensitive. */
export function TeamsAdminPage() {
  const { api, me } = useSession();
  const qc = useQueryClient();
  const teams = useQuery({ queryKey: ['admin', 'teams'], queryFn: () => allPages((cursor) => api.teams({ all: true, cursor }), 50) });
  /** the admin list, and what the team's own page shows */
  const refresh = (team: string) =>
    Promise.all([
      qc.invalidateQueries({ queryKey: ['admin', 'teams'] }),
      qc.invalidateQueries({ queryKey: ['team', team] }),
      qc.invalidateQueries({ queryKey: ['usage', team] }),
    ]);
  const create = useMutation({
    mutationFn: (body: NewTeam) => api.createTeam(body),
    onSuccess: (_team, body) =>
      Promise.all([
        qc.invalidateQueries({ queryKey: ['admin', 'teams'] }),
        // owning the new team puts it in my own team list
        body.owner === me.user.username ? qc.invalidateQueries({ queryKey: ['me'] }) : null,
      ]),
  });
  const quota = useMutation({ mutationFn: (e: QuotaEdit) => api.setQuota(e.team, e.change), onSuccess: (_q, e) => refresh(e.team) });
  const setSensitive = (e: SensitiveEdit) => api.updateTeam(e.team, { sensitive: e.sensitive });
  // marking shows a refusal above the table; unmarking is asked for first and shows it there
  const mark = useMutation({ mutationFn: setSensitive, onSettled: (_t, _e, v) => refresh(v.team) });
  const unmark = useMutation({ mutationFn: setSensitive, onSettled: (_t, _e, v) => refresh(v.team) });
  return (
    <TeamsAdminView
      teams={teams.data?.items}
      complete={teams.data?.complete ?? true}
      error={teams.error}
      create={asChange(create)}
      quota={asChange(quota)}
      mark={asChange(mark)}
      unmark={asChange(unmark)}
    />
  );
}
