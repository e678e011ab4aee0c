import { useQuery } from '@tanstack/react-query';
import { useSession } from '../../api/session.tsx';
import { ProfilesPageView } from './ProfilesPageView.tsx';

/** The workspace profiles the server's config file defines, with everything admission checks. */
export function ProfilesPage() {
  const { api } = useSession();
  const profiles = useQuery({ queryKey: ['profiles'], queryFn: api.profiles, staleTime: 60_000 });
  return <ProfilesPageView profiles={profiles.data?.items} error={profiles.error} />;
}
