import { Type } from '@sinclair/typebox';
import { Conflict, formatBytesApprox } from '../../domain/index.js';
import type { ImageInfo, ImageProgress, ImageStore } from '../../runtime/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { ImageImporting, ImageParams, ImageView, ImportImageBody } from '../schemas.js';

const HEARTBEAT_MS = 15_000;

/**
 * Workspace images (admins): imported into the runtime's store with
 * skopeo, listed with the workspaces using them, removed once none does.
 * Imports run in the background; their steps stream from
 * `GET /api/v1/images/events`.
 */
export function imageRoutes(deps: ApiDeps): RouteDef[] {
  const store = (): ImageStore => {
    if (!deps.images) throw new Conflict(deps.logs ? 'this runtime keeps no images of its own: Kubernetes nodes pull the image a profile names' : 'no runtime is configured (atrium serve --runtime none)', deps.logs ? 'conflict' : 'no_runtime');
    return deps.images;
  };
  const view = async (i: ImageInfo) => ({
    name: i.name,
    source: i.source,
    digest: i.digest,
    sizeBytes: i.sizeBytes,
    size: formatBytesApprox(i.sizeBytes),
    importedAt: i.importedAt,
    unpacked: i.unpacked,
    usedBy: await Promise.all(i.usedBy.map(async (id) => {
      const ws = await deps.store.workspaces.get(id);
      return ws ? `${ws.team}/${ws.name}` : id;
    })),
  });

  return [
    route({
      method: 'GET',
      url: '/api/v1/images',
      action: 'image.list',
      admin: true,
      summary: 'Workspace images in the runtime\'s store, with the workspaces using each (admins)',
      tag: 'images',
      response: Type.Object({ items: Type.Array(ImageView), importing: Type.Array(Type.String(), { description: 'names being imported now' }) }),
      async handler() {
        const images = store();
        return { items: await Promise.all((await images.list()).map(view)), importing: images.importing() };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/images',
      action: 'image.import',
      admin: true,
      target: ({ body }) => `images/${body.name ?? body.source}`,
      summary: 'Import an image (admins): copied in the background; its steps stream from /api/v1/images/events, and a new import under an existing name replaces it for later starts',
      tag: 'images',
      body: ImportImageBody,
      response: ImageImporting,
      status: 201,
      async handler({ body, request }) {
        // the source and name are checked before the answer; the copy runs on
        const { name, done } = await store().import(body.source, body.name ? { name: body.name } : {});
        done.catch((err: unknown) => request.log.warn({ err, image: name }, 'image import failed'));
        return { name, state: 'importing' as const, message: `copying ${body.source}` };
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/images/events',
      action: 'image.events',
      admin: true,
      summary: 'Steps of image imports and unpacks as they happen, as Server-Sent Events (`image` events: name, state importing|unpacking|ready|failed|removed, message); the first is `ready`',
      tag: 'images',
      stream: true,
      response: Type.String({ description: 'text/event-stream' }),
      async handler({ reply }) {
        const images = store();
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        res.write('retry: 3000\n\nevent: ready\ndata: {}\n\n');
        const send = (p: ImageProgress) => {
          const { image: _full, ...rest } = p;
          res.write(`event: image\ndata: ${JSON.stringify(rest)}\n\n`);
        };
        const off = images.subscribe(send);
        const timer = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
        res.on('close', () => {
          off();
          clearInterval(timer);
        });
        return '';
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/images/:image',
      action: 'image.read',
      admin: true,
      summary: 'One image (admins)',
      tag: 'images',
      params: ImageParams,
      response: ImageView,
      async handler({ params }) {
        return view(await store().get(params.image));
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/images/:image',
      action: 'image.delete',
      admin: true,
      summary: 'Remove an image and its unpacked root (admins); refused while a workspace, running or stopped, uses it',
      tag: 'images',
      params: ImageParams,
      status: 204,
      async handler({ params }) {
        await store().remove(params.image);
      },
    }),
  ];
}
