// SPDX-License-Identifier: GPL-2.0
/* fhirguard's kernel side: per-cgroup syscall policy (audit | enforce by SIGKILL), counters
 * and recorder on raw_tracepoint/sys_enter, and the per-cgroup egress allow-list on the
 * cgroup connect/sendmsg hooks. Every program looks the calling cgroup up first: a process
 * outside fhirguard's workers costs one hash lookup. (GPL: bpf_send_signal and the ring
 * buffer are GPL-only helpers.) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "fhirguard.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define TS_COMPAT 0x0002
#define X32_SYSCALL_BIT 0x40000000

/* x86_64 numbers of the opening syscalls the read tier's "no write opens" looks at. */
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437
#define O_WRITE_FLAGS (01 | 02 | 0100 | 01000 | 02000) /* O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND */

/* Maps that are updated from user space one entry at a time and rarely are not
 * preallocated: an update then swaps the element under RCU, so a program never reads a
 * half-written policy. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct fg_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fg_policies SEC(".maps");

/* Per-CPU: every call of a policed cgroup increments one slot without atomics or cache-line
 * bouncing. Entries are created by the loader together with the policy and outlive policy
 * updates; no preallocation, so unused capacity costs no memory (8 KiB per cgroup per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, FG_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct fg_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fg_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FG_MAX_CGROUPS * FG_NPHASES); /* FG_NRECSETS per recording cgroup */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fg_rec_key);
	__type(value, struct fg_bitmap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fg_recorded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FG_MAX_EGRESS_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fg_egress_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fg_egress SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fg_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FG_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fg_stats SEC(".maps");

static __always_inline void count_dropped(void)
{
	__u32 k = FG_STAT_EVENTS_DROPPED;
	__u64 *v = bpf_map_lookup_elem(&fg_stats, &k);
	if (v)
		*v += 1;
}

/* The event carries what the agent logs; a full ring buffer drops the event (counted), never
 * the decision. */
static __always_inline struct fg_event *new_event(__u64 cgid, __u8 kind, const struct fg_policy *p)
{
	struct fg_event *e = bpf_ringbuf_reserve(&fg_events, sizeof(*e), 0);
	if (!e) {
		count_dropped();
		return 0;
	}
	__u64 pt = bpf_get_current_pid_tgid();
	__builtin_memset(e, 0, sizeof(*e));
	e->cgid = cgid;
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->kind = kind;
	e->action = p->action;
	e->phase = p->phase;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

/* Events are for the log, counters for the totals: only the 1st, 2nd, 4th, 8th... violation of
 * a kind (per cgroup and CPU) is sent, so an audit-mode worker hammering one syscall cannot
 * flood the ring buffer or the agent's log, and the log still shows it going on. */
static __always_inline bool log_worthy(__u64 n)
{
	return (n & (n - 1)) == 0;
}

/* The flags a write open would carry, or 0; creat always writes. openat2's flags live in user
 * memory (struct open_how), read here before the kernel copies them. */
static __always_inline __u64 write_open_flags(__u32 nr, struct pt_regs *regs)
{
	__u64 flags = 0;
	if (nr == NR_creat)
		return 01 | 0100 | 01000;
	if (nr == NR_open) {
		flags = BPF_CORE_READ(regs, si); /* open(path, flags, mode) */
	} else if (nr == NR_openat) {
		flags = BPF_CORE_READ(regs, dx); /* openat(dirfd, path, flags, mode) */
	} else if (nr == NR_openat2) {
		/* openat2(dirfd, path, how, size): how is the third argument. */
		const void *how = (const void *)BPF_CORE_READ(regs, dx);
		if (bpf_probe_read_user(&flags, sizeof(flags), how) != 0)
			return 0; /* the kernel's own copy will fail with EFAULT too */
	} else {
		return 0;
	}
	return flags & O_WRITE_FLAGS;
}

static __always_inline void record(__u64 cgid, __u32 set, __u32 word, __u64 bit)
{
	struct fg_rec_key rk = { .cgid = cgid, .phase = set };
	struct fg_bitmap *b = bpf_map_lookup_elem(&fg_recorded, &rk);
	/* Read before the atomic OR: after the first few calls every bit a worker uses is set and
	 * the shared cache line is only read. */
	if (b && !(b->bits[word & (FG_WORDS - 1)] & bit))
		__sync_fetch_and_or(&b->bits[word & (FG_WORDS - 1)], bit);
}

SEC("raw_tracepoint/sys_enter")
int fg_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct fg_policy *p = bpf_map_lookup_elem(&fg_policies, &cgid);
	if (!p)
		return 0;

	long id = (long)ctx->args[1];
	__u32 nr = FG_NR_OTHER;
	if (id >= 0 && id < FG_NR_OTHER) {
		struct task_struct *task = bpf_get_current_task_btf();
		/* A 64-bit process entering through int 0x80 passes 32-bit numbers: never read them
		 * as x86_64 ones. */
		if (!(task->thread_info.status & TS_COMPAT))
			nr = (__u32)id;
	}
	nr &= FG_NR_SLOTS - 1;

	__u32 phase = p->phase;
	if (phase >= FG_NPHASES)
		phase = FG_PHASE_SERVE;
	__u8 flags = p->flags;
	__u32 word = nr >> 6;
	__u64 bit = 1ULL << (nr & 63);
	__u8 kind = 0;
	__u64 open_flags = 0;

	if (!(p->allow[phase][word & (FG_WORDS - 1)] & bit)) {
		kind = FG_EV_SYSCALL;
	} else if ((flags & FG_F_NO_WRITE_OPENS) && phase == FG_PHASE_SERVE) {
		open_flags = write_open_flags(nr, (struct pt_regs *)ctx->args[0]);
		if (open_flags)
			kind = FG_EV_WRITE_OPEN;
	}

	struct fg_counters *c = bpf_map_lookup_elem(&fg_counters, &cgid);
	__u64 nviol = 1;
	if (c) {
		c->calls[nr] += 1;
		if (kind)
			nviol = c->violations[nr] += 1;
	}

	if (flags & FG_F_RECORD) {
		record(cgid, phase, word, bit);
		if (phase == FG_PHASE_BOOT && bpf_get_current_task_btf()->seccomp.mode != 0)
			record(cgid, FG_REC_BOOT_SECCOMP, word, bit);
	}

	if (!kind)
		return 0;
	struct fg_event *e = log_worthy(nviol) ? new_event(cgid, kind, p) : 0;
	if (e) {
		e->nr = nr;
		e->open_flags = open_flags;
		bpf_ringbuf_submit(e, 0);
	}
	/* SIGKILL is queued for the whole process now; see the loader's README section for what
	 * the current syscall may still do before the process dies. */
	if (p->action == FG_ACTION_ENFORCE)
		bpf_send_signal(SIGKILL);
	return 0;
}

/* Egress: 1 lets the connect/sendmsg proceed, 0 fails it with EPERM. Cgroups without a policy,
 * or whose policy does not restrict egress, are let through. */
static __always_inline int egress_check(__u64 cgid, const __u8 addr[16], __u16 port_be, __u8 family)
{
	struct fg_policy *p = bpf_map_lookup_elem(&fg_policies, &cgid);
	if (!p || !(p->flags & FG_F_EGRESS))
		return 1;

	struct fg_egress_key k = {};
	k.prefixlen = FG_EGRESS_FIXED_BITS + 128;
	k.cgid_lo = (__u32)cgid;
	k.cgid_hi = (__u32)(cgid >> 32);
	k.port = port_be;
	__builtin_memcpy(k.addr, addr, 16);
	int allowed = bpf_map_lookup_elem(&fg_egress, &k) != 0;
	if (!allowed) {
		k.port = 0;
		allowed = bpf_map_lookup_elem(&fg_egress, &k) != 0;
	}

	struct fg_counters *c = bpf_map_lookup_elem(&fg_counters, &cgid);
	if (allowed) {
		if (c)
			c->egress_allowed += 1;
		return 1;
	}
	__u64 ndenied = 1;
	if (c)
		ndenied = c->egress_denied += 1;
	struct fg_event *e = log_worthy(ndenied) ? new_event(cgid, FG_EV_EGRESS, p) : 0;
	if (e) {
		e->family = family;
		e->port = bpf_ntohs(port_be);
		__builtin_memcpy(e->addr, addr, 16);
		bpf_ringbuf_submit(e, 0);
	}
	return p->action == FG_ACTION_ENFORCE ? 0 : 1;
}

static __always_inline int check4(struct bpf_sock_addr *ctx)
{
	__u8 addr[16] = {};
	__u32 ip = ctx->user_ip4;
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(&addr[12], &ip, 4);
	return egress_check(bpf_get_current_cgroup_id(), addr, (__u16)ctx->user_port, 4);
}

static __always_inline int check6(struct bpf_sock_addr *ctx)
{
	__u8 addr[16];
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
	__builtin_memcpy(&addr[0], &w0, 4);
	__builtin_memcpy(&addr[4], &w1, 4);
	__builtin_memcpy(&addr[8], &w2, 4);
	__builtin_memcpy(&addr[12], &w3, 4);
	return egress_check(bpf_get_current_cgroup_id(), addr, (__u16)ctx->user_port, 6);
}

SEC("cgroup/connect4")
int fg_connect4(struct bpf_sock_addr *ctx) { return check4(ctx); }

SEC("cgroup/connect6")
int fg_connect6(struct bpf_sock_addr *ctx) { return check6(ctx); }

/* Unconnected UDP (sendto with an address) never passes connect: same list. */
SEC("cgroup/sendmsg4")
int fg_sendmsg4(struct bpf_sock_addr *ctx) { return check4(ctx); }

SEC("cgroup/sendmsg6")
int fg_sendmsg6(struct bpf_sock_addr *ctx) { return check6(ctx); }
