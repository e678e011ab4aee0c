import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closeCommandHelper, CommandFailed, run, runWithoutOutput, useCommandHelper } from './exec.js';

const AGENT = fileURLToPath(new URL('../../../dist/agent/atrium-agent', import.meta.url));

/** The command helper's pid, from the processes that are children of this one and run `atrium-agent spawn`. */
function helperPids(): number[] {
  const out: number[] = [];
  for (const line of readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim().split(/\s+/).filter(Boolean)) {
    const cmd = readFileSync(`/proc/${line}/cmdline`, 'utf8').split('\0');
    if (cmd[0] === AGENT && cmd[1] === 'spawn') out.push(Number(line));
  }
  return out;
}

/** The same cases through the helper and through Node's own execFile: both must behave alike. */
for (const through of ['atrium-agent spawn', 'execFile'] as const) {
  test(`host commands through ${through}`, async (t) => {
    if (through === 'atrium-agent spawn') {
      assert.ok(existsSync(AGENT), `${AGENT} is missing: build the agent (scripts/deps.sh run)`);
      useCommandHelper(AGENT);
    } else closeCommandHelper();
    after(closeCommandHelper);

    await t.test('stdout and stderr of a command that succeeds', async () => {
      assert.deepEqual(await run('sh', ['-c', 'printf "out"; printf "err" >&2']), { stdout: 'out', stderr: 'err' });
    });
    await t.test('arguments are passed as they are, without a shell', async () => {
      const odd = ['a b', '$HOME', "'\"", '', 'é ü'];
      assert.equal((await run('printf', ['%s|', ...odd])).stdout, odd.map((a) => `${a}|`).join(''));
    });
    await t.test('stdin, larger than a pipe holds', async () => {
      const input = 'x'.repeat(300_000) + 'end';
      assert.equal((await run('cat', [], { input })).stdout, input);
    });
    await t.test('a failing command: its exit code and the last lines of its stderr', async () => {
      const err = await run('sh', ['-c', 'echo first >&2; echo why >&2; exit 3']).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof CommandFailed);
      assert.equal(err.code, 3);
      assert.match(err.message, /sh -c failed \(exit 3\): first why/);
    });
    await t.test('a command that does not exist', async () => {
      const err = await run('atrium-no-such-command', ['x']).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof CommandFailed);
      assert.equal(err.code, null);
      assert.match(err.message, /ENOENT/);
    });
    await t.test('a command past its timeout is ended', async () => {
      const began = Date.now();
      const err = await run('sleep', ['10'], { timeoutMs: 200 }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof CommandFailed);
      assert.equal(err.code, null);
      assert.ok(Date.now() - began < 5000);
    });
    await t.test('a command writing more than 16 MiB is ended, not buffered without end', async () => {
      const err = await run('head', ['-c', String(64 << 20), '/dev/zero']).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof CommandFailed);
    });
    await t.test('without output: only the exit code', async () => {
      assert.equal(await runWithoutOutput('sh', ['-c', 'echo hidden; exit 4'], { timeoutMs: 5000 }), 4);
      assert.equal(await runWithoutOutput('atrium-no-such-command', [], { timeoutMs: 5000 }), null);
    });
    await t.test('many at once, each answered with its own output', async () => {
      const outs = await Promise.all(Array.from({ length: 100 }, (_, i) => run('sh', ['-c', `sleep 0.0$((${i} % 5)); echo ${i}`])));
      assert.deepEqual(outs.map((o) => o.stdout), Array.from({ length: 100 }, (_, i) => `${i}\n`));
    });
    if (through === 'atrium-agent spawn') {
      await t.test('the commands run in the helper, not as children of the control plane', async () => {
        const [pid] = helperPids();
        assert.ok(pid, 'no helper running');
        const ppid = (await run('sh', ['-c', 'echo $PPID'])).stdout.trim();
        assert.equal(Number(ppid), pid);
      });
      await t.test('a helper that died fails what it ran, and the next command starts another', async () => {
        const [pid] = helperPids();
        const pending = run('sleep', ['5']);
        await new Promise((r) => setTimeout(r, 100));
        process.kill(pid!, 'SIGKILL');
        await assert.rejects(pending, /command helper/);
        assert.equal((await run('echo', ['again'])).stdout, 'again\n');
        assert.notEqual(helperPids()[0], pid);
      });
    }
  });
}
