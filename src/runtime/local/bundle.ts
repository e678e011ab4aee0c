import { OWN_FILES } from './etc.js';
import { seccompProfile } from './seccomp.js';

/** A device node given to one sandbox (a GPU, or the NVIDIA control devices). */
export interface DeviceNode {
  path: string;
  major: number;
  minor: number;
}

export interface BundleInput {
  hostname: string;
  uid: number;
  gid: number;
  /** the root: an empty directory of mount points (the host's /usr and a generated /etc are mounted in), or an image's shared root */
  rootfs: string;
  /** the shared read-only /etc made from the host's; absent with an image, whose own /etc is used */
  baseEtc?: string | undefined;
  ownEtc: string;
  homeDir: string;
  agentPath: string;
  args: string[];
  env: Record<string, string>;
  cpu: { requestMilli: number; limitMilli: number };
  memoryBytes: number;
  pids: number;
  tmpBytes: number;
  devices: DeviceNode[];
  /** cgroup path relative to each controller's root, e.g. /atrium/w_abc */
  cgroupsPath: string;
  /** extra read-only bind mounts: host path → sandbox path */
  readOnly: Array<{ source: string; destination: string }>;
  /** a network namespace prepared on the host (public egress); a new one with loopback only when unset */
  netns?: string | undefined;
  /** team volumes: host directory → path in the sandbox, read-only by the kernel when asked */
  volumes?: Array<{ source: string; destination: string; readOnly: boolean }>;
  /** groups the sandbox's processes also belong to (the team's volume group) */
  additionalGids?: number[];
}

const CPU_PERIOD_US = 100_000;
/** Below this the kernel refuses the open-files limit without CAP_SYS_RESOURCE (the host's hard limit is 20000 here). */
const NOFILE = 16_384;

/**
 * The OCI runtime configuration of one workspace sandbox (design §6): a
 * read-only root made of the host's /usr and a generated /etc (or an
 * image's shared root, with the same own files laid over its /etc), the home
 * bind-mounted, tmpfs /tmp; new pid, ipc, uts, mount and network namespaces
 * (the network one has loopback only, or is the one the host prepared for
 * public egress); cgroup limits; no capabilities, no new
 * privileges, and the seccomp profile.
 */
export function ociConfig(b: BundleInput): Record<string, unknown> {
  const ro = ['rbind', 'ro', 'nosuid', 'nodev'];
  return {
    ociVersion: '1.0.2',
    hostname: b.hostname,
    root: { path: b.rootfs, readonly: true },
    process: {
      terminal: false,
      user: { uid: b.uid, gid: b.gid, additionalGids: b.additionalGids ?? [] },
      args: b.args,
      env: Object.entries(b.env).map(([k, v]) => `${k}=${v}`),
      cwd: '/home/jovyan',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: NOFILE, soft: NOFILE }],
      oomScoreAdj: 500,
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${Math.min(b.memoryBytes, 1 << 30)}`] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      // the host's /usr and /etc, unless the root is an image's
      ...(b.baseEtc
        ? [
            { destination: '/usr', type: 'bind', source: '/usr', options: ro },
            { destination: '/etc', type: 'bind', source: b.baseEtc, options: ro },
          ]
        : []),
      ...OWN_FILES.map((f) => ({ destination: `/etc/${f}`, type: 'bind', source: `${b.ownEtc}/${f}`, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] })),
      { destination: '/etc/ssh', type: 'bind', source: `${b.ownEtc}/ssh`, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] },
      ...(b.baseEtc ? [{ destination: '/etc/ssh/moduli', type: 'bind', source: `${b.baseEtc}/ssh/moduli`, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] }] : []),
      { destination: '/home/jovyan', type: 'bind', source: b.homeDir, options: ['rbind', 'rw', 'nosuid', 'nodev'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', `size=${b.tmpBytes}`] },
      { destination: '/.atrium/agent', type: 'bind', source: b.agentPath, options: ['bind', 'ro', 'nosuid', 'nodev'] },
      ...b.readOnly.map((m) => ({ destination: m.destination, type: 'bind', source: m.source, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] })),
      // /data holds volumes' mount points, in memory: nothing is written into a shared image root for them
      ...((b.volumes ?? []).some((v) => v.destination.startsWith('/data/')) ? [{ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=755', 'size=64k'] }] : []),
      ...(b.volumes ?? []).map((v) => ({ destination: v.destination, type: 'bind', source: v.source, options: ['rbind', v.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'] })),
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, b.netns ? { type: 'network', path: b.netns } : { type: 'network' }, { type: 'cgroup' }],
      cgroupsPath: b.cgroupsPath,
      resources: {
        memory: { limit: b.memoryBytes, swap: b.memoryBytes, disableOOMKiller: false },
        // the guarantee becomes the CPU weight, the limit the CFS quota (design §5)
        cpu: { shares: Math.max(2, Math.round((b.cpu.requestMilli * 1024) / 1000)), quota: Math.round(b.cpu.limitMilli * (CPU_PERIOD_US / 1000)), period: CPU_PERIOD_US },
        pids: { limit: b.pids },
        devices: [{ allow: false, access: 'rwm' }, ...b.devices.map((d) => ({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rw' }))],
      },
      devices: b.devices.map((d) => ({ path: d.path, type: 'c', major: d.major, minor: d.minor, fileMode: 0o666, uid: 0, gid: 0 })),
      seccomp: seccompProfile(),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
        '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
