import { Writable } from 'node:stream';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** pino's own fields, which the text line shows in its own way or not at all */
const OWN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err', 'v']);

function value(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/**
 * One of the server's JSON log lines as text for people:
 * `12:04:31 WARN  message key=value …`, an error's stack indented below it.
 * A line that is not a log object is passed on as it came.
 */
export function textLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  if (typeof o !== 'object' || o === null) return json;
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '--:--:--';
  const level = (LEVELS[o.level as number] ?? String(o.level)).padEnd(5);
  const fields = Object.entries(o).filter(([k]) => !OWN.has(k)).map(([k, v]) => `${k}=${value(v)}`);
  const err = o.err as { message?: string; stack?: string } | undefined;
  const msg = typeof o.msg === 'string' ? o.msg : '';
  let line = [time, level, msg || err?.message || '', ...fields].filter((p) => p !== '').join(' ');
  if (err?.stack) line += '\n' + err.stack.split('\n').map((l) => `    ${l}`).join('\n');
  else if (err?.message && msg) line += ` err=${value(err.message)}`;
  return line;
}

/** A destination for the server's logger that writes each line as text (see {@link textLine}). */
export function textLogStream(out: NodeJS.WritableStream = process.stdout): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8');
      let nl: number;
      let text = '';
      while ((nl = pending.indexOf('\n')) !== -1) {
        text += textLine(pending.slice(0, nl)) + '\n';
        pending = pending.slice(nl + 1);
      }
      if (text) out.write(text);
      done();
    },
  });
}
