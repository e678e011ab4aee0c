import { isUniqueViolation, type StoreContext } from './common.js';

/** First host uid given to a user; far above Debian's dynamic range and its subuid default (100000–165535 per user). */
export const HOST_UID_BASE = 2_000_000;

/** Host uids for the local runtime: one per user, allocated once and never reused. */
export function createHostUids(ctx: StoreContext) {
  return {
    async get(userId: string): Promise<number> {
      for (let attempt = 0; attempt < 20; attempt++) {
        const found = await ctx.db.selectFrom('host_uids').select('uid').where('user_id', '=', userId).executeTakeFirst();
        if (found) return Number(found.uid);
        const max = await ctx.db.selectFrom('host_uids').select((eb) => eb.fn.max<number>('uid').as('m')).executeTakeFirst();
        const uid = Math.max(HOST_UID_BASE, Number(max?.m ?? 0) + 1);
        try {
          await ctx.db.insertInto('host_uids').values({ user_id: userId, uid }).execute();
          return uid;
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
        }
      }
      throw new Error(`could not allocate a host uid for user ${userId}`);
    },
  };
}
