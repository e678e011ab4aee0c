import { Link, Navigate, NavLink, Route, Routes } from 'react-router';
import { useSession } from '../../api/session.tsx';
import { EmptyState, PageHeader } from '../../components/ui.tsx';
import './admin.css';
import { AuditPage } from './AuditPage.tsx';
import { GpusPage } from './GpusPage.tsx';
import { ImagesPage } from './ImagesPage.tsx';
import { ProfilesPage } from './ProfilesPage.tsx';
import { TeamsAdminPage } from './TeamsAdminPage.tsx';
import { UsersPage } from './UsersPage.tsx';

const TABS: Array<[path: string, label: string]> = [
  ['users', 'Users'],
  ['teams', 'Teams'],
  ['profiles', 'Profiles'],
  ['images', 'Images'],
  ['gpus', 'GPUs'],
  ['audit', 'Audit log'],
];

/** The platform admin area: people, teams and quotas, profiles, workspace images, GPU pools and the audit log, one tab each. */
export function AdminPage() {
  const { me } = useSession();
  if (!me.user.admin) {
    return (
      <>
        <PageHeader title="Administration" />
        <div className="card">
          <EmptyState title="This area is for platform admins" action={<Link to="/">Go to your workspaces</Link>}>
            Your account is not a platform admin. Ask one if you need to manage users, teams, quotas or GPU pools.
          </EmptyState>
        </div>
      </>
    );
  }
  return (
    <>
      <PageHeader title="Administration" subtitle="People, teams and quotas, workspace profiles and images, GPU pools and the audit log of this Atrium." />
      <nav aria-label="Admin" className="tabs admin-tabs">
        {TABS.map(([path, label]) => (
          <NavLink key={path} to={`/admin/${path}`} className={({ isActive }) => (isActive ? 'active' : '')}>
            {label}
          </NavLink>
        ))}
      </nav>
      <Routes>
        <Route index element={<Navigate to="/admin/users" replace />} />
        <Route path="users" element={<UsersPage />} />
        <Route path="teams" element={<TeamsAdminPage />} />
        <Route path="profiles" element={<ProfilesPage />} />
        <Route path="images" element={<ImagesPage />} />
        <Route path="gpus" element={<GpusPage />} />
        <Route path="audit" element={<AuditPage />} />
        <Route path="*" element={<Navigate to="/admin/users" replace />} />
      </Routes>
    </>
  );
}
