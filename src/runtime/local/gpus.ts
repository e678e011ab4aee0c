import { existsSync, statSync } from 'node:fs';
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
