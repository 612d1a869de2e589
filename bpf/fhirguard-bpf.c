/* fhirguard-bpf: the loader the privileged agent drives. One-shot subcommands over state
 * pinned in bpffs: every command opens what it needs by path and exits, so there is no
 * daemon to keep alive, and a crashed or restarted agent finds the programs still attached
 * (pinned links), the policies still enforced and the counters still counting.
 *
 *   fhirguard-bpf [--pin-dir DIR] [--cgroup-root DIR] <command>
 *     load                         load programs, reuse pinned maps, attach and pin links;
 *                                  links of an older build are replaced without a gap
 *     set-policy <cgroup> <spec|-> register/replace the policy of a cgroup v2 directory
 *     phase <cgroup> boot|serve|shutdown
 *     forget <cgroup|cgid>         drop a cgroup's policy, counters, sets and egress rules
 *     counters [--cgroup <cgroup>] JSON: per cgroup, per syscall calls/violations, egress, sets
 *     events                       JSON lines of violations from the ring buffer, until killed
 *     cgid <cgroup>                print a cgroup directory's id
 *     probe                        JSON: what this kernel lets fhirguard use, and why not
 *     unload                       unpin everything: programs detach, maps are freed
 *
 * Defaults: --pin-dir /sys/fs/bpf/fhirguard (env FHIRGUARD_BPF_PIN_DIR), --cgroup-root
 * /sys/fs/cgroup/unified/fhirguard (env FHIRGUARD_CGROUP_ROOT): the connect/sendmsg programs
 * are attached once there and inherited by every worker cgroup below it.
 * Exit status 0 on success, 1 on error (a one-line message on stderr), 2 on usage errors. */
#define _GNU_SOURCE
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
#include "fhirguard.skel.h"

static const char *pin_dir = "/sys/fs/bpf/fhirguard";
static const char *cgroup_root = "/sys/fs/cgroup/unified/fhirguard";
static const char *phase_names[FG_NPHASES] = { "boot", "serve", "shutdown" };
static const char *recset_names[FG_NRECSETS] = { "boot", "serve", "shutdown", "bootSeccomp" };

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fhirguard-bpf: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static char libbpf_log[8192];
static size_t libbpf_log_len;

/* libbpf's messages are kept and shown only when a command fails (the verifier's reason). */
static int keep_libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (getenv("FHIRGUARD_BPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG || libbpf_log_len >= sizeof(libbpf_log) - 1)
		return 0;
	int n = vsnprintf(libbpf_log + libbpf_log_len, sizeof(libbpf_log) - libbpf_log_len, fmt, ap);
	if (n > 0)
		libbpf_log_len += (size_t)n < sizeof(libbpf_log) - libbpf_log_len ? (size_t)n : sizeof(libbpf_log) - libbpf_log_len - 1;
	return 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void pin_path(char *buf, size_t len, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", pin_dir, name) >= len)
		die("pin path too long: %s/%s", pin_dir, name);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

static bool is_fs(const char *path, long magic)
{
	struct statfs s;
	return statfs(path, &s) == 0 && (long)s.f_type == magic;
}

/* bpffs is not mounted at boot on every host: mount it where the pin directory's parent is. */
static void ensure_bpffs(void)
{
	char parent[4096];
	snprintf(parent, sizeof(parent), "%s", pin_dir);
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		die("pin directory must be below a bpffs mount: %s", pin_dir);
	*slash = 0;
	if (is_fs(parent, BPF_FS_MAGIC) || is_fs(pin_dir, BPF_FS_MAGIC))
		return;
	if (mkdir_p(parent, 0700) < 0)
		die("cannot create %s: %s", parent, strerror(errno));
	/* Two loaders starting at once must not both mount: the second bpffs would hide the first
	 * one's pins. Decide under a lock on the (not yet mounted) directory. */
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) != 0)
		die("locking %s: %s", parent, strerror(errno));
	if (!is_fs(parent, BPF_FS_MAGIC) && mount("bpf", parent, "bpf", 0, "mode=0700") != 0)
		die("%s is not a bpffs and mounting one there failed: %s", parent, strerror(errno));
	close(fd);
}

/* The id bpf_get_current_cgroup_id() returns for processes in a cgroup v2 directory: the
 * kernfs node id, read the way the kernel exports it (file handle), not guessed. */
static uint64_t cgroup_id(const char *path)
{
	if (!is_fs(path, CGROUP2_SUPER_MAGIC))
		die("%s is not a cgroup v2 directory (mount | grep cgroup2)", path);
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	int mount_id;
	h.fh.handle_bytes = sizeof(uint64_t);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) != 0) {
		struct stat st;
		if (stat(path, &st) != 0)
			die("%s: %s", path, strerror(errno));
		return st.st_ino;
	}
	uint64_t id;
	memcpy(&id, h.fh.f_handle, sizeof(id));
	return id;
}

/* A cgroup given by path, or by numeric id (a worker whose directory is already gone). */
static uint64_t cgroup_arg(const char *arg)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (*arg && *end == 0 && errno == 0)
		return v;
	return cgroup_id(arg);
}

/* Commands that change pinned state hold an exclusive lock on the pin directory, so two
 * agents (or an agent and an operator) cannot interleave a load, a policy swap or a phase
 * switch. The lock goes with the process. */
static void lock_pin_dir(void)
{
	int fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("%s: %s (run `fhirguard-bpf load` first)", pin_dir, strerror(errno));
	if (flock(fd, LOCK_EX) != 0)
		die("locking %s: %s", pin_dir, strerror(errno));
}

struct maps {
	int policies, counters, recorded, egress, events, stats;
};

static int open_pinned(const char *name)
{
	char p[4096];
	pin_path(p, sizeof(p), name);
	int fd = bpf_obj_get(p);
	if (fd < 0)
		die("%s: %s (run `fhirguard-bpf load` first)", p, strerror(errno));
	return fd;
}

static struct maps open_maps(void)
{
	struct maps m = {
		.policies = open_pinned("fg_policies"),
		.counters = open_pinned("fg_counters"),
		.recorded = open_pinned("fg_recorded"),
		.egress = open_pinned("fg_egress"),
		.events = open_pinned("fg_events"),
		.stats = open_pinned("fg_stats"),
	};
	return m;
}

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();
	if (n <= 0)
		die("cannot count possible CPUs: %s", strerror(-n));
	return n;
}

/* ---------- load / unload ---------- */

enum link_state { LINK_MISSING, LINK_CURRENT, LINK_OUTDATED, LINK_DEFUNCT };

/* A pinned link is current when it is attached (for cgroup links: to the wanted root) and runs
 * the program this build just loaded (same tag: the hash of its instructions). */
static enum link_state pinned_link_state(const char *path, bool cgroup, uint64_t want_cgid, int want_prog_fd)
{
	int fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? LINK_MISSING : LINK_DEFUNCT;
	struct bpf_link_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	enum link_state st = LINK_DEFUNCT;
	/* A cgroup link whose cgroup was removed (or that points at another root) is defunct. */
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && (!cgroup || info.cgroup.cgroup_id == want_cgid)) {
		struct bpf_prog_info have, want;
		uint32_t hl = sizeof(have), wl = sizeof(want);
		memset(&have, 0, sizeof(have));
		memset(&want, 0, sizeof(want));
		int pfd = bpf_prog_get_fd_by_id(info.prog_id);
		st = LINK_OUTDATED;
		if (pfd >= 0 && bpf_obj_get_info_by_fd(pfd, &have, &hl) == 0 &&
		    bpf_obj_get_info_by_fd(want_prog_fd, &want, &wl) == 0 && memcmp(have.tag, want.tag, sizeof(have.tag)) == 0)
			st = LINK_CURRENT;
		if (pfd >= 0)
			close(pfd);
	}
	close(fd);
	return st;
}

/* Attaches the program unless its pinned link is current. A link running an older build is
 * replaced without a gap: the new link is attached before the old pin goes (for a moment both
 * run; their decisions agree on everything the old build decided). */
static void attach_and_pin(struct bpf_program *prog, const char *pin, int cgfd, bool cgroup,
			   uint64_t cgid, FILE *out, bool *first)
{
	char p[4096];
	pin_path(p, sizeof(p), pin);
	enum link_state st = pinned_link_state(p, cgroup, cgid, bpf_program__fd(prog));
	if (st != LINK_CURRENT) {
		struct bpf_link *l = cgroup ? bpf_program__attach_cgroup(prog, cgfd) : bpf_program__attach(prog);
		if (!l)
			die("attaching %s: %s\n%s", bpf_program__name(prog), strerror(errno), libbpf_log);
		if (st != LINK_MISSING && unlink(p) != 0)
			die("cannot replace %s: %s", p, strerror(errno));
		if (bpf_link__pin(l, p) != 0)
			die("pinning %s: %s", p, strerror(errno));
		bpf_link__destroy(l); /* the pin keeps it attached */
	}
	static const char *states[] = { "attached", "reused", "replaced", "replaced" };
	fprintf(out, "%s{\"program\":\"%s\",\"link\":", *first ? "" : ",", bpf_program__name(prog));
	json_str(out, p);
	fprintf(out, ",\"reused\":%s,\"state\":\"%s\"}", st == LINK_CURRENT ? "true" : "false", states[st]);
	*first = false;
}

static int cmd_load(void)
{
	ensure_bpffs();
	int err = mkdir_p(pin_dir, 0700);
	if (err)
		die("cannot create %s: %s", pin_dir, strerror(-err));
	lock_pin_dir();
	err = mkdir_p(cgroup_root, 0755);
	if (err)
		die("cannot create %s: %s", cgroup_root, strerror(-err));
	uint64_t root_id = cgroup_id(cgroup_root);
	int cgfd = open(cgroup_root, O_RDONLY | O_DIRECTORY);
	if (cgfd < 0)
		die("%s: %s", cgroup_root, strerror(errno));

	/* Maps declared LIBBPF_PIN_BY_NAME are reused from pin_dir when pinned (that is how a new
	 * loader keeps the counters and policies), created and pinned otherwise. */
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct fhirguard_bpf *skel = fhirguard_bpf__open_opts(&opts);
	if (!skel)
		die("opening the eBPF object: %s\n%s", strerror(errno), libbpf_log);
	err = fhirguard_bpf__load(skel);
	if (err)
		die("loading the eBPF programs: %s (pinned maps from an older build? run `fhirguard-bpf unload`)\n%s",
		    strerror(-err), libbpf_log);

	printf("{\"pinDir\":");
	json_str(stdout, pin_dir);
	printf(",\"cgroupRoot\":");
	json_str(stdout, cgroup_root);
	printf(",\"cgroupRootId\":\"%llu\",\"links\":[", (unsigned long long)root_id);
	bool first = true;
	attach_and_pin(skel->progs.fg_sys_enter, "link_sys_enter", -1, false, 0, stdout, &first);
	attach_and_pin(skel->progs.fg_connect4, "link_connect4", cgfd, true, root_id, stdout, &first);
	attach_and_pin(skel->progs.fg_connect6, "link_connect6", cgfd, true, root_id, stdout, &first);
	attach_and_pin(skel->progs.fg_sendmsg4, "link_sendmsg4", cgfd, true, root_id, stdout, &first);
	attach_and_pin(skel->progs.fg_sendmsg6, "link_sendmsg6", cgfd, true, root_id, stdout, &first);
	printf("]}\n");
	close(cgfd);
	fhirguard_bpf__destroy(skel);
	return 0;
}

static int cmd_unload(void)
{
	DIR *d = opendir(pin_dir);
	if (!d) {
		if (errno == ENOENT) {
			printf("{\"unloaded\":false,\"reason\":\"nothing pinned\"}\n");
			return 0;
		}
		die("%s: %s", pin_dir, strerror(errno));
	}
	lock_pin_dir();
	/* Links first, so the programs stop before their maps go. */
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(d);
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			bool is_link = strncmp(e->d_name, "link_", 5) == 0;
			if (is_link != (pass == 0))
				continue;
			char p[4096];
			pin_path(p, sizeof(p), e->d_name);
			if (unlink(p) != 0)
				die("unpinning %s: %s", p, strerror(errno));
		}
	}
	closedir(d);
	if (rmdir(pin_dir) != 0)
		die("rmdir %s: %s", pin_dir, strerror(errno));
	printf("{\"unloaded\":true}\n");
	return 0;
}

/* ---------- policies ---------- */

struct egress_rule {
	struct fg_egress_key key;
};

struct spec {
	struct fg_policy pol;
	bool phase_set;
	bool allow_given[FG_NPHASES];
	struct egress_rule *rules;
	size_t nrules, cap;
};

static int phase_index(const char *s)
{
	for (int i = 0; i < FG_NPHASES; i++)
		if (strcmp(s, phase_names[i]) == 0)
			return i;
	return -1;
}

static void set_bit(__u64 *words, unsigned nr)
{
	words[nr / 64] |= 1ULL << (nr % 64);
}

static void parse_egress(struct spec *s, const char *cidr, const char *port_s, uint64_t cgid, int line)
{
	char addr_s[128];
	snprintf(addr_s, sizeof(addr_s), "%s", cidr);
	int plen = -1;
	char *slash = strchr(addr_s, '/');
	if (slash) {
		*slash = 0;
		char *end;
		plen = (int)strtol(slash + 1, &end, 10);
		if (*end || slash[1] == 0)
			die("policy line %d: bad prefix length in %s", line, cidr);
	}
	struct fg_egress_key k;
	memset(&k, 0, sizeof(k));
	int bits;
	struct in_addr a4;
	if (inet_pton(AF_INET, addr_s, &a4) == 1) {
		k.addr[10] = k.addr[11] = 0xff;
		memcpy(&k.addr[12], &a4, 4);
		if (plen < 0)
			plen = 32;
		if (plen > 32)
			die("policy line %d: IPv4 prefix longer than 32 in %s", line, cidr);
		bits = 96 + plen;
	} else if (inet_pton(AF_INET6, addr_s, k.addr) == 1) {
		if (plen < 0)
			plen = 128;
		if (plen > 128)
			die("policy line %d: IPv6 prefix longer than 128 in %s", line, cidr);
		bits = plen;
	} else {
		die("policy line %d: not an IPv4 or IPv6 address: %s", line, addr_s);
	}
	char *end;
	long port = strtol(port_s, &end, 10);
	if (*end || port < 0 || port > 65535)
		die("policy line %d: bad port %s (0 means any port)", line, port_s);
	/* Keep the stored address canonical: host bits past the prefix are zero. */
	for (int i = 0; i < 128; i++)
		if (i >= bits)
			k.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	k.prefixlen = FG_EGRESS_FIXED_BITS + bits;
	k.cgid_lo = (uint32_t)cgid;
	k.cgid_hi = (uint32_t)(cgid >> 32);
	k.port = htons((uint16_t)port);
	if (s->nrules == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->rules = realloc(s->rules, s->cap * sizeof(*s->rules));
		if (!s->rules)
			die("out of memory");
	}
	s->rules[s->nrules++].key = k;
}

/* The policy spec: one directive a line, written by fhirguard's TypeScript client.
 *   action audit|enforce      record 0|1      no-write-opens 0|1     phase boot|serve|shutdown
 *   allow <phase> all | allow <phase> <nr> <nr> ...   (repeatable; a phase never named allows all)
 *   egress none | egress <addr>[/<prefix>] <port>     (any egress line restricts; port 0 = any)
 */
static void parse_spec(FILE *f, uint64_t cgid, struct spec *s)
{
	memset(s, 0, sizeof(*s));
	char buf[65536];
	int line = 0;
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (!strchr(buf, '\n') && !feof(f))
			die("policy line %d too long", line);
		char *save, *w = strtok_r(buf, " \t\r\n", &save);
		if (!w || w[0] == '#')
			continue;
		char *a = strtok_r(NULL, " \t\r\n", &save);
		if (!a)
			die("policy line %d: %s needs an argument", line, w);
		if (strcmp(w, "action") == 0) {
			if (strcmp(a, "audit") == 0)
				s->pol.action = FG_ACTION_AUDIT;
			else if (strcmp(a, "enforce") == 0)
				s->pol.action = FG_ACTION_ENFORCE;
			else
				die("policy line %d: action must be audit or enforce, not %s", line, a);
		} else if (strcmp(w, "record") == 0 || strcmp(w, "no-write-opens") == 0) {
			uint8_t flag = w[0] == 'r' ? FG_F_RECORD : FG_F_NO_WRITE_OPENS;
			if (strcmp(a, "1") == 0)
				s->pol.flags |= flag;
			else if (strcmp(a, "0") != 0)
				die("policy line %d: %s takes 0 or 1", line, w);
		} else if (strcmp(w, "phase") == 0) {
			int ph = phase_index(a);
			if (ph < 0)
				die("policy line %d: unknown phase %s", line, a);
			s->pol.phase = (uint8_t)ph;
			s->phase_set = true;
		} else if (strcmp(w, "allow") == 0) {
			int ph = phase_index(a);
			if (ph < 0)
				die("policy line %d: unknown phase %s", line, a);
			s->allow_given[ph] = true;
			char *t;
			while ((t = strtok_r(NULL, " \t\r\n", &save))) {
				if (strcmp(t, "all") == 0) {
					memset(s->pol.allow[ph], 0xff, sizeof(s->pol.allow[ph]));
					continue;
				}
				char *end;
				long nr = strtol(t, &end, 10);
				if (*end || nr < 0 || nr >= FG_NR_SLOTS)
					die("policy line %d: syscall number out of range: %s", line, t);
				set_bit(s->pol.allow[ph], (unsigned)nr);
			}
		} else if (strcmp(w, "egress") == 0) {
			s->pol.flags |= FG_F_EGRESS;
			if (strcmp(a, "none") == 0)
				continue;
			char *port = strtok_r(NULL, " \t\r\n", &save);
			if (!port)
				die("policy line %d: egress needs an address and a port", line);
			parse_egress(s, a, port, cgid, line);
		} else {
			die("policy line %d: unknown directive %s", line, w);
		}
	}
	for (int ph = 0; ph < FG_NPHASES; ph++)
		if (!s->allow_given[ph])
			memset(s->pol.allow[ph], 0xff, sizeof(s->pol.allow[ph]));
}

static size_t egress_keys_of(int fd, uint64_t cgid, struct fg_egress_key **out)
{
	size_t n = 0, cap = 0;
	struct fg_egress_key *keys = NULL, k, next;
	void *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (next.cgid_lo == (uint32_t)cgid && next.cgid_hi == (uint32_t)(cgid >> 32)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				keys = realloc(keys, cap * sizeof(*keys));
				if (!keys)
					die("out of memory");
			}
			keys[n++] = next;
		}
		k = next;
		prev = &k;
	}
	*out = keys;
	return n;
}

/* A new element of a hash map without preallocation comes from a per-CPU cache that the kernel
 * refills asynchronously (irq_work) with atomic allocations. For fg_counters that is a per-CPU
 * allocation of 8 KiB and more, which often outgrows the per-CPU allocator's pool of populated
 * pages that atomic allocations may use: the refill fails, the cache stays empty until the pool
 * is topped up, and an update made meanwhile fails with ENOMEM although memory is plentiful
 * (about one set-policy in three when they come back to back). Such an ENOMEM is retried. */
static void ensure_zeroed(int fd, const void *key, size_t value_size)
{
	void *zero = calloc(1, value_size);
	if (!zero)
		die("out of memory");
	for (unsigned attempt = 0;; attempt++) {
		if (bpf_map_update_elem(fd, key, zero, BPF_NOEXIST) == 0 || errno == EEXIST)
			break;
		if (errno != ENOMEM || attempt == 12)
			die("creating counters: %s", strerror(errno));
		usleep(1000u << (attempt < 6 ? attempt : 6)); /* 1 ms, doubling to 64 ms: ~0.5 s in all */
	}
	free(zero);
}

static int cmd_set_policy(const char *cg, const char *spec_path)
{
	uint64_t cgid = cgroup_id(cg);
	lock_pin_dir();
	struct maps m = open_maps();
	FILE *f = strcmp(spec_path, "-") == 0 ? stdin : fopen(spec_path, "r");
	if (!f)
		die("%s: %s", spec_path, strerror(errno));
	struct spec s;
	parse_spec(f, cgid, &s);
	if (f != stdin)
		fclose(f);

	struct fg_policy old;
	bool had = bpf_map_lookup_elem(m.policies, &cgid, &old) == 0;
	if (!s.phase_set)
		s.pol.phase = had ? old.phase : FG_PHASE_BOOT;

	/* Everything the policy points at exists before the policy does: the programs only act
	 * on cgroups that have a policy entry. */
	ensure_zeroed(m.counters, &cgid, sizeof(struct fg_counters) * (size_t)ncpus());
	if (s.pol.flags & FG_F_RECORD)
		for (uint32_t ph = 0; ph < FG_NRECSETS; ph++) {
			struct fg_rec_key rk = { .cgid = cgid, .phase = ph };
			ensure_zeroed(m.recorded, &rk, sizeof(struct fg_bitmap));
		}
	/* New egress rules go in before stale ones go out: a connect the old and the new list
	 * both allow is never refused during the swap. */
	struct fg_egress_key *oldkeys;
	size_t nold = egress_keys_of(m.egress, cgid, &oldkeys);
	uint32_t one = 1;
	for (size_t i = 0; i < s.nrules; i++)
		if (bpf_map_update_elem(m.egress, &s.rules[i].key, &one, BPF_ANY) != 0)
			die("adding an egress rule: %s", strerror(errno));
	if (bpf_map_update_elem(m.policies, &cgid, &s.pol, BPF_ANY) != 0)
		die("setting the policy: %s", strerror(errno));
	for (size_t i = 0; i < nold; i++) {
		bool keep = false;
		for (size_t j = 0; j < s.nrules && !keep; j++)
			keep = memcmp(&oldkeys[i], &s.rules[j].key, sizeof(oldkeys[i])) == 0;
		if (!keep && bpf_map_delete_elem(m.egress, &oldkeys[i]) != 0 && errno != ENOENT)
			die("removing an egress rule: %s", strerror(errno));
	}
	printf("{\"cgid\":\"%llu\",\"phase\":\"%s\",\"egressRules\":%zu}\n", (unsigned long long)cgid,
	       phase_names[s.pol.phase], s.nrules);
	free(oldkeys);
	free(s.rules);
	return 0;
}

static int cmd_phase(const char *cg, const char *phase)
{
	uint64_t cgid = cgroup_arg(cg);
	int ph = phase_index(phase);
	if (ph < 0)
		die("unknown phase %s (boot, serve, shutdown)", phase);
	lock_pin_dir();
	struct maps m = open_maps();
	struct fg_policy p;
	if (bpf_map_lookup_elem(m.policies, &cgid, &p) != 0)
		die("cgroup %s (id %llu) has no policy", cg, (unsigned long long)cgid);
	p.phase = (uint8_t)ph;
	if (bpf_map_update_elem(m.policies, &cgid, &p, BPF_EXIST) != 0)
		die("switching phase: %s", strerror(errno));
	printf("{\"cgid\":\"%llu\",\"phase\":\"%s\"}\n", (unsigned long long)cgid, phase_names[ph]);
	return 0;
}

static int cmd_forget(const char *cg)
{
	uint64_t cgid = cgroup_arg(cg);
	lock_pin_dir();
	struct maps m = open_maps();
	bool had = bpf_map_delete_elem(m.policies, &cgid) == 0;
	bpf_map_delete_elem(m.counters, &cgid);
	for (uint32_t ph = 0; ph < FG_NRECSETS; ph++) {
		struct fg_rec_key rk = { .cgid = cgid, .phase = ph };
		bpf_map_delete_elem(m.recorded, &rk);
	}
	struct fg_egress_key *keys;
	size_t n = egress_keys_of(m.egress, cgid, &keys);
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(m.egress, &keys[i]);
	free(keys);
	printf("{\"cgid\":\"%llu\",\"forgotten\":%s}\n", (unsigned long long)cgid, had ? "true" : "false");
	return 0;
}

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

static int cmd_counters(const char *only)
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

static int cmd_events(void)
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

/* ---------- probe ---------- */

static void probe_field(bool *first, const char *name, bool ok, const char *why)
{
	printf("%s\"%s\":{\"ok\":%s", *first ? "" : ",", name, ok ? "true" : "false");
	if (!ok && why) {
		printf(",\"reason\":");
		json_str(stdout, why);
	}
	putchar('}');
	*first = false;
}

static bool cap_effective(int cap)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long caps = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	if (f)
		fclose(f);
	return caps & (1ULL << cap);
}

static bool cgroup2_mount(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		char mnt[2048];
		/* fields: id parent maj:min root mountpoint ... - fstype source opts */
		if (sep && strncmp(sep + 3, "cgroup2 ", 8) == 0 && sscanf(line, "%*s %*s %*s %*s %2047s", mnt) == 1) {
			snprintf(out, len, "%s", mnt);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* A securityfs file's first line; securityfs is mounted on a private temporary directory for
 * the read when the host has it nowhere (the probe leaves no mount behind). */
static bool read_securityfs(const char *name, char *out, size_t len)
{
	char path[512], dir[] = "/tmp/fhirguard-securityfs-XXXXXX";
	bool mounted = false;
	snprintf(path, sizeof(path), "/sys/kernel/security/%s", name);
	if (access(path, R_OK) != 0) {
		if (!mkdtemp(dir))
			return false;
		if (mount("securityfs", dir, "securityfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
			rmdir(dir);
			return false;
		}
		mounted = true;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	}
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(out, (int)len, f);
	if (f)
		fclose(f);
	if (ok)
		out[strcspn(out, "\n")] = 0;
	if (mounted) {
		umount2(dir, MNT_DETACH);
		rmdir(dir);
	}
	return ok;
}

static void probe_prog(bool *first, const char *name, enum bpf_prog_type t, const char *extra_why)
{
	int r = libbpf_probe_bpf_prog_type(t, NULL);
	char why[256];
	snprintf(why, sizeof(why), "%s%s%s", r < 0 ? strerror(-r) : "the kernel refuses this program type",
		 extra_why ? "; " : "", extra_why ? extra_why : "");
	probe_field(first, name, r == 1, why);
}

static int cmd_probe(void)
{
	bool first = true;
	char why[512];
	char lsms[256] = "", lockdown[256] = "";
	bool have_lsms = read_securityfs("lsm", lsms, sizeof(lsms));
	read_securityfs("lockdown", lockdown, sizeof(lockdown));
	printf("{\"euid\":%u,\"activeLsms\":", geteuid());
	json_str(stdout, lsms);
	printf(",\"lockdown\":");
	json_str(stdout, lockdown);
	putchar(',');
	printf("\"capabilities\":{\"sysAdmin\":%s,\"bpf\":%s,\"perfmon\":%s,\"netAdmin\":%s},",
	       cap_effective(21) ? "true" : "false", cap_effective(39) ? "true" : "false",
	       cap_effective(38) ? "true" : "false", cap_effective(12) ? "true" : "false");
	printf("\"checks\":{");

	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 4, 1, NULL);
	snprintf(why, sizeof(why), "bpf(BPF_MAP_CREATE) failed: %s", strerror(errno));
	probe_field(&first, "bpfSyscall", fd >= 0, why);
	if (fd >= 0)
		close(fd);

	probe_field(&first, "btf", access("/sys/kernel/btf/vmlinux", R_OK) == 0,
		    "/sys/kernel/btf/vmlinux is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF, CO-RE programs cannot load");

	bool bpffs = is_fs("/sys/fs/bpf", BPF_FS_MAGIC);
	probe_field(&first, "bpffs", bpffs, "/sys/fs/bpf is not a bpffs mount (`fhirguard-bpf load` mounts it)");

	char cg2[2048] = "";
	bool have_cg2 = cgroup2_mount(cg2, sizeof(cg2));
	printf(",\"cgroup2\":{\"ok\":%s,\"mount\":", have_cg2 ? "true" : "false");
	json_str(stdout, cg2);
	if (!have_cg2)
		printf(",\"reason\":\"no cgroup2 mount: per-cgroup policies and connect hooks need the v2 hierarchy\"");
	putchar('}');

	probe_prog(&first, "rawTracepoint", BPF_PROG_TYPE_RAW_TRACEPOINT, NULL);
	probe_prog(&first, "tracepoint", BPF_PROG_TYPE_TRACEPOINT, NULL);
	probe_prog(&first, "cgroupSockAddr", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL);

	char lsm_why[600];
	if (!have_lsms)
		snprintf(lsm_why, sizeof(lsm_why), "the active LSM list could not be read (securityfs)");
	else if (!strstr(lsms, "bpf"))
		snprintf(lsm_why, sizeof(lsm_why), "\"bpf\" is not among the active LSMs (%s): boot with lsm=...,bpf", lsms);
	else
		snprintf(lsm_why, sizeof(lsm_why), "bpf is an active LSM (%s) but the kernel refuses to load LSM programs%s%s",
			 lsms, lockdown[0] ? "; lockdown: " : "", lockdown);
	probe_prog(&first, "lsm", BPF_PROG_TYPE_LSM, lsm_why);
	probe_prog(&first, "tracing", BPF_PROG_TYPE_TRACING, "fentry/fexit/tp_btf programs");


	int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_FUNC_send_signal, NULL);
	snprintf(why, sizeof(why), "%s", r < 0 ? strerror(-r) : "bpf_send_signal is not available to raw tracepoints");
	probe_field(&first, "sendSignal", r == 1, why);
	r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);
	snprintf(why, sizeof(why), "%s", r < 0 ? strerror(-r) : "no BPF ring buffer (Linux < 5.8)");
	probe_field(&first, "ringbuf", r == 1, why);

	/* The decisive check: fhirguard's own programs through the verifier (loaded, never
	 * attached, freed on exit), without touching any pinned state. */
	struct fhirguard_bpf *skel = fhirguard_bpf__open();
	int err = skel ? 0 : -errno;
	if (skel) {
		struct bpf_map *map;
		bpf_object__for_each_map(map, skel->obj) bpf_map__set_pin_path(map, NULL);
		err = fhirguard_bpf__load(skel);
		fhirguard_bpf__destroy(skel);
	}
	snprintf(why, sizeof(why), "loading fhirguard.bpf.o failed: %s. %.400s", strerror(-err), libbpf_log);
	probe_field(&first, "programs", err == 0, why);
	printf("}}\n");
	return 0;
}

static void usage(void)
{
	fputs("usage: fhirguard-bpf [--pin-dir DIR] [--cgroup-root DIR] "
	      "load|unload|set-policy <cgroup> <spec|->|phase <cgroup> boot|serve|shutdown|"
	      "forget <cgroup|cgid>|counters [--cgroup <cgroup>]|events|cgid <cgroup>|probe\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (getenv("FHIRGUARD_BPF_PIN_DIR"))
		pin_dir = getenv("FHIRGUARD_BPF_PIN_DIR");
	if (getenv("FHIRGUARD_CGROUP_ROOT"))
		cgroup_root = getenv("FHIRGUARD_CGROUP_ROOT");
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--pin-dir") == 0)
			pin_dir = argv[i + 1];
		else if (strcmp(argv[i], "--cgroup-root") == 0)
			cgroup_root = argv[i + 1];
		else
			usage();
	}
	if (i >= argc)
		usage();
	libbpf_set_print(keep_libbpf_log);
	const char *cmd = argv[i];
	int rest = argc - i - 1;
	char **a = argv + i + 1;
	if (strcmp(cmd, "load") == 0 && rest == 0)
		return cmd_load();
	if (strcmp(cmd, "unload") == 0 && rest == 0)
		return cmd_unload();
	if (strcmp(cmd, "set-policy") == 0 && rest == 2)
		return cmd_set_policy(a[0], a[1]);
	if (strcmp(cmd, "phase") == 0 && rest == 2)
		return cmd_phase(a[0], a[1]);
	if (strcmp(cmd, "forget") == 0 && rest == 1)
		return cmd_forget(a[0]);
	if (strcmp(cmd, "counters") == 0 && rest == 0)
		return cmd_counters(NULL);
	if (strcmp(cmd, "counters") == 0 && rest == 2 && strcmp(a[0], "--cgroup") == 0)
		return cmd_counters(a[1]);
	if (strcmp(cmd, "events") == 0 && rest == 0)
		return cmd_events();
	if (strcmp(cmd, "cgid") == 0 && rest == 1) {
		printf("%llu\n", (unsigned long long)cgroup_id(a[0]));
		return 0;
	}
	if (strcmp(cmd, "probe") == 0 && rest == 0)
		return cmd_probe();
	usage();
	return 2;
}
