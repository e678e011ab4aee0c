import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useSession } from '../../api/session.tsx';
import type { NewUser, UserChange } from '../../api/types.ts';
import { asChange } from '../../api/viewModel.ts';
import { allPages } from './adminKit.ts';
import { UsersPageView } from './UsersPageView.tsx';

/** Every account on the platform: create one, disable or enable it, give or take the platform admin role. */
export function UsersPage() {
  const { api, me } = useSession();
  const qc = useQueryClient();
  const users = useQuery({ queryKey: ['admin', 'users'], queryFn: () => allPages((cursor) => api.users(cursor), 50) });
  const refresh = () => qc.invalidateQueries({ queryKey: ['admin', 'users'] });
  const update = (input: { username: string; change: UserChange }) => api.updateUser(input.username, input.change);
  const create = useMutation({ mutationFn: (body: NewUser) => api.createUser(body), onSuccess: refresh, gcTime: 0 });
  // direct changes (enable, admin role) show a refusal above the table; disabling shows it in its confirmation
  const change = useMutation({ mutationFn: update, onSettled: refresh });
  const disable = useMutation({ mutationFn: update, onSettled: refresh });
  return (
    <UsersPageView
      users={users.data?.items}
      complete={users.data?.complete ?? true}
      error={users.error}
      me={me.user.username}
      create={asChange(create)}
      change={asChange(change)}
      disable={asChange(disable)}
    />
  );
}
