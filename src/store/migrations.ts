import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * Versioned migrations, run at start. Never edit a released migration: add a
 * new one. `dialect` picks the few types the two databases spell differently.
 */
export function migrations(dialect: 'sqlite' | 'postgres'): MigrationProvider {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  const serial = (table: ReturnType<Kysely<unknown>['schema']['createTable']>) =>
    dialect === 'postgres'
      ? table.addColumn('id', 'bigserial', (c) => c.primaryKey())
      : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  const all: Record<string, Migration> = {
    '0001_foundation': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('username', 'text', (c) => c.notNull().unique())
          .addColumn('email', 'text')
          .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('password_hash', 'text')
          .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('external_subject', 'text', (c) => c.unique())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('teams')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('personal_of', 'text', (c) => c.unique().references('users.id'))
          .addColumn('sensitive', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('quota', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('memberships')
          .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('memberships_pk', ['team_id', 'user_id'])
          .execute();
        await db.schema.createIndex('memberships_user').on('memberships').column('user_id').execute();
        await db.schema
          .createTable('sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('expires_at', big, (c) => c.notNull())
          .addColumn('last_seen_at', big, (c) => c.notNull())
          .addColumn('ip', 'text', (c) => c.notNull())
          .addColumn('user_agent', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
        await db.schema
          .createTable('tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('expires_at', big)
          .addColumn('last_used_at', big)
          .addColumn('revoked_at', big)
          .execute();
        await db.schema.createIndex('tokens_user').on('tokens').column('user_id').execute();
        await db.schema
          .createTable('ssh_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', big, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ssh_keys_user').on('ssh_keys').column('user_id').execute();
        await db.schema
          .createTable('gpu_pools')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('gpu_type', 'text', (c) => c.notNull())
          .addColumn('cluster', 'text', (c) => c.notNull())
          .addColumn('size', 'integer', (c) => c.notNull())
          .addColumn('owner_team_id', 'text', (c) => c.references('teams.id'))
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('gpu_grants')
          .addColumn('pool_id', 'text', (c) => c.notNull().references('gpu_pools.id').onDelete('cascade'))
          .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
          .addColumn('gpu_limit', 'integer', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('gpu_grants_pk', ['pool_id', 'team_id'])
          .execute();
        await db.schema
          .createTable('workspaces')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id'))
          .addColumn('profile', 'text', (c) => c.notNull())
          .addColumn('shared', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('desired', 'text', (c) => c.notNull())
          .addColumn('phase', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('cpu_request_milli', big, (c) => c.notNull())
          .addColumn('cpu_limit_milli', big, (c) => c.notNull())
          .addColumn('memory_request_bytes', big, (c) => c.notNull())
          .addColumn('memory_limit_bytes', big, (c) => c.notNull())
          .addColumn('gpu_count', 'integer', (c) => c.notNull())
          .addColumn('gpu_type', 'text')
          .addColumn('gpu_pool_id', 'text', (c) => c.references('gpu_pools.id'))
          .addColumn('storage_bytes', big, (c) => c.notNull())
          .addColumn('spec', 'text', (c) => c.notNull())
          .addColumn('purge', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('generation', 'integer', (c) => c.notNull())
          .addColumn('observed_generation', 'integer', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .addColumn('started_at', big)
          .addColumn('last_activity_at', big)
          .addColumn('deleted_at', big)
          .execute();
        await db.schema
          .createIndex('workspaces_live_name')
          .unique()
          .on('workspaces')
          .columns(['team_id', 'name'])
          .where(sql.ref('deleted_at'), 'is', null)
          .execute();
        await db.schema.createIndex('workspaces_owner').on('workspaces').columns(['owner_id', 'name']).execute();
        await db.schema.createIndex('workspaces_team').on('workspaces').columns(['team_id', 'name']).execute();
        await db.schema.createIndex('workspaces_pool').on('workspaces').column('gpu_pool_id').execute();
        await serial(db.schema.createTable('events'))
          .addColumn('team_id', 'text', (c) => c.notNull())
          .addColumn('workspace_id', 'text')
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('events_team').on('events').columns(['team_id', 'id']).execute();
        await db.schema.createIndex('events_workspace').on('events').columns(['workspace_id', 'id']).execute();
        await serial(db.schema.createTable('audit'))
          .addColumn('at', big, (c) => c.notNull())
          .addColumn('actor_id', 'text')
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('result', 'text', (c) => c.notNull())
          .addColumn('status', 'integer', (c) => c.notNull())
          .addColumn('ip', 'text', (c) => c.notNull())
          .addColumn('details', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('audit_action').on('audit').columns(['action', 'id']).execute();
        await db.schema.createIndex('audit_actor').on('audit').columns(['actor', 'id']).execute();
      },
    },
    '0002_host_uids': {
      async up(db: Kysely<unknown>) {
        // one host uid per user for the local runtime, never reused
        await db.schema
          .createTable('host_uids')
          .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
          .addColumn('uid', 'integer', (c) => c.notNull().unique())
          .execute();
      },
    },
    '0003_workspace_names': {
      async up(db: Kysely<unknown>) {
        // The team's name and the owner's username, copied onto each
        // workspace: neither ever changes, and lists then sort and show them
        // without joining teams and users for every row.
        await db.schema.alterTable('workspaces').addColumn('team_name', 'text', (c) => c.notNull().defaultTo('')).execute();
        await db.schema.alterTable('workspaces').addColumn('owner_name', 'text', (c) => c.notNull().defaultTo('')).execute();
        await sql`update workspaces set
          team_name = (select name from teams where teams.id = workspaces.team_id),
          owner_name = (select username from users where users.id = workspaces.owner_id)`.execute(db);
        await db.schema.dropIndex('workspaces_owner').execute();
        // "my workspaces", in list order: by owner, then team name, then name
        await db.schema.createIndex('workspaces_owner').on('workspaces').columns(['owner_id', 'team_name', 'name']).execute();
      },
    },
    '0004_workspace_pool_names': {
      async up(db: Kysely<unknown>) {
        // The name of the GPU pool a workspace's GPUs come from, copied next
        // to its id: pool names never change (and a pool in use cannot be
        // removed), and reads then show it without a join for every row.
        await db.schema.alterTable('workspaces').addColumn('gpu_pool_name', 'text').execute();
        await sql`update workspaces set gpu_pool_name = (select name from gpu_pools where gpu_pools.id = workspaces.gpu_pool_id)
          where gpu_pool_id is not null`.execute(db);
      },
    },
    '0005_workspace_cluster': {
      async up(db: Kysely<unknown>) {
        // The cluster placement chose, kept for the workspace's life (its home lives there);
        // '' for workspaces on this machine's local runtime, and for those created before clusters existed.
        await db.schema.alterTable('workspaces').addColumn('cluster', 'text', (c) => c.notNull().defaultTo('')).execute();
      },
    },
    '0006_volumes': {
      async up(db: Kysely<unknown>) {
        // team volumes (and datasets: volumes published read-only to other teams); a volume's size counts against its team's storage quota
        await db.schema
          .createTable('volumes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('size_bytes', big, (c) => c.notNull())
          .addColumn('read_only_for', 'text', (c) => c.notNull().defaultTo('none'))
          .addColumn('shared_with', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .addUniqueConstraint('volumes_team_name', ['team_id', 'name'])
          .execute();
        // the host group that owns a team's volumes on this machine, never reused
        await db.schema
          .createTable('team_gids')
          .addColumn('team_id', 'text', (c) => c.primaryKey().references('teams.id'))
          .addColumn('gid', 'integer', (c) => c.notNull().unique())
          .execute();
      },
    },
    '0007_sso': {
      async up(db: Kysely<unknown>) {
        // which memberships a sign-in's groups granted (`group:<provider>:<group>`): the next sign-in adds and removes
        // those, and never touches memberships granted by hand (null)
        await db.schema.alterTable('memberships').addColumn('granted_by', 'text').execute();
        // sign-ins under way at an OpenID provider: state → what the callback checks (nonce, PKCE verifier), used once
        await db.schema
          .createTable('oidc_logins')
          .addColumn('state', 'text', (c) => c.primaryKey())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('nonce', 'text', (c) => c.notNull())
          .addColumn('verifier', 'text', (c) => c.notNull())
          .addColumn('next', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .execute();
      },
    },
    '0008_cli_logins': {
      async up(db: Kysely<unknown>) {
        // `atrium login --sso`: a short code a signed-in person approves in a browser; the CLI polls with a secret only it holds
        await db.schema
          .createTable('cli_logins')
          .addColumn('code', 'text', (c) => c.primaryKey())
          .addColumn('poll_hash', 'text', (c) => c.notNull().unique())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('expires_in', 'integer')
          .addColumn('user_id', 'text', (c) => c.references('users.id'))
          .addColumn('created_at', big, (c) => c.notNull())
          .execute();
      },
    },
    '0009_signing_keys': {
      async up(db: Kysely<unknown>) {
        // workload identity: the keys tokens are signed with (one signing, one published ahead of its turn, retired ones
        // until their last token expires), shared by every control plane on the database
        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('private_key', 'text', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('activated_at', big)
          .addColumn('retired_at', big)
          .addColumn('expires_at', big)
          .execute();
      },
    },
    '0010_session_provider': {
      async up(db: Kysely<unknown>) {
        // the identity provider a browser session was signed in with: signing out ends the provider's session too
        await db.schema.alterTable('sessions').addColumn('provider', 'text').execute();
      },
    },
  };
  return { getMigrations: async () => all };
}
