import type { Key, ReactNode } from 'react';

/** One column of a {@link Table}. */
export interface Column<T> {
  key: string;
  header: string;
  /** names the cell in the card layout on phones (`data-label`); the header by default */
  label?: string;
  cell: (row: T) => ReactNode;
  /** on the header and every cell, e.g. `num` */
  className?: string;
  /** on the cells only, e.g. `cell-main` for the row's title, which heads the card on phones */
  cellClassName?: string;
}

export interface TableProps<T> {
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  rowKey: (row: T) => Key;
  /** names the table for screen readers; visually hidden (the section's heading says it on screen) */
  caption?: string;
  /** shown instead of the table when there are no rows */
  empty?: ReactNode;
  /** more classes on the table, beside `table` */
  className?: string;
  /**
   * The row's buttons, in a last column named "Actions" for screen readers
   * only. They are laid out in a `.row-actions` box unless `actionsBoxed`
   * says they bring their own.
   */
  actions?: (row: T) => ReactNode;
  actionsBoxed?: boolean;
}

const classes = (...names: Array<string | undefined>) => names.filter(Boolean).join(' ') || undefined;

/**
 * A data table. Roles are explicit (on the table, row groups, rows and
 * cells) because phones show tables as cards (`display: block`), which drops
 * the implied table semantics in some browsers; there each cell is labelled
 * by its column through `data-label`. Cells are rendered by functions, so a
 * cell that needs hooks renders a component of its own.
 */
export function Table<T>({ columns, rows, rowKey, caption, empty, className, actions, actionsBoxed }: TableProps<T>) {
  if (rows.length === 0) return <>{empty ?? null}</>;
  return (
    <div className="table-wrap">
      <table role="table" className={classes('table', className)}>
        {caption ? <caption className="sr-only">{caption}</caption> : null}
        <thead role="rowgroup">
          <tr role="row">
            {columns.map((c) => (
              <th key={c.key} role="columnheader" scope="col" className={c.className}>
                {c.header}
              </th>
            ))}
            {actions ? (
              <th role="columnheader" scope="col">
                <span className="sr-only">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody role="rowgroup">
          {rows.map((row) => (
            <tr role="row" key={rowKey(row)}>
              {columns.map((c) => (
                <td key={c.key} role="cell" className={classes(c.cellClassName, c.className)} data-label={c.label ?? c.header}>
                  {c.cell(row)}
                </td>
              ))}
              {actions ? (
                <td role="cell" className="row-actions-cell" data-label="Actions">
                  {actionsBoxed ? actions(row) : <div className="row-actions">{actions(row)}</div>}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
