// The syscalls fhirguard calls dangerous: each one turns a bug in a worker into more than a
// bug in a worker (a shell, another process's memory, a new view of the filesystem, kernel
// code, or a kernel interface with a long record of privilege escalations). Most of them
// are also refused by Docker's default profile; `profile stats` lists those a tier still
// allows, per phase, and no tier's serve phase may allow any of them.
// Only x86_64 names: the tests check every name against fhirguard's syscall table.

export const DANGEROUS_SYSCALLS: Readonly<Record<string, string>> = Object.freeze({
  // Running other programs
  execve: 'runs a new program: turns code execution in the worker into a shell or any tool',
  execveat: 'runs a new program (execve relative to a directory fd)',

  // Other processes
  ptrace: 'reads and changes the memory and registers of another process',
  process_vm_readv: "reads another process's memory directly",
  process_vm_writev: "writes another process's memory directly",
  process_madvise: "changes the memory advice of another process's pages",
  pidfd_getfd: 'copies a file descriptor out of another process',
  kcmp: 'compares kernel objects of other processes: process inspection',

  // The filesystem view
  mount: 'mounts filesystems: changes what the container sees, can hide or expose host paths',
  umount2: 'unmounts filesystems: can uncover what a read-only or masked mount hides',
  pivot_root: 'swaps the root filesystem',
  chroot: 'changes the root directory: a step of classic chroot and mount-namespace escapes',
  move_mount: 'moves mounts (new mount API)',
  open_tree: 'clones or opens mount trees (new mount API)',
  open_tree_attr: 'clones mount trees with new attributes (new mount API)',
  fsopen: 'creates a filesystem context (new mount API)',
  fsconfig: 'configures a filesystem context (new mount API)',
  fsmount: 'turns a filesystem context into a mount (new mount API)',
  fspick: 'reconfigures an existing mount (new mount API)',
  mount_setattr: 'changes mount attributes, e.g. read-only to read-write',
  open_by_handle_at: 'opens files by handle, bypassing path checks: the "shocker" container breakout',
  name_to_handle_at: 'produces the file handles open_by_handle_at consumes',

  // Namespaces
  unshare: 'creates new namespaces (user namespaces reach kernel code otherwise root-only)',
  setns: "joins another process's namespaces",

  // Kernel programs and tracing
  bpf: "loads eBPF programs and maps into the kernel (and could tamper with fhirguard's own)",
  perf_event_open: 'kernel and hardware tracing: leaks host information, frequent exploit target',
  lookup_dcookie: 'kernel profiling interface that leaks host paths',
  syslog: 'reads or clears the kernel log',

  // Kernel modules and kernels
  init_module: 'loads a kernel module',
  finit_module: 'loads a kernel module from a file',
  delete_module: 'unloads a kernel module',
  create_module: 'obsolete kernel module interface',
  query_module: 'obsolete kernel module interface',
  get_kernel_syms: 'obsolete: lists kernel symbols',
  kexec_load: 'loads a new kernel to boot into',
  kexec_file_load: 'loads a new kernel to boot into (from a file)',
  reboot: 'reboots or halts the host',

  // Kernel facilities that are not namespaced, or are exploit primitives
  keyctl: 'kernel keyrings, which are not namespaced: keys of other containers and the host',
  add_key: 'adds keys to the non-namespaced kernel keyrings',
  request_key: 'requests keys from the non-namespaced kernel keyrings',
  userfaultfd: 'lets user space stall kernel page faults: the race-widening primitive of many exploits',
  io_uring_setup: 'io_uring: a second syscall interface seccomp cannot filter, many kernel CVEs',
  io_uring_enter: 'io_uring: submits operations seccomp never sees',
  io_uring_register: 'io_uring: registers files and buffers with a ring',
  personality: 'changes the execution domain (e.g. READ_IMPLIES_EXEC, other ABIs): rarely tested kernel paths',
  modify_ldt: '16-bit segment descriptors: old exploit surface, information leak',
  iopl: 'raises the I/O privilege level: direct hardware port access',
  ioperm: 'grants direct hardware I/O port access',
  acct: 'switches process accounting on or off for the host',
  quotactl: 'changes disk quotas: can lift limits on the host filesystem',
  quotactl_fd: 'changes disk quotas (by file descriptor)',
  swapon: 'starts swapping to a file or device',
  swapoff: 'stops swapping to a file or device',
  settimeofday: 'sets the clock: time is not namespaced',
  clock_settime: 'sets a clock: time is not namespaced',
  clock_adjtime: 'adjusts a clock: time is not namespaced',
  adjtimex: 'adjusts the kernel clock: time is not namespaced',
  _sysctl: 'obsolete kernel parameter interface',
  uselib: 'obsolete shared library loader',
  nfsservctl: 'obsolete kernel NFS server control',
  fanotify_init: "watches filesystem events across mounts, including the host's",
});

export function isDangerous(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(DANGEROUS_SYSCALLS, name);
}

/** The dangerous names among `names`, sorted. */
export function dangerousAmong(names: Iterable<string>): string[] {
  return [...new Set([...names].filter(isDangerous))].sort();
}
