/* probe: what this kernel lets fhirguard use, and why not, as JSON. */
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

int cmd_probe(void)
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
	int err = try_load_programs();
	snprintf(why, sizeof(why), "loading fhirguard.bpf.o failed: %s. %.400s", strerror(-err), libbpf_log);
	probe_field(&first, "programs", err == 0, why);
	printf("}}\n");
	return 0;
}
