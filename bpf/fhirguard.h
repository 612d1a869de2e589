/* Structs and constants shared by fhirguard's eBPF programs (fhirguard.bpf.c) and their
 * loader (fhirguard-bpf.c). Every map is keyed by cgroup id: the inode of a worker's cgroup
 * v2 directory, which is what bpf_get_current_cgroup_id() returns for its processes. */
#ifndef FHIRGUARD_H
#define FHIRGUARD_H

/* Syscall slots: x86_64 numbers 0..510 have their own slot; slot 511 takes every call that
 * has no x86_64 number (int 0x80 / 32-bit compat calls, x32 calls, numbers past the table),
 * so a 64-bit worker cannot slip past the allow set through the 32-bit entry point. */
#define FG_NR_SLOTS 512
#define FG_NR_OTHER 511
#define FG_WORDS (FG_NR_SLOTS / 64)

enum fg_phase { FG_PHASE_BOOT = 0, FG_PHASE_SERVE = 1, FG_PHASE_SHUTDOWN = 2, FG_NPHASES = 3 };

/* What a violation does. Recording is a flag, not an action, so it can run beside either. */
enum fg_action { FG_ACTION_AUDIT = 0, FG_ACTION_ENFORCE = 1 };

#define FG_F_RECORD (1u << 0)         /* mark every syscall into the (cgroup, phase) set */
#define FG_F_NO_WRITE_OPENS (1u << 1) /* serve phase: open/openat/openat2 with write flags, creat */
#define FG_F_EGRESS (1u << 2)         /* inet connect/sendmsg only to the egress allow-list */

/* Value of fg_policies (key: __u64 cgroup id). One allow set per phase: switching phase is a
 * one-byte change of an existing entry, so the agent tightens a worker with one map update. */
struct fg_policy {
	__u64 allow[FG_NPHASES][FG_WORDS];
	__u8 action;
	__u8 phase;
	__u8 flags;
	__u8 pad[5];
};

/* Value of fg_counters (per-CPU hash, key: __u64 cgroup id): user space sums the CPUs. */
struct fg_counters {
	__u64 calls[FG_NR_SLOTS];
	__u64 violations[FG_NR_SLOTS];
	__u64 egress_denied;
	__u64 egress_allowed;
};

/* Recorded sets per cgroup: one per phase, plus the boot-phase calls made while the caller
 * already had a seccomp filter. A container runtime sets up the container from inside its
 * cgroup before it installs the filter (mounts, pivot_root, ...): those calls are in "boot" but
 * not in "bootSeccomp", which is what the seccomp profile itself must allow for start-up. */
#define FG_REC_BOOT_SECCOMP 3
#define FG_NRECSETS 4

/* Key of fg_recorded (phase: enum fg_phase or FG_REC_BOOT_SECCOMP); the value is a struct
 * fg_bitmap. */
struct fg_rec_key {
	__u64 cgid;
	__u32 phase;
	__u32 pad;
};

struct fg_bitmap {
	__u64 bits[FG_WORDS];
};

/* Key of the fg_egress LPM trie. The cgroup id, the port (network order; 0 = any port) and
 * a zero pad are always matched whole, so an entry's prefixlen is FG_EGRESS_FIXED_BITS plus
 * its address prefix; IPv4 is stored as the IPv4-mapped IPv6 address (::ffff:a.b.c.d). One
 * lookup with the exact port and one with port 0 decide a connect. */
struct fg_egress_key {
	__u32 prefixlen;
	__u32 cgid_lo;
	__u32 cgid_hi;
	__u16 port;
	__u16 zero;
	__u8 addr[16];
};
#define FG_EGRESS_FIXED_BITS 96

enum fg_event_kind { FG_EV_SYSCALL = 1, FG_EV_WRITE_OPEN = 2, FG_EV_EGRESS = 3 };

/* Ring buffer record for each violation (syscall outside the allow set, write open, egress
 * denial), so the agent can log who did what. */
struct fg_event {
	__u64 cgid;
	__u64 open_flags;
	__u32 pid;
	__u32 tid;
	__u32 nr;      /* syscall slot; for egress: 0 */
	__u8 kind;     /* enum fg_event_kind */
	__u8 action;   /* enum fg_action at the time */
	__u8 phase;
	__u8 family;   /* egress: 4 or 6 */
	__u16 port;    /* egress: host order */
	__u16 pad;
	__u8 addr[16]; /* egress: IPv6 or IPv4-mapped */
	char comm[16];
};

/* Index of the global per-CPU statistics in fg_stats. */
enum fg_stat { FG_STAT_EVENTS_DROPPED = 0, FG_NSTATS = 4 };

#define FG_MAX_CGROUPS 4096
#define FG_MAX_EGRESS_RULES 16384

#endif
