import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { CliError, signedIn } from './client.js';
import { listCommand } from './list.js';
import { ago, oneLine, print } from './output.js';
import { confirm } from './prompt.js';
import { serverEvents } from './sse.js';

type ImageView = Static<typeof schemas.ImageView>;
type ImageImporting = Static<typeof schemas.ImageImporting>;

const seg = encodeURIComponent;

/** `atrium images`: workspace images in the local runtime's store (admins). */
export function registerImages(program: Command): void {
  const images = program.command('images').description('workspace images: what profiles name in `image` (admins)');

  listCommand<ImageView>(images, {
    description: 'list imported images, with the workspaces using each',
    items: async () => (await signedIn().client.get<{ items: ImageView[] }>('/api/v1/images')).items,
    columns: [
      ['IMAGE', (i) => i.name],
      ['DIGEST', (i) => i.digest.slice(0, 19)],
      ['SIZE', (i) => i.size],
      ['IMPORTED', (i) => ago(i.importedAt)],
      ['UNPACKED', (i) => (i.unpacked ? 'yes' : 'no')],
      ['USED BY', (i) => (i.usedBy.length === 0 ? '-' : i.usedBy.length > 3 ? `${i.usedBy.slice(0, 3).join(', ')} and ${i.usedBy.length - 3} more` : i.usedBy.join(', '))],
      ['SOURCE', (i) => i.source],
    ],
    empty: 'No images; import one with `atrium images import <ref|file>`. Profiles without an image use the host\'s /usr.',
  });

  images
    .command('import')
    .description('copy an image into the store (skopeo): a registry reference (python:3.11, docker://…), oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, or a path on the server')
    .argument('<source>', 'what to import; paths are read by the server')
    .option('--name <name>', 'what profiles call it (default: the reference, or the file name)')
    .option('--no-wait', 'return once the import has begun')
    .option('--timeout <seconds>', 'how long to wait for the copy', '3600')
    .option('--json', 'print JSON')
    .action(async (source: string, opts: { name?: string; wait: boolean; timeout: string; json?: boolean }) => {
      if (!/^[0-9]+$/.test(opts.timeout)) throw new CliError('--timeout expects whole seconds', 2);
      const { client } = signedIn();
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), Number(opts.timeout) * 1000);
      try {
        // the step stream first, so no step of this import is missed
        const events = opts.wait ? serverEvents(await client.raw('GET', '/api/v1/images/events', abort.signal)) : undefined;
        if (events) await events.next();
        const started = Date.now();
        const begun = await client.post<ImageImporting>('/api/v1/images', { source, ...(opts.name ? { name: opts.name } : {}) });
        if (!events) return print(opts.json, begun, () => `Importing ${begun.name}; follow it with \`atrium images ls\`.\n`);
        if (!opts.json) process.stderr.write(`Importing ${source} as ${begun.name}\n`);
        for await (const { event, data } of events) {
          if (event !== 'image') continue;
          const p = JSON.parse(data) as { name: string; state: string; message: string };
          if (p.name !== begun.name) continue;
          if (!opts.json) process.stderr.write(`  ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s  ${oneLine(p.message)}\n`);
          if (p.state === 'failed') throw new CliError(`import of ${begun.name} failed: ${oneLine(p.message)}`);
          if (p.state === 'ready') {
            const image = await client.get<ImageView>(`/api/v1/images/${seg(begun.name)}`);
            return print(opts.json, image, () => `Image ${image.name} imported (${image.digest.slice(0, 19)}, ${image.size}).\n`);
          }
        }
        throw new CliError('the event stream ended early; see `atrium images ls`');
      } catch (err) {
        if (abort.signal.aborted) throw new CliError(`gave up waiting after ${opts.timeout}s; the import goes on (see \`atrium images ls\`)`);
        throw err;
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
    });

  images
    .command('rm')
    .description('remove an image and its unpacked root; refused while a workspace (running or stopped) uses it')
    .argument('<image>')
    .option('-y, --yes', 'do not ask')
    .action(async (name: string, opts: { yes?: boolean }) => {
      await confirm(`Remove image ${name}?`, opts.yes);
      await signedIn().client.delete(`/api/v1/images/${seg(name)}`);
      process.stdout.write(`Image ${name} removed.\n`);
    });
}
