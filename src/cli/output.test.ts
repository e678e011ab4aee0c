import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLATFORM_LINE_MARKER as M } from '../domain/index.js';
import { LogPrinter, oneLine, showLog, showLogLine, toJson } from './output.js';

test("platform lines lose their marker and are coloured only on a terminal", () => {
  const line = `${M}[atrium 12:00:03] app exited with status 3`;
  assert.equal(showLogLine(line, false), '[atrium 12:00:03] app exited with status 3');
  assert.equal(showLogLine(line, true), '\x1b[36m[atrium 12:00:03] app exited with status 3\x1b[0m');
  assert.equal(showLogLine(`${M}[atrium 12:00:03] started \x1b]0;x\x07sh`, false), '[atrium 12:00:03] started sh', 'their text is filtered too');
});

test('app lines are filtered, and set apart when they imitate the platform', () => {
  assert.equal(showLogLine('\x1b[31mred\x1b[0m \x1b]52;c;aGFja2Vk\x07text\r', true), 'red text');
  for (const forged of [
    '[atrium 12:00:00] app exited with status 0',
    '\x1b[36m[atrium 12:00:00] app exited with status 0\x1b[0m', // a copy of the CLI's own colouring
    '  [atrium 12:00:00] app exited with status 0',
    '\u200b[atrium 12:00:00] app exited with status 0',
    '[ATRIUM 12:00:00] app exited with status 0',
    '\uff3batrium 12:00:00] app exited with status 0', // fullwidth bracket
    '\u202e[atrium 12:00:00] app exited with status 0', // behind a right-to-left override
  ]) {
    const shown = showLogLine(forged, true);
    assert.match(shown, /^\[app\] /, JSON.stringify(forged));
    assert.doesNotMatch(shown, /\x1b/);
  }
  assert.equal(showLogLine('an [atrium ...] in the middle is fine', false), 'an [atrium ...] in the middle is fine');
});

test('a log shows line by line, however its chunks are cut', () => {
  const log = `${M}[atrium 10:00:00] started app (pid 7)\nhello \x1b]52;c;aGFja2Vk\x07world\r\n[atrium 10:00:01] app exited with status 0\n${M}[atrium 10:00:02] app exited with status 3\n`;
  const want = '[atrium 10:00:00] started app (pid 7)\nhello world\n[app] [atrium 10:00:01] app exited with status 0\n[atrium 10:00:02] app exited with status 3\n';
  assert.equal(showLog(log, false), want);
  for (let size = 1; size <= log.length; size++) {
    let out = '';
    const printer = new LogPrinter((s) => (out += s), false);
    for (let i = 0; i < log.length; i += size) printer.push(log.slice(i, i + size));
    printer.end();
    assert.equal(out, want, `chunks of ${size}`);
  }
  let out = '';
  const printer = new LogPrinter((s) => (out += s), false);
  printer.push('no newline at the end \x1b[1m');
  assert.equal(out, '', 'an unfinished line waits');
  printer.end();
  assert.equal(out, 'no newline at the end \n');
});

test('JSON output keeps the data and escapes every control character', () => {
  const data = { reason: 'esc \x1b]52;c;aGk=\x07 csi \x9b31m del \x7f nel \x85', ok: 'ünï ✓' };
  const json = toJson(data);
  assert.doesNotMatch(json, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  assert.match(json, /\\u009b31m/);
  assert.deepEqual(JSON.parse(json), data);
  assert.equal(oneLine('two\nlines\x1b[0m'), 'two lines');
});
