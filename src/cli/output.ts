import { logLines, parseLogLine, safeTerminalText } from '../domain/index.js';

/** Prints rows as an aligned table, or JSON when asked. */
export function table(headers: string[], rows: Array<Array<string | number | boolean | null | undefined>>): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

/**
 * Writes JSON or human output. Much of what the API returns can come from a
 * workspace (failure reasons, event messages), so human output goes through
 * the same filter as logs; JSON keeps the data, with the control characters
 * that `JSON.stringify` leaves raw escaped too.
 */
export function print(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write(json ? toJson(data) + '\n' : safeTerminalText(human()));
}

/**
 * JSON with no raw control character a terminal would act on:
 * `JSON.stringify` escapes C0 controls (ESC, BEL, CR) itself but writes DEL
 * and C1 controls (U+0080–U+009F, e.g. U+009B, an 8-bit CSI) as they are.
 * They can only occur inside strings, where `\u` escapes mean the same data.
 */
export function toJson(data: unknown): string {
  return JSON.stringify(data, null, 2).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Text from a workspace for a one-line slot (a reason, a progress message): filtered, newlines folded. */
export function oneLine(text: string): string {
  return safeTerminalText(text).replace(/\n+/g, ' ');
}

/** Whether to style output on this stream: on a terminal, unless NO_COLOR is set (no-color.org). */
export function useColor(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR;
}

/*
 * An app line that reads like the platform's ("[atrium 12:00:00] app exited
 * with status 0") gets an "[app] " prefix. Styling alone would not do: the
 * output is often piped or saved, where no colour survives, so the difference
 * has to be in the text; and prefixing only such lines keeps everything else
 * the app prints exactly as it was. Leading spaces, invisible format
 * characters, case, compatibility forms (fullwidth "［") and the replacement
 * character the agent puts where an app printed the platform's marker do not
 * get past the check; homoglyphs from other scripts would, which is why the
 * platform's lines are also coloured on a terminal (an app cannot colour its
 * own, escapes are removed) and nothing trusts the text of a line anyway.
 */
const IMITATES_PLATFORM = /^[\s\p{Cf}\uFFFD]*\[atrium/iu;

/**
 * One line of a workspace's log as the CLI shows it: a platform line without
 * its marker as `[atrium HH:MM:SS] …` (coloured when `color`), an app line
 * through {@link safeTerminalText}, marked when it imitates a platform line.
 */
export function showLogLine(line: string, color: boolean): string {
  const parsed = parseLogLine(line);
  if (parsed.source === 'platform') {
    const text = `[atrium ${parsed.time}] ${oneLine(parsed.message)}`;
    return color ? `\x1b[36m${text}\x1b[0m` : text;
  }
  const text = safeTerminalText(parsed.text);
  return IMITATES_PLATFORM.test(text.normalize('NFKC')) ? `[app] ${text}` : text;
}

/** A whole log (or its tail) as the CLI shows it, one line after another. */
export function showLog(text: string, color: boolean): string {
  return logLines(text).map((l) => showLogLine(l, color) + '\n').join('');
}

/**
 * Shows a streamed log as it arrives. Lines are shown only once complete: a
 * chunk can end inside an escape sequence or before the rest of a line that
 * imitates the platform's, and either is judged on the whole line. What is
 * left unfinished is shown at the end.
 */
export class LogPrinter {
  private pending = '';

  constructor(private readonly write: (text: string) => void, private readonly color: boolean) {}

  push(chunk: string): void {
    const text = this.pending + chunk;
    const end = text.lastIndexOf('\n');
    this.pending = text.slice(end + 1);
    if (end >= 0) this.write(showLog(text.slice(0, end + 1), this.color));
  }

  end(): void {
    if (this.pending) this.write(showLog(this.pending, this.color));
    this.pending = '';
  }
}

export function ago(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
