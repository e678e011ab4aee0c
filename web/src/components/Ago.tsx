import { ago, dateTime } from '../format.ts';

/** A moment as "3 minutes ago", with the exact date and time on hover and for machines. */
export function Ago({ at }: { at: string }) {
  return (
    <time dateTime={at} title={dateTime(at)}>
      {ago(at)}
    </time>
  );
}
