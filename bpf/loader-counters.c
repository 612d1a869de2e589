/* counters and events: the pinned maps printed as JSON for the agent. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fhirguard.h"
#include "loader.h"

/* ---------- counters ---------- */

static void print_cgroup(FILE *o, struct maps *m, uint64_t cgid, struct fg_counters *percpu, int n)
{
	struct fg_policy p;
	bool has_policy = bpf_map_lookup_elem(m->policies, &cgid, &p) == 0;
	fprintf(o, "{\"cgid\":\"%llu\",\"policy\":", (unsigned long long)cgid);
	if (has_policy)
		fprintf(o, "{\"action\":\"%s\",\"phase\":\"%s\",\"record\":%s,\"noWriteOpens\":%s,\"egress\":%s}",
			p.action == FG_ACTION_ENFORCE ? "enforce" : "audit",
			p.phase < FG_NPHASES ? phase_names[p.phase] : "serve",
			p.flags & FG_F_RECORD ? "true" : "false", p.flags & FG_F_NO_WRITE_OPENS ? "true" : "false",
			p.flags & FG_F_EGRESS ? "true" : "false");
	else
		fputs("null", o);

	uint64_t denied = 0, allowed = 0;
	fputs(",\"syscalls\":{", o);
	bool first = true;
	for (int nr = 0; nr < FG_NR_SLOTS; nr++) {
		uint64_t calls = 0, viol = 0;
		for (int c = 0; c < n && percpu; c++) {
			calls += percpu[c].calls[nr];
			viol += percpu[c].violations[nr];
		}
		if (!calls && !viol)
			continue;
		fprintf(o, "%s\"%d\":{\"calls\":%llu,\"violations\":%llu}", first ? "" : ",", nr,
			(unsigned long long)calls, (unsigned long long)viol);
		first = false;
	}
	for (int c = 0; c < n && percpu; c++) {
		denied += percpu[c].egress_denied;
		allowed += percpu[c].egress_allowed;
	}
	fprintf(o, "},\"egressDenied\":%llu,\"egressAllowed\":%llu,\"recorded\":", (unsigned long long)denied,
		(unsigned long long)allowed);

	bool any = false;
	for (uint32_t ph = 0; ph < FG_NRECSETS; ph++) {
		struct fg_rec_key rk = { .cgid = cgid, .phase = ph };
		struct fg_bitmap b;
		if (bpf_map_lookup_elem(m->recorded, &rk, &b) != 0)
			continue;
		fprintf(o, "%s\"%s\":[", any ? "," : "{", recset_names[ph]);
		any = true;
		bool f1 = true;
		for (int nr = 0; nr < FG_NR_SLOTS; nr++)
			if (b.bits[nr / 64] & (1ULL << (nr % 64))) {
				fprintf(o, "%s%d", f1 ? "" : ",", nr);
				f1 = false;
			}
		fputc(']', o);
	}
	fputs(any ? "}}" : "null}", o);
}

int cmd_counters(const char *only)
{
	struct maps m = open_maps();
	int n = ncpus();
	uint64_t want = only ? cgroup_arg(only) : 0;
	struct fg_counters *percpu = calloc((size_t)n, sizeof(*percpu));
	if (!percpu)
		die("out of memory");

	uint64_t dropped = 0;
	uint32_t k = FG_STAT_EVENTS_DROPPED;
	uint64_t *stat = calloc((size_t)n, sizeof(uint64_t));
	if (stat && bpf_map_lookup_elem(m.stats, &k, stat) == 0)
		for (int c = 0; c < n; c++)
			dropped += stat[c];
	free(stat);

	printf("{\"eventsDropped\":%llu,\"cgroups\":[", (unsigned long long)dropped);
	bool first = true;
	/* Every registered cgroup has a counters entry; the policy map alone would miss cgroups
	 * whose policy was dropped but whose counters are still wanted. */
	uint64_t key, next;
	void *prev = NULL;
	while (bpf_map_get_next_key(m.counters, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (only && key != want)
			continue;
		if (bpf_map_lookup_elem(m.counters, &key, percpu) != 0)
			continue; /* forgotten meanwhile */
		if (!first)
			putchar(',');
		print_cgroup(stdout, &m, key, percpu, n);
		first = false;
	}
	printf("]}\n");
	free(percpu);
	return 0;
}

/* ---------- events ---------- */

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int print_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size < sizeof(struct fg_event))
		return 0;
	const struct fg_event *e = data;
	static const char *kinds[] = { "?", "syscall", "write-open", "egress" };
	char comm[17];
	memcpy(comm, e->comm, 16);
	comm[16] = 0;
	printf("{\"cgid\":\"%llu\",\"pid\":%u,\"tid\":%u,\"comm\":", (unsigned long long)e->cgid, e->pid, e->tid);
	json_str(stdout, comm);
	printf(",\"kind\":\"%s\",\"action\":\"%s\",\"phase\":\"%s\"", kinds[e->kind <= 3 ? e->kind : 0],
	       e->action == FG_ACTION_ENFORCE ? "enforce" : "audit", e->phase < FG_NPHASES ? phase_names[e->phase] : "?");
	if (e->kind == FG_EV_EGRESS) {
		char a[INET6_ADDRSTRLEN];
		if (e->family == 4)
			inet_ntop(AF_INET, &e->addr[12], a, sizeof(a));
		else
			inet_ntop(AF_INET6, e->addr, a, sizeof(a));
		printf(",\"family\":%u,\"addr\":\"%s\",\"port\":%u}\n", e->family, a, e->port);
	} else {
		printf(",\"nr\":%u,\"openFlags\":%llu}\n", e->nr, (unsigned long long)e->open_flags);
	}
	if (fflush(stdout) != 0)
		stop = 1; /* the reader went away */
	return 0;
}

int cmd_events(void)
{
	struct maps m = open_maps();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, on_signal);
	struct ring_buffer *rb = ring_buffer__new(m.events, print_event, NULL, NULL);
	if (!rb)
		die("opening the event ring buffer: %s", strerror(errno));
	printf("{\"ready\":true}\n");
	fflush(stdout);
	while (!stop) {
		int err = ring_buffer__poll(rb, 200);
		if (err < 0 && err != -EINTR)
			die("reading events: %s", strerror(-err));
	}
	ring_buffer__free(rb);
	return 0;
}
