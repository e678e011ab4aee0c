import { sql } from 'kysely';
import { transaction, type StoreContext } from './common.js';

/** Default first host uid given to a user; far above Debian's dynamic range and its subuid defaults. */
export const HOST_UID_BASE = 2_000_000;

/** Host uids for the local runtime: one per user, allocated once and never reused. */
export function createHostUids(ctx: StoreContext) {
  return {
    /**
     * The user's uid, allocating the next free one at or above `base` the
     * first time. Allocation is one transaction; on PostgreSQL an advisory
     * lock makes concurrent first starts take turns (SQLite runs one
     * transaction at a time anyway).
     */
    async get(userId: string, base = HOST_UID_BASE): Promise<number> {
      const found = await ctx.db.selectFrom('host_uids').select('uid').where('user_id', '=', userId).executeTakeFirst();
      if (found) return Number(found.uid);
      return transaction(ctx, async (tx) => {
        if (ctx.dialect === 'postgres') await sql`select pg_advisory_xact_lock(727101)`.execute(tx.db);
        const again = await tx.db.selectFrom('host_uids').select('uid').where('user_id', '=', userId).executeTakeFirst();
        if (again) return Number(again.uid);
        const max = await tx.db.selectFrom('host_uids').select((eb) => eb.fn.max<number>('uid').as('m')).executeTakeFirst();
        const uid = Math.max(base, Number(max?.m ?? 0) + 1);
        await tx.db.insertInto('host_uids').values({ user_id: userId, uid }).execute();
        return uid;
      });
    },
  };
}
