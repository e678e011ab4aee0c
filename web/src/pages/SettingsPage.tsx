import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useSession } from '../api/session.tsx';
import { asChange, loadable } from '../api/viewModel.ts';
import { useHashTarget } from '../components/ui.tsx';
import { SettingsPageView, type NewKey, type NewToken } from './SettingsPageView.tsx';

/** `/settings`: my SSH keys and API tokens. The same for local and single sign-on accounts. */
export function SettingsPage() {
  const { api } = useSession();
  const qc = useQueryClient();
  const keys = useQuery({ queryKey: ['keys'], queryFn: () => api.keys().then((r) => r.items) });
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => api.tokens().then((r) => r.items) });

  // the Connect panel's SSH access counts my keys
  const keysChanged = () => Promise.all([qc.invalidateQueries({ queryKey: ['keys'] }), qc.invalidateQueries({ queryKey: ['ssh'] })]);
  const tokensChanged = () => qc.invalidateQueries({ queryKey: ['tokens'] });
  const addKey = useMutation({ mutationFn: ({ publicKey, name }: NewKey) => api.addKey(publicKey, name), onSuccess: keysChanged });
  const removeKey = useMutation({ mutationFn: (id: string) => api.removeKey(id), onSuccess: keysChanged });
  const createToken = useMutation({ mutationFn: ({ name, expiresIn }: NewToken) => api.createToken(name, expiresIn), onSuccess: tokensChanged, gcTime: 0 });
  const revokeToken = useMutation({ mutationFn: (id: string) => api.revokeToken(id), onSuccess: tokensChanged });
  // `/settings#ssh-keys` (the Connect panel's "add a key" link) lands on the SSH keys
  useHashTarget();

  return (
    <SettingsPageView
      origin={window.location.origin}
      keys={loadable(keys)}
      tokens={loadable(tokens)}
      addKey={asChange(addKey)}
      removeKey={removeKey.mutateAsync}
      createToken={asChange(createToken)}
      created={createToken.data}
      onSecretCopied={createToken.reset}
      revokeToken={revokeToken.mutateAsync}
    />
  );
}
