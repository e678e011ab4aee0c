import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useApi } from './session.tsx';
import { openEventStream } from './stream.ts';
import type { ImageEvent } from './types.ts';

/** One step of an import, as it was announced. */
export interface ImageStep {
  state: ImageEvent['state'];
  message: string;
  /** when the portal heard of it */
  at: string;
}

/** What an image's import has said so far: its steps in order, the last one's state. */
export interface ImageProgress {
  name: string;
  state: ImageEvent['state'];
  steps: ImageStep[];
}

/** States after which an image is done changing: the list is fetched again. */
const SETTLED = new Set<ImageEvent['state']>(['ready', 'failed', 'removed']);
const MAX_STEPS = 200;

/**
 * The image imports' steps, live from `GET /api/v1/images/events` (admins)
 * while the calling page is shown. The stream starts with `ready`, on each
 * connection and reconnection: the image list is fetched again then, and
 * whenever an image becomes ready, fails or is removed. Steps are kept per
 * image name; a new import of a name whose last one had ended starts a new
 * list.
 */
export function useImageEvents(): { progress: ReadonlyMap<string, ImageProgress>; connected: boolean } {
  const qc = useQueryClient();
  const api = useApi();
  const [progress, setProgress] = useState<ReadonlyMap<string, ImageProgress>>(() => new Map());
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    const refresh = () => void qc.invalidateQueries({ queryKey: ['images'] });
    const onImage = (m: MessageEvent<string>) => {
      const e = JSON.parse(m.data) as ImageEvent;
      const step: ImageStep = { state: e.state, message: e.message, at: new Date().toISOString() };
      setProgress((prev) => {
        const was = prev.get(e.name);
        const steps = was && !SETTLED.has(was.state) ? [...was.steps, step].slice(-MAX_STEPS) : [step];
        return new Map(prev).set(e.name, { name: e.name, state: e.state, steps });
      });
      if (SETTLED.has(e.state)) refresh();
    };
    return openEventStream('/api/v1/images/events', { listeners: { image: onImage }, onReady: refresh, setConnected, checkSession: () => api.me() });
  }, [api, qc]);

  return { progress, connected };
}
