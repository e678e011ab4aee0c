import type { Command } from 'commander';
import { signedIn } from './client.js';
import { print, table } from './output.js';

type Cell = string | number | boolean | null | undefined;

export interface ListSpec<T, O> {
  description: string;
  /** positional arguments, e.g. `<team>` */
  args?: string[];
  /** options beyond --json */
  options?: (command: Command) => void;
  /** the rows, from the positional arguments and the options */
  items: (args: string[], opts: O) => Promise<T[]>;
  /** each column's header and cell */
  columns: Array<[header: string, cell: (row: T) => Cell]>;
  /** what to say instead of an empty table */
  empty?: string;
}

/**
 * An `ls` command: the rows as an aligned table, or with `--json` as JSON,
 * the same for every list the CLI shows.
 */
export function listCommand<T, O extends object = object>(parent: Command, spec: ListSpec<T, O>): Command {
  const command = parent.command('ls').description(spec.description);
  for (const a of spec.args ?? []) command.argument(a);
  spec.options?.(command);
  command.option('--json', 'print JSON');
  command.action(async (...given: unknown[]) => {
    // commander passes the positional arguments, then the options, then the command
    const opts = given.at(-2) as O & { json?: boolean };
    const rows = await spec.items(given.slice(0, -2) as string[], opts);
    print(opts.json, rows, () =>
      rows.length === 0 && spec.empty !== undefined
        ? `${spec.empty}\n`
        : table(
            spec.columns.map(([h]) => h),
            rows.map((r) => spec.columns.map(([, cell]) => cell(r))),
          ),
    );
  });
  return command;
}

/** Every item of a paginated list, page by page (500 at a time). */
export async function allPages<T>(path: string): Promise<T[]> {
  const { client } = signedIn();
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page: { items: T[]; nextCursor: string | null } = await client.get(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}
