import { existsSync, statSync } from 'node:fs';
import type { Gpu, WorkspaceSpec } from '../types.js';
import { run } from './exec.js';
import type { DeviceNode } from './bundle.js';

/** One whole GPU on this machine. */
export interface GpuDevice {
  index: number;
  type: string;
  uuid: string;
  device: DeviceNode;
}

/** A configured inventory entry, for machines whose GPUs are known ahead (and for tests). */
export interface GpuInventoryEntry {
  index: number;
  type: string;
  uuid: string;
  /** the device node, e.g. /dev/nvidia0 */
  path: string;
}

const CONTROL_DEVICES = ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia-modeset'];

function node(path: string): DeviceNode | undefined {
  if (!existsSync(path)) return undefined;
  const st = statSync(path);
  if (!st.isCharacterDevice()) return undefined;
  return { path, major: Math.floor(st.rdev / 256), minor: st.rdev % 256 };
}

/** "NVIDIA A100-SXM4-40GB" → "a100", "Tesla T4" → "t4". */
export function gpuTypeFromModel(model: string): string {
  const words = model.replace(/^(NVIDIA|Tesla|Quadro|GeForce)\s+/gi, '').trim().split(/\s+/);
  const first = (words[0] ?? 'gpu').toLowerCase().split('-')[0]!.replace(/[^a-z0-9.]/g, '');
  return first || 'gpu';
}

/** Parses `nvidia-smi -L`: "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-…)". */
export function parseNvidiaSmi(output: string): Array<{ index: number; model: string; uuid: string }> {
  const out: Array<{ index: number; model: string; uuid: string }> = [];
  for (const line of output.split('\n')) {
    const m = /^GPU (\d+): (.+?) \(UUID: ([^)]+)\)/.exec(line.trim());
    if (m) out.push({ index: Number(m[1]), model: m[2]!, uuid: m[3]! });
  }
  return out;
}

/**
 * Finds this machine's NVIDIA GPUs (`nvidia-smi -L` and `/dev/nvidia*`), or
 * takes the configured inventory when there is one.
 */
export async function discoverGpus(inventory: GpuInventoryEntry[] | undefined): Promise<GpuDevice[]> {
  if (inventory && inventory.length > 0) {
    return inventory.map((g) => {
      const device = node(g.path);
      if (!device) throw new Error(`GPU inventory: ${g.path} is not a character device`);
      // inside the sandbox it is always /dev/nvidiaN, whatever the host calls it
      return { index: g.index, type: g.type, uuid: g.uuid, device: { ...device, path: `/dev/nvidia${g.index}` } };
    });
  }
  let listed: Array<{ index: number; model: string; uuid: string }>;
  try {
    listed = parseNvidiaSmi((await run('nvidia-smi', ['-L'], { timeoutMs: 10_000 })).stdout);
  } catch {
    return [];
  }
  return listed.flatMap((g) => {
    const device = node(`/dev/nvidia${g.index}`);
    return device ? [{ index: g.index, type: gpuTypeFromModel(g.model), uuid: g.uuid, device }] : [];
  });
}

/** The device nodes every GPU workspace needs besides its own GPUs. */
export function controlDevices(): DeviceNode[] {
  return CONTROL_DEVICES.flatMap((p) => node(p) ?? []);
}

/** Which of this machine's GPUs each workspace holds. */
export interface GpuAllocator {
  /** Records that `id` holds GPU `index` (a sandbox found at start-up). */
  hold(index: number, id: string): void;
  /**
   * The GPUs `spec` asks for, held for its workspace: those it holds already,
   * or free ones of its type. Throws when there are not enough.
   */
  allocate(id: string, spec: WorkspaceSpec): GpuDevice[];
  /** Frees every GPU `id` holds. */
  release(id: string): void;
  /** Every GPU of this machine, with the workspace holding it. */
  list(): Gpu[];
}

/**
 * Keeps which of `gpus` each workspace holds, in memory; the caller rebuilds
 * it with `hold` from the sandboxes that exist.
 *
 * @param gpus - this machine's GPUs, as `discoverGpus` found them
 */
export function createGpuAllocator(gpus: GpuDevice[]): GpuAllocator {
  const held = new Map<number, string>();
  return {
    hold(index, id) {
      held.set(index, id);
    },

    allocate(id, spec) {
      if (spec.gpu.count === 0 || !spec.gpu.type) return [];
      const mine = gpus.filter((g) => held.get(g.index) === id);
      if (mine.length >= spec.gpu.count) return mine.slice(0, spec.gpu.count);
      const free = gpus.filter((g) => g.type === spec.gpu.type && !held.has(g.index));
      const total = gpus.filter((g) => g.type === spec.gpu.type).length;
      if (total === 0) throw new Error(`this machine has no GPU of type ${spec.gpu.type}`);
      if (free.length < spec.gpu.count) throw new Error(`no free GPU of type ${spec.gpu.type}: ${spec.gpu.count} needed, ${free.length} of ${total} free`);
      const chosen = free.slice(0, spec.gpu.count);
      for (const g of chosen) held.set(g.index, id);
      return chosen;
    },

    release(id) {
      for (const [index, holder] of held) if (holder === id) held.delete(index);
    },

    list() {
      return gpus.map((g) => ({ index: g.index, type: g.type, uuid: g.uuid, heldBy: held.get(g.index) ?? null }));
    },
  };
}
