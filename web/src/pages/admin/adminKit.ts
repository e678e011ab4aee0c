import type { Page } from '../../api/types.ts';

/** Every item of a paged list, following `nextCursor` for at most `maxPages` pages. */
export async function allPages<T>(fetch: (cursor: string | undefined) => Promise<Page<T>>, maxPages: number): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const page = await fetch(cursor);
    items.push(...page.items);
    if (!page.nextCursor) return { items, complete: true };
    cursor = page.nextCursor;
  }
  return { items, complete: false };
}

/** Whether `text` appears in any of `fields`, ignoring case: the client-side filter of the admin tables. */
export function matches(text: string, ...fields: Array<string | null>): boolean {
  const needle = text.trim().toLowerCase();
  return needle === '' || fields.some((f) => f !== null && f.toLowerCase().includes(needle));
}
