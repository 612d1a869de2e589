// Why a syscall can be made in one run of the same workload and not in another: what the
// report says about a name that is in some recordings and not others (or in the previous
// profile and not this one). These are the calls whose use depends on timing and memory
// state in node, V8, libuv and glibc rather than on what the requests asked for.

const REASONS: Readonly<Record<string, string>> = {
  brk: 'malloc grows or shrinks the heap: depends on what was allocated and freed before',
  mmap: 'V8 and malloc map memory as heaps grow: depends on allocation sizes and GC timing',
  munmap: 'V8 and malloc unmap memory the GC freed: depends on GC timing',
  madvise: 'V8 returns pages the GC freed: depends on GC timing',
  mprotect: 'V8 changes code-space and heap-page protections: depends on JIT and GC timing',
  mremap: 'a large buffer grown in place (realloc): depends on response sizes',
  sched_yield: 'spin-then-yield in lock contention between threads: depends on thread timing',
  futex: 'threads waiting for and waking each other: depends on thread timing',
  nanosleep: 'a thread backs off for a moment: depends on contention',
  clock_nanosleep: 'a thread backs off for a moment: depends on contention',
  restart_syscall: 'a blocking call interrupted by a signal and restarted: depends on signal timing',
  rt_sigreturn: 'return from a signal handler: depends on whether a signal arrived',
  tgkill: 'V8 interrupts one of its own threads: depends on GC and compiler timing',
  clone: 'libuv or V8 starts a helper thread on first use: depends on when that use comes',
  set_robust_list: 'a new thread starts: depends on when helper threads are started',
  rseq: 'a new thread starts: depends on when helper threads are started',
  sigaltstack: 'a new thread starts: depends on when helper threads are started',
  rt_sigprocmask: 'a new thread starts, or a signal is blocked around a critical section',
  exit: 'a helper thread ends: depends on when the runtime stops one',
  gettid: 'a thread names itself: depends on which threads run',
  getpid: 'logging or process-wide state read: depends on what was logged',
  epoll_wait: 'the event loop waits in a different way: depends on timers pending',
  getrandom: "OpenSSL reseeds its random generators from the kernel after a number of uses or an hour: depends on the worker's age",
  clock_gettime: 'the vDSO answers time queries without a syscall on this host; where the clock source has no vDSO support (some VMs), each one is a syscall',
  gettimeofday: 'the vDSO answers time queries without a syscall on this host; where the clock source has no vDSO support (some VMs), each one is a syscall',
  exit_group: 'the process ends: in serve only when the worker dies on its own (a crash), which must show as its own exit, not as a violation',
  epoll_pwait: 'the event loop waits: depends on whether there was work pending',
  sysinfo: 'V8 sizes its heap from the machine memory: depends on GC heuristics',
  shutdown: 'a connection closed by the server rather than by the client: depends on who closed first',
  fsync: 'SQLite syncs at commit: depends on whether the run wrote at that moment',
  fdatasync: 'SQLite syncs at commit: depends on whether the run wrote at that moment',
  unlink: 'SQLite removes its rollback journal, or the worker its socket at exit',
  ftruncate: 'SQLite rolls back the commit of a writer that died mid-commit (the recording ends with one): the database truncated to its size before',
  geteuid: "SQLite opens a rollback journal it finds (the recording's crashed commit; a writer's commit racing a read) and asks whose it should be",
  openat:
    "a module or file opened on first use (depends on which code ran first); in serve, SQLite opening the rollback journal read-only to see whether it is hot (after a writer died mid-commit, or when a writer's commit ends between a reader's checks)",
  newfstatat: 'a module or file looked up on first use: depends on which code ran first',
  statx: 'a module or file looked up on first use: depends on which code ran first',
  read: 'a file read on first use',
};

/**
 * Calls node's runtime makes whenever its own timing says so, whatever the requests: memory
 * (the GC, malloc), helper threads starting, waiting and ending, signals between V8's threads,
 * the event loop's waits. A recording sees some of them or not depending on timing (a proof
 * run was once killed at a sched_yield that two recordings of the same workload never made),
 * so they are kept in both profiles wherever the template allows them, recorded or not. So are
 * the calls that depend on the worker's age or the host rather than the requests (OpenSSL
 * reseeding from getrandom, time queries where the vDSO cannot answer), and exit_group: a
 * worker that dies on its own while serving must show its own exit status, not a violation.
 * None of them is on the dangerous list; clone stays limited to threads by the seccomp profile.
 */
export const ANYTIME: ReadonlySet<string> = new Set([
  'brk',
  'mmap',
  'munmap',
  'madvise',
  'mprotect',
  'mremap',
  'futex',
  'sched_yield',
  'nanosleep',
  'clock_nanosleep',
  'restart_syscall',
  'rt_sigreturn',
  'tgkill',
  'clone',
  'set_robust_list',
  'rseq',
  'sigaltstack',
  'rt_sigprocmask',
  'gettid',
  'exit',
  'epoll_wait',
  'epoll_pwait',
  'getrandom',
  'clock_gettime',
  'gettimeofday',
  'exit_group',
]);

/**
 * Rare paths of the database engine, kept like ANYTIME. A read-only worker starting a read
 * transaction checks for a hot rollback journal: it stats the -journal file, and when one
 * exists and no writer holds the reserved lock it opens it, read-only, to look at its header.
 * That happens after a writer died mid-commit (then the read fails, the worker must not be
 * killed; every recording ends with such a crash, writer-crash.ts, so the open and what
 * follows it are recorded) and in a narrow race with a writer's commit ending between the
 * stat and the lock check, whose timing no workload controls. noWriteOpens still refuses
 * every open for writing.
 */
export const RARE_PATHS: ReadonlySet<string> = new Set(['openat']);

/** What a recorded profile keeps wherever its template allows it, recorded or not. */
export const KEPT_UNRECORDED: ReadonlySet<string> = new Set([...ANYTIME, ...RARE_PATHS]);

/**
 * What an operator's server's runtime calls on its own timing, kept like ANYTIME in its tiers'
 * profiles wherever the template allows it: besides the memory, thread and signal calls every
 * runtime makes (a JVM's GC returns heap with munmap and madvise when it decides to: a proof
 * run was once killed at a munmap its recording never made), a JVM sizes its compiler and GC
 * threads from the CPUs and memory it sees (sched_getaffinity, sysinfo) every few seconds,
 * names new threads (prctl) and samples its own usage (getrusage), and loads classes on first
 * use (below).
 */
export const SERVER_RUNTIME: ReadonlySet<string> = new Set([
  ...ANYTIME,
  'sched_getaffinity',
  'sysinfo',
  'prctl',
  'getrusage',
  'getpid',
  // A JVM loads a class when it is first used, for as long as it runs: the file calls of that
  // depend on which code ran first, not on the requests (a rollout's write load once met a
  // newfstatat of the write tier that two recordings never made). Read-only opens: a read
  // tier's write opens stay violations, and what it can open is its read-only root.
  'openat',
  'newfstatat',
  'statx',
  'fstat',
  'readlink',
  'read',
  'pread64',
  'lseek',
  'close',
]);

/** Why `name` may come and go between runs of one workload (a known reason, or a hint). */
export function variationReason(name: string): string {
  return REASONS[name] ?? 'not a known timing-dependent call: compare what the two runs did (workload, data, errors)';
}

export function isKnownVariation(name: string): boolean {
  return Object.hasOwn(REASONS, name);
}
