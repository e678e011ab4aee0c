/**
 * The sandbox's seccomp profile: everything is allowed except what would let
 * code leave or widen its sandbox, in the spirit of Docker's default. Denied
 * calls fail with EPERM; clone3 fails with ENOSYS so libc falls back to
 * clone, whose flags can be inspected (clone3 passes them in memory).
 */
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;

export const DENIED_SYSCALLS = [
  // namespaces and mounts: no new user namespaces, no joining others, no mount table changes
  'unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'chroot',
  'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr',
  // kernel keyring, bpf, io_uring
  'keyctl', 'add_key', 'request_key', 'bpf', 'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  // other processes' memory and descriptors
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd', 'kcmp',
  // kernel and machine state
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff',
  'syslog', 'acct', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'quotactl', 'quotactl_fd', 'nfsservctl',
  'open_by_handle_at', 'name_to_handle_at', 'lookup_dcookie', 'perf_event_open', 'userfaultfd', 'vhangup', 'iopl', 'ioperm',
  'create_module', 'get_kernel_syms', 'query_module', 'uselib', 'ustat', 'sysfs', '_sysctl',
] as const;

export interface SeccompProfile {
  defaultAction: string;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string; errnoRet?: number; args?: Array<{ index: number; value: number; valueTwo: number; op: string }> }>;
}

export function seccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      {
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: 'SCMP_CMP_MASKED_EQ' }],
      },
    ],
  };
}
