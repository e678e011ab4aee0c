import assert from 'node:assert/strict';
import { test } from 'node:test';
import { textLine, textLogStream } from './log-text.js';

test('a JSON log line reads as time, level, message and fields; an error brings its stack', () => {
  const time = Date.UTC(2026, 0, 2, 3, 4, 5);
  assert.equal(textLine(JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', msg: 'proxy request failed', url: '/w/a b', n: 3 })), '03:04:05 WARN  proxy request failed url="/w/a b" n=3');
  const withStack = textLine(JSON.stringify({ level: 50, time, msg: 'request failed', err: { message: 'boom', stack: 'Error: boom\n    at x' } }));
  assert.equal(withStack, '03:04:05 ERROR request failed\n    Error: boom\n        at x');
  assert.equal(textLine('not json'), 'not json');
});

test('the text stream turns each complete line, however the chunks fall', async () => {
  const written: string[] = [];
  const out = { write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream;
  const stream = textLogStream(out);
  const line = JSON.stringify({ level: 30, time: 0, msg: 'hello' });
  await new Promise<void>((resolve) => stream.write(line.slice(0, 10), () => resolve()));
  await new Promise<void>((resolve) => stream.write(`${line.slice(10)}\n${line}\n`, () => resolve()));
  assert.deepEqual(written.join(''), '00:00:00 INFO  hello\n00:00:00 INFO  hello\n');
});
