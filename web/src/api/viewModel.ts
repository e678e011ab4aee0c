import type { UseMutationResult, UseQueryResult } from '@tanstack/react-query';

/** What a query gives a view: its data once there, or why not. */
export interface Loadable<T> {
  data: T | undefined;
  error: unknown;
  pending: boolean;
}

export function loadable<T>(q: UseQueryResult<T>): Loadable<T> {
  return { data: q.data, error: q.error, pending: q.isPending };
}

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
