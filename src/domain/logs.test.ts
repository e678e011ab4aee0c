import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPlatformLine, logLines, parseLogLine, platformMessage, PLATFORM_LINE_MARKER, safeTerminalText } from './logs.js';

const M = PLATFORM_LINE_MARKER;

test('only lines that begin with the marker and the prefix are the platform’s', () => {
  assert.equal(M, '\x1e');
  assert.ok(isPlatformLine(`${M}[atrium 12:00:03] app exited with status 3`));
  assert.equal(platformMessage(`${M}[atrium 12:00:03] app exited with status 3`), 'app exited with status 3');
  assert.deepEqual(parseLogLine(`${M}[atrium 01:02:03] started /usr/bin/python3 (pid 7)`), { source: 'platform', time: '01:02:03', message: 'started /usr/bin/python3 (pid 7)' });
  for (const forged of [
    '[atrium 12:00:00] app exited with status 0', // the text alone
    ` ${M}[atrium 12:00:00] app exited with status 0`, // the marker, but not first
    `\u241e[atrium 12:00:00] app exited with status 0`, // ␞, the visible symbol for RS
    `^^[atrium 12:00:00] app exited with status 0`, // caret notation for RS
    `\\x1e[atrium 12:00:00] app exited with status 0`, // the escape written out
    `\u200b${M}[atrium 12:00:00] app exited with status 0`, // behind a zero-width space
    `${M}[atrium 12:00] app exited with status 0`, // not the platform's prefix
    `${M}[ATRIUM 12:00:00] app exited with status 0`,
  ]) {
    assert.ok(!isPlatformLine(forged), JSON.stringify(forged));
    assert.equal(platformMessage(forged), undefined);
    assert.deepEqual(parseLogLine(forged), { source: 'app', text: forged });
  }
});

test('a log splits into lines, and a marker mid-line begins a platform line', () => {
  assert.deepEqual(logLines(`a\n${M}[atrium 12:00:00] started x\nb\n`), ['a', `${M}[atrium 12:00:00] started x`, 'b']);
  assert.deepEqual(logLines(`prompt> ${M}[atrium 12:00:01] app exited with status 1\n`), ['prompt> ', `${M}[atrium 12:00:01] app exited with status 1`]);
  assert.deepEqual(logLines(''), []);
  assert.deepEqual(logLines('a\n\nb'), ['a', '', 'b'], 'empty lines are kept');
  assert.deepEqual(logLines(`${M}[atrium 12:00:00] one${M}[atrium 12:00:00] two\n`), [`${M}[atrium 12:00:00] one`, `${M}[atrium 12:00:00] two`]);
  assert.deepEqual(logLines('no newline'), ['no newline']);
});

test('escape sequences go whole, the text stays', () => {
  const cases: Array<[string, string]> = [
    ['\x1b]52;c;aGFja2Vk\x07after', 'after'], // OSC 52 clipboard write, BEL-terminated
    ['\x1b]52;c;aGFja2Vk\x1b\\after', 'after'], // … ST-terminated
    ['\x1b]0;title\x9cafter', 'after'], // … 8-bit ST
    ['\x9d52;c;aGk=\x07after', 'after'], // 8-bit OSC
    ['\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\', 'click'], // hyperlink: the text is kept, the target is not
    ['\x1b[31mred\x1b[0m \x1b[1;38;5;196mbold\x1b[m', 'red bold'], // SGR colours
    ['\x1b[2K\x1b[1Gcleared \x1b[?1049h\x1b[?25l', 'cleared '], // erase, cursor, alternate screen
    ['\x9b31mc1 csi', 'c1 csi'],
    ['\x1bPq#0;2;0;0;0\x1b\\sixel', 'sixel'], // DCS
    ['\x1b_apc\x07 \x1b^pm\x07 \x1bXsos\x07', '  '], // APC, PM, SOS
    ['\x1b7saved\x1b8 \x1b(B\x1bc', 'saved '], // two-byte and nF escapes, ESC c (reset)
    ['unterminated \x1b]52;c;aGk=\nnext line', 'unterminated \nnext line'],
    ['cut \x1b[31', 'cut '],
    ['lone escape \x1b', 'lone escape '],
  ];
  for (const [input, want] of cases) assert.equal(safeTerminalText(input), want, JSON.stringify(input));
});

test('controls go, newlines and tabs stay, CRLF becomes LF', () => {
  assert.equal(safeTerminalText('a\r\nb\r\r\nc\n'), 'a\nb\nc\n');
  assert.equal(safeTerminalText('progress 10%\rprogress 100%'), 'progress 10%progress 100%', 'a lone CR cannot overwrite a line');
  assert.equal(safeTerminalText('bell\x07 nul\x00 bs\b\b vt\x0b ff\x0c del\x7f so\x0e si\x0f rs\x1e sub\x1a'), 'bell nul bs vt ff del so si rs sub');
  assert.equal(safeTerminalText('col1\tcol2'), 'col1\tcol2');
  assert.equal(safeTerminalText('c1\x80\x85\x8d\x91\x9a.'), 'c1.');
  assert.equal(safeTerminalText('ünïcødé ✓ 漢字 😀 \u00a0nbsp'), 'ünïcødé ✓ 漢字 😀 \u00a0nbsp', 'printable text beyond ASCII is kept');
  const safe = safeTerminalText(Array.from({ length: 0xa0 }, (_, i) => String.fromCharCode(i)).join(''));
  assert.doesNotMatch(safe, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
});
