import { toChildArray, type ComponentChildren, type JSX } from 'preact';

/** A column header: its text, or its text with a class (`num` for a right-aligned number column). */
export type DataTableHeader = string | { text: string; class: string };

export interface DataTableProps {
  /** The table's aria-label: its accessible name, which the end-to-end walk finds it by. */
  label: string;
  /** Column headers, in order; `th scope="col"` each. */
  headers: readonly DataTableHeader[];
  /** Shown in one row spanning all columns when there are no rows; none when absent. */
  empty?: ComponentChildren;
  /** The body rows; children when absent. */
  rows?: ComponentChildren[];
  children?: ComponentChildren;
}

/** The console's list table (`table.data`): labelled, a header row, and a row that says so when it is empty. */
export function DataTable({ label, headers, empty, rows, children }: DataTableProps): JSX.Element {
  const body = toChildArray(rows ?? children);
  return (
    <table aria-label={label} class="data">
      <thead>
        <tr>
          {headers.map((h) =>
            typeof h === 'string' ? (
              <th scope="col" key={h}>
                {h}
              </th>
            ) : (
              <th scope="col" key={h.text} class={h.class}>
                {h.text}
              </th>
            ),
          )}
        </tr>
      </thead>
      <tbody>
        {body.length === 0 && empty !== undefined && (
          <tr>
            <td colSpan={headers.length}>{empty}</td>
          </tr>
        )}
        {body}
      </tbody>
    </table>
  );
}
