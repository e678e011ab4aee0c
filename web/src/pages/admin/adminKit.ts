import type { UseMutationResult } from '@tanstack/react-query';
import type { Page } from '../../api/types.ts';

/**
 * A change a view can ask for, without knowing how it is made: `run` resolves
 * when the API has accepted it and rejects with the API's refusal, which also
 * stays in `error` for the dialog or note that shows it.
 */
export interface Change<TInput, TResult = unknown> {
  run(input: TInput): Promise<TResult>;
  pending: boolean;
  error: unknown;
  /** what the change last ran with (the running one, or the one `error` is about) */
  input: TInput | undefined;
  /** forgets the last error, when its dialog opens again */
  reset(): void;
}

export function asChange<TResult, TInput>(m: UseMutationResult<TResult, Error, TInput>): Change<TInput, TResult> {
  return { run: m.mutateAsync, pending: m.isPending, error: m.error, input: m.variables, reset: m.reset };
}

/** Runs a change; `then` gets its result. A refusal stays in the change's `error`, for the dialog or note that shows it. */
export function runThen<TInput, TResult>(change: Change<TInput, TResult>, input: TInput, then: (result: TResult) => void = () => undefined): void {
  change.run(input).then(then, () => undefined);
}

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
