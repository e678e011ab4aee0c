import { parseBytes, parseCpu } from '../../../src/domain/index.ts';
import type { UsageView } from '../api/types.ts';
import { QuotaBar } from '../components/ui.tsx';
import { bytes } from '../format.ts';

/** Millicores in cores, as people read CPU quotas: 1500 → "1.5", 4000 → "4" (not formatCpu's "1500m"). */
function cores(milli: number): string {
  return String(milli / 1000);
}

interface Line {
  label: string;
  used: number;
  limit: number;
  usedText: string;
  limitText: string;
}

function lines({ quota, usage }: UsageView): Line[] {
  const cpuUsed = parseCpu(usage.cpu) ?? 0;
  const cpuLimit = parseCpu(quota.cpu) ?? 0;
  const memUsed = parseBytes(usage.memory) ?? 0;
  const memLimit = parseBytes(quota.memory) ?? 0;
  const diskUsed = parseBytes(usage.storage) ?? 0;
  const diskLimit = parseBytes(quota.storage) ?? 0;
  const gpuTypes = [...new Set([...Object.keys(quota.gpu), ...Object.keys(usage.gpu)])]
    .filter((t) => (quota.gpu[t] ?? 0) > 0 || (usage.gpu[t] ?? 0) > 0)
    .sort();
  return [
    { label: 'CPU', used: cpuUsed, limit: cpuLimit, usedText: cores(cpuUsed), limitText: cores(cpuLimit) },
    { label: 'Memory', used: memUsed, limit: memLimit, usedText: bytes(memUsed), limitText: bytes(memLimit) },
    ...gpuTypes.map((t) => {
      const used = usage.gpu[t] ?? 0;
      const limit = quota.gpu[t] ?? 0;
      return { label: `GPU ${t}`, used, limit, usedText: String(used), limitText: String(limit) };
    }),
    { label: 'Storage', used: diskUsed, limit: diskLimit, usedText: bytes(diskUsed), limitText: bytes(diskLimit) },
    { label: 'Workspaces', used: usage.workspaces, limit: quota.workspaces, usedText: String(usage.workspaces), limitText: String(quota.workspaces) },
  ];
}

/**
 * A team's quota beside what its workspaces hold now, one bar per line: CPU,
 * memory, each GPU type it may use or uses, storage and workspaces.
 */
export function QuotaBars({ usage }: { usage: UsageView }) {
  return (
    <div className="quota-bars">
      {lines(usage).map((l) => (
        <QuotaBar key={l.label} {...l} />
      ))}
    </div>
  );
}
