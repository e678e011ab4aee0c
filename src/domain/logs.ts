/**
 * A workspace's log mixes two writers: the app, whose bytes are whatever its
 * code prints, and the platform, which notes what happened to the app
 * (`started …`, `app exited with status 3`). The platform starts each of its
 * own lines with {@link PLATFORM_LINE_MARKER} followed by
 * `[atrium HH:MM:SS] `; the agent, which alone holds the log pipe, replaces
 * that byte wherever the app prints it (with U+FFFD), so only the platform can
 * begin a line with it. Readers
 * (the reconciler's failure reasons, the CLI, the portal) tell the two apart
 * with the functions here and never by the text alone.
 */

/** ASCII record separator: the first byte of every line the platform writes into a workspace's log. */
export const PLATFORM_LINE_MARKER = '\u001e';

const PLATFORM_LINE = /^\u001e\[atrium ([0-9]{2}:[0-9]{2}:[0-9]{2})\] (.*)$/s;

/** One line of a workspace's log, by who wrote it. `time` is the platform's UTC `HH:MM:SS`. */
export type LogLine = { source: 'platform'; time: string; message: string } | { source: 'app'; text: string };

/**
 * Splits a log into lines. A marker in the middle of a line also begins a
 * new one: only the platform writes that byte, so it can only be a platform
 * line appended after app output that did not end its line.
 */
export function logLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.flatMap((line) => {
    const [head = '', ...records] = line.split(PLATFORM_LINE_MARKER);
    const platform = records.map((r) => PLATFORM_LINE_MARKER + r);
    return head === '' && platform.length > 0 ? platform : [head, ...platform];
  });
}

/** Whether a line of a workspace's log was written by the platform. */
export function isPlatformLine(line: string): boolean {
  return PLATFORM_LINE.test(line);
}

/**
 * The message of a platform line, after its `[atrium HH:MM:SS] ` prefix;
 * undefined for any other line, however much it looks like one.
 *
 * @example
 * platformMessage('\u001e[atrium 12:00:03] app exited with status 3') // 'app exited with status 3'
 * platformMessage('[atrium 12:00:03] app exited with status 0')       // undefined: the app printed that
 */
export function platformMessage(line: string): string | undefined {
  return PLATFORM_LINE.exec(line)?.[2];
}

/** Who wrote a line of a workspace's log, with the platform's time and message taken apart. */
export function parseLogLine(line: string): LogLine {
  const m = PLATFORM_LINE.exec(line);
  return m ? { source: 'platform', time: m[1]!, message: m[2]! } : { source: 'app', text: line };
}

// ESC- and C1-introduced sequences a terminal interprets, matched whole so their parameters and payloads go too:
const ESCAPE_SEQUENCES = new RegExp(
  [
    // OSC, DCS, SOS, PM and APC strings, up to BEL or ST; an unterminated one up to the end of its line, so later lines stay visible
    '(?:\\x1b[\\]PX^_]|[\\x90\\x98\\x9d\\x9e\\x9f])[^\\n]*?(?:\\x07|\\x1b\\\\|\\x9c|(?=\\n)|$)',
    // CSI: parameters, intermediates, final byte (missing when the text was cut short)
    '(?:\\x1b\\[|\\x9b)[\\x30-\\x3f]*[\\x20-\\x2f]*[\\x40-\\x7e]?',
    // every other escape: intermediates, then one final byte (ESC 7, ESC ( B, ESC c …)
    '\\x1b[\\x20-\\x2f]*[\\x30-\\x7e]',
  ].join('|'),
  'g',
);
// C0 controls but tab and newline, DEL, and C1 controls
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Text from a workspace made safe to write to a terminal: ANSI/VT escape
 * sequences are removed whole (CSI, OSC up to BEL or ST, DCS/SOS/PM/APC
 * strings, two-byte and other ESC sequences, and their 8-bit C1 forms),
 * CRLF becomes LF, and every other control character (C0 but newline and
 * tab, a lone CR, DEL, C1) is dropped. What is left is the printable text, so
 * an app can neither drive the terminal (OSC 52 clipboard writes, titles,
 * cursor moves) nor overwrite what was printed before.
 *
 * @example
 * safeTerminalText('\x1b[31mred\x1b[0m \x1b]52;c;aGk=\x07done\r\n') // 'red done\n'
 */
export function safeTerminalText(text: string): string {
  return text.replace(/\r+\n/g, '\n').replace(ESCAPE_SEQUENCES, '').replace(CONTROLS, '');
}
