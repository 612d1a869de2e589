/* fhirguard-bpf (this file, loader.c, and loader-*.c): the loader the privileged agent drives. One-shot subcommands over state
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
#include "loader.h"

const char *pin_dir = "/sys/fs/bpf/fhirguard";
const char *cgroup_root = "/sys/fs/cgroup/unified/fhirguard";
const char *phase_names[FG_NPHASES] = { "boot", "serve", "shutdown" };
const char *recset_names[FG_NRECSETS] = { "boot", "serve", "shutdown", "bootSeccomp" };

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fhirguard-bpf: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

char libbpf_log[8192];
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

void json_str(FILE *f, const char *s)
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

void pin_path(char *buf, size_t len, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", pin_dir, name) >= len)
		die("pin path too long: %s/%s", pin_dir, name);
}

int mkdir_p(const char *path, mode_t mode)
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

bool is_fs(const char *path, long magic)
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
uint64_t cgroup_id(const char *path)
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
uint64_t cgroup_arg(const char *arg)
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
void lock_pin_dir(void)
{
	int fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("%s: %s (run `fhirguard-bpf load` first)", pin_dir, strerror(errno));
	if (flock(fd, LOCK_EX) != 0)
		die("locking %s: %s", pin_dir, strerror(errno));
}


int open_pinned(const char *name)
{
	char p[4096];
	pin_path(p, sizeof(p), name);
	int fd = bpf_obj_get(p);
	if (fd < 0)
		die("%s: %s (run `fhirguard-bpf load` first)", p, strerror(errno));
	return fd;
}

struct maps open_maps(void)
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

int ncpus(void)
{
	int n = libbpf_num_possible_cpus();
	if (n <= 0)
		die("cannot count possible CPUs: %s", strerror(-n));
	return n;
}

/* ---------- load / unload ---------- */

/* The programs through the verifier, loaded and freed, nothing pinned or attached: 0, or
 * -errno (libbpf_log says why). The skeleton lives in this file alone: it embeds the object. */
int try_load_programs(void)
{
	struct fhirguard_bpf *skel = fhirguard_bpf__open();
	int err = skel ? 0 : -errno;
	if (skel) {
		struct bpf_map *map;
		bpf_object__for_each_map(map, skel->obj) bpf_map__set_pin_path(map, NULL);
		err = fhirguard_bpf__load(skel);
		fhirguard_bpf__destroy(skel);
	}
	return err;
}

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

int cmd_load(void)
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

int cmd_unload(void)
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

int cmd_set_policy(const char *cg, const char *spec_path)
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

int cmd_phase(const char *cg, const char *phase)
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

int cmd_forget(const char *cg)
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
