/* fhirguard's attack battery: `attack [--wait] <name>[=<arg>]...`. Tries each attack in turn,
 * one thing each, and prints one line per attack: `<name> ok` when it succeeded or
 * `<name> errno=<NAME>` when the kernel refused it; exits 0. A process killed by the eBPF
 * policy prints nothing more (run one attack per process where a kill is expected).
 * With --wait it first prints `waiting` and reads one line from stdin, so the caller can
 * switch the container to its serve phase after the program's own start-up (dynamic
 * loading) and before the attack. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case ENOENT: return "ENOENT";
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENETUNREACH: return "ENETUNREACH";
	case EBADF: return "EBADF";
	case EEXIST: return "EEXIST";
	case ESRCH: return "ESRCH";
	default: return "OTHER";
	}
}

static int report(const char *name, long rc)
{
	if (rc < 0)
		printf("%s errno=%s\n", name, errname(errno));
	else
		printf("%s ok\n", name);
	fflush(stdout);
	return 0;
}

static int attack(const char *name, const char *arg);

int main(int argc, char **argv)
{
	int i = 1;
	if (i < argc && strcmp(argv[i], "--wait") == 0) {
		char line[16];
		i++;
		printf("waiting\n");
		fflush(stdout);
		if (read(0, line, sizeof line) <= 0)
			return 2;
	}
	if (i >= argc)
		return 2;
	for (; i < argc; i++) {
		char name[256];
		snprintf(name, sizeof name, "%s", argv[i]);
		char *eq = strchr(name, '=');
		const char *arg = "";
		if (eq) {
			*eq = 0;
			arg = argv[i] + (eq - name) + 1;
		}
		if (attack(name, arg) != 0)
			return 2;
	}
	return 0;
}


static int attack(const char *name, const char *arg)
{
	if (!strcmp(name, "exec-sh")) {
		char *av[] = { "/bin/sh", "-c", "echo shell", NULL };
		execv("/bin/sh", av);
		return report(name, -1);
	}
	if (!strcmp(name, "open-rdwr")) /* arg: a file; O_RDWR without create */
		return report(name, open(arg, O_RDWR));
	if (!strcmp(name, "open-wronly")) /* the exec-FIFO shape runc needs: O_WRONLY|O_CLOEXEC */
		return report(name, open(arg, O_WRONLY | O_CLOEXEC));
	if (!strcmp(name, "create")) /* arg: a new file path */
		return report(name, open(arg, O_RDWR | O_CREAT | O_EXCL, 0600));
	if (!strcmp(name, "unlink"))
		return report(name, unlink(arg));
	if (!strcmp(name, "rename")) { /* arg: a file; renamed to itself + ".moved" */
		char to[4096];
		snprintf(to, sizeof to, "%s.moved", arg);
		return report(name, rename(arg, to));
	}
	if (!strcmp(name, "connect")) { /* arg: a loopback port */
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			return report(name, -1);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(arg)) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return report(name, connect(s, (struct sockaddr *)&a, sizeof a));
	}
	if (!strcmp(name, "ptrace"))
		return report(name, ptrace(PTRACE_TRACEME, 0, NULL, NULL));
	if (!strcmp(name, "mount"))
		return report(name, mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
	if (!strcmp(name, "unshare"))
		return report(name, unshare(CLONE_NEWUSER));
	if (!strcmp(name, "setns")) {
		int fd = open("/proc/self/ns/net", O_RDONLY);
		if (fd < 0)
			return report(name, -1);
		return report(name, setns(fd, CLONE_NEWNET));
	}
	if (!strcmp(name, "bpf")) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.map_type = BPF_MAP_TYPE_ARRAY;
		attr.key_size = 4;
		attr.value_size = 4;
		attr.max_entries = 1;
		return report(name, syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
	}
	if (!strcmp(name, "init_module"))
		return report(name, syscall(SYS_init_module, NULL, 0, ""));
	if (!strcmp(name, "proc-sys")) {
		int fd = open("/proc/sys/kernel/hostname", O_WRONLY);
		if (fd < 0)
			return report(name, -1);
		return report(name, write(fd, "pwned", 5));
	}
	if (!strcmp(name, "kill")) /* arg: a host pid (the agent's, a worker's) */
		return report(name, kill(atoi(arg), SIGTERM));
	if (!strcmp(name, "read")) /* arg: a file; read-only open */
		return report(name, open(arg, O_RDONLY));
	if (!strcmp(name, "fork")) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0)
			waitpid(p, NULL, 0);
		return report(name, p);
	}
	fprintf(stderr, "unknown attack %s\n", name);
	return 2;
}
