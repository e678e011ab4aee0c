/**
 * The sandbox's seccomp profile: an allow-list in the spirit of Docker's
 * default profile. A call the list does not name fails with EPERM; one
 * numbered above every call the list names (a call added to the kernel
 * after the list was written) fails with ENOSYS, which runc arranges for a
 * profile whose default is an errno, so libc falls back to an older call
 * where it has one. Arguments are filtered where a call is safe only with
 * some of them: `socket` families, `clone` flags, `personality` values.
 *
 * Left out on purpose, beyond what Docker leaves out for processes without
 * capabilities (mounts, namespaces, modules, kexec, clocks, bpf, keyrings,
 * perf, ptrace and the other ways into another process's memory):
 * io_uring (a large, often-patched kernel surface that also bypasses these
 * very filters), userfaultfd, memfd_secret, fanotify, modify_ldt,
 * name_to_handle_at, adjtimex, and the NUMA memory-policy calls (Docker
 * allows those only with CAP_SYS_NICE).
 */
const EPERM = 1;
const ENOSYS = 38;

/** Namespace flags a new process may not ask for (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET). */
const CLONE_NAMESPACES = 0x7e020000;
/** Socket families a sandbox may open: Unix, IPv4, IPv6 and netlink (for its own interfaces and routes). */
const SOCKET_FAMILIES = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 } as const;
/** Personalities Docker allows: the Linux default, PER_LINUX32, UNAME26 with either, and the query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Calls allowed with any arguments, grouped by what they are for. */
export const ALLOWED_SYSCALLS = [
  // files, directories and descriptors
  'access', 'chdir', 'chmod', 'chown', 'chown32', 'close', 'close_range', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3',
  'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fchdir', 'fchmod', 'fchmodat', 'fchmodat2', 'fchown', 'fchown32',
  'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64',
  'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futimesat', 'getcwd', 'getdents', 'getdents64', 'getxattr',
  'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listxattr',
  'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'lstat64', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'newfstatat', 'open',
  'openat', 'openat2', 'pipe', 'pipe2', 'pread64', 'preadv', 'preadv2', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat',
  'readv', 'removexattr', 'rename', 'renameat', 'renameat2', 'rmdir', 'sendfile', 'sendfile64', 'setxattr', 'splice', 'stat', 'stat64',
  'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'tee', 'truncate', 'truncate64', 'umask',
  'unlink', 'unlinkat', 'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vmsplice', 'write', 'writev',
  // asynchronous I/O and waiting on descriptors
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old',
  'eventfd', 'eventfd2', 'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_setup', 'io_submit',
  'poll', 'ppoll', 'ppoll_time64', 'pselect6', 'pselect6_time64', 'select', '_newselect', 'signalfd', 'signalfd4', 'timerfd_create',
  'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64',
  // memory
  'brk', 'madvise', 'membarrier', 'memfd_create', 'mincore', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mremap',
  'msync', 'munlock', 'munlockall', 'munmap', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'remap_file_pages',
  // processes, threads and signals (clone is filtered below)
  'arch_prctl', 'capget', 'capset', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork', 'futex', 'futex_time64', 'futex_waitv',
  'get_robust_list', 'set_robust_list', 'get_thread_area', 'set_thread_area', 'set_tid_address', 'getpgid', 'getpgrp', 'getpid', 'getppid',
  'getpriority', 'setpriority', 'getsid', 'setsid', 'setpgid', 'gettid', 'ioprio_get', 'ioprio_set', 'kill', 'tgkill', 'tkill', 'pause',
  'pidfd_open', 'pidfd_send_signal', 'process_mrelease', 'prctl', 'prlimit64', 'getrlimit', 'setrlimit', 'ugetrlimit', 'getrusage',
  'restart_syscall', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
  'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sigaltstack', 'sigprocmask', 'sigreturn', 'sched_getaffinity',
  'sched_getattr', 'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp',
  'wait4', 'waitid', 'waitpid', 'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self',
  // identities (without capabilities these only move between the process's own ids)
  'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getresgid', 'getresgid32', 'getresuid',
  'getresuid32', 'getuid', 'getuid32', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups', 'setgroups32',
  'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setuid', 'setuid32',
  // time, as read (setting clocks is not here)
  'alarm', 'clock_getres', 'clock_getres_time64', 'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64',
  'getitimer', 'setitimer', 'gettimeofday', 'nanosleep', 'time', 'times', 'timer_create', 'timer_delete', 'timer_getoverrun',
  'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
  // sockets (socket itself is filtered below; the sandbox's network namespace decides where they reach)
  'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'listen', 'recv', 'recvfrom', 'recvmmsg',
  'recvmmsg_time64', 'recvmsg', 'send', 'sendmmsg', 'sendmsg', 'sendto', 'setsockopt', 'shutdown', 'socketpair',
  // System V and POSIX IPC (the sandbox has its own IPC namespace)
  'ipc', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64',
  'mq_unlink', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'shmat', 'shmctl',
  'shmdt', 'shmget',
  // the machine, as read
  'getcpu', 'getrandom', 'sysinfo', 'uname', 'ioctl',
] as const;

/** Calls refused whatever their arguments, named for the record and for tests: never in the list above. */
export const REFUSED_SYSCALLS = [
  'unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount',
  'open_tree', 'mount_setattr', 'keyctl', 'add_key', 'request_key', 'bpf', 'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'pidfd_getfd', 'kcmp', 'kexec_load', 'kexec_file_load',
  'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff', 'syslog', 'acct', 'settimeofday', 'clock_settime',
  'clock_adjtime', 'clock_adjtime64', 'adjtimex', 'quotactl', 'quotactl_fd', 'open_by_handle_at', 'name_to_handle_at', 'lookup_dcookie', 'perf_event_open',
  'userfaultfd', 'vhangup', 'iopl', 'ioperm', 'sethostname', 'setdomainname', 'mbind', 'set_mempolicy', 'get_mempolicy',
  'set_mempolicy_home_node', 'move_pages', 'migrate_pages', 'memfd_secret', 'fanotify_init', 'fanotify_mark', 'modify_ldt', 'socketcall',
  'clone3',
] as const;

type Arg = { index: number; value: number; valueTwo: number; op: string };

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string; errnoRet?: number; args?: Arg[] }>;
}

const allowWhen = (name: string, args: Arg[]) => ({ names: [name], action: 'SCMP_ACT_ALLOW', args });

export function seccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    // 32-bit code too, as Docker allows; it has no socketcall, so its sockets pass the family filter like everyone's
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: [...ALLOWED_SYSCALLS], action: 'SCMP_ACT_ALLOW' },
      // one rule per allowed value: a call matching any of them is allowed
      ...Object.values(SOCKET_FAMILIES).map((family) => allowWhen('socket', [{ index: 0, value: family, valueTwo: 0, op: 'SCMP_CMP_EQ' }])),
      ...PERSONALITIES.map((p) => allowWhen('personality', [{ index: 0, value: p, valueTwo: 0, op: 'SCMP_CMP_EQ' }])),
      // threads and processes, never new namespaces (a user namespace would bring mount and network powers with it)
      allowWhen('clone', [{ index: 0, value: CLONE_NAMESPACES, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]),
      // clone3 passes its flags in memory, where a filter cannot see them: ENOSYS makes libc use clone
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    ],
  };
}
