/* A process for fhirguard's eBPF tests: it prints "ready", then runs one command per stdin line
 * and answers "ok <ret>" or "err <errno>". It uses raw syscalls only (no stdio, no malloc), so
 * between commands it makes nothing but read and write: a test can move it into a cgroup after
 * "ready" and know exactly which syscalls the policy will see.
 *   getppid | getpid | compat-getpid | creat P | open-r P | open-w P | open-legacy-w P |
 *   openat2-r P | openat2-w P | mkdir P | connect4 IP PORT | connect6 IP PORT | udp4 IP PORT |
 *   fork-creat P (a child creates P) | exec P ARG (execve P with one argument) |
 *   seccomp (install an allow-all seccomp filter, as a container runtime does before exec) | exit */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *s) { syscall(SYS_write, 1, s, strlen(s)); }

static void answer(long r)
{
	char buf[32], *p = buf + sizeof(buf);
	int err = r < 0;
	unsigned long v = err ? (unsigned long)errno : (unsigned long)r;
	*--p = 0;
	*--p = '\n';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	say(err ? "err " : "ok ");
	say(p);
}

static long inet_connect(int family, const char *ip, const char *port, int udp)
{
	int s = (int)syscall(SYS_socket, family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	long r;
	unsigned short p = 0;
	for (const char *c = port; *c >= '0' && *c <= '9'; c++)
		p = (unsigned short)(p * 10 + (*c - '0'));
	if (family == AF_INET) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p) };
		inet_pton(AF_INET, ip, &a.sin_addr);
		r = udp ? syscall(SYS_sendto, s, "x", 1, 0, &a, sizeof(a)) : syscall(SYS_connect, s, &a, sizeof(a));
	} else {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(p) };
		inet_pton(AF_INET6, ip, &a.sin6_addr);
		r = syscall(SYS_connect, s, &a, sizeof(a));
	}
	int saved = errno;
	syscall(SYS_close, s);
	errno = saved;
	return r;
}

static long compat_getpid(void)
{
	long r;
	/* 20 is getpid in the i386 table (39 in x86_64's). */
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static long openat2_flags(const char *path, unsigned long long flags)
{
	struct open_how how = { .flags = flags, .mode = (flags & O_CREAT) ? 0600 : 0 };
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd >= 0)
		syscall(SYS_close, fd);
	return fd;
}

static long open_close(long fd)
{
	if (fd >= 0)
		syscall(SYS_close, fd);
	return fd;
}

/* fork(2); the child creates the file and exits: the file exists iff a child ever ran. */
static long fork_creat(const char *path)
{
	long pid = syscall(SYS_fork);
	if (pid == 0) {
		open_close(syscall(SYS_creat, path, 0600));
		syscall(SYS_exit_group, 0);
	}
	if (pid > 0)
		syscall(SYS_wait4, pid, 0, 0, 0);
	return pid;
}

static long exec_one(char *path, char *arg)
{
	char *argv[] = { path, arg, 0 };
	char *envp[] = { 0 };
	return syscall(SYS_execve, path, argv, envp);
}

static long allow_all_seccomp(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(void)
{
	char line[512];
	size_t len = 0;
	say("ready\n");
	for (;;) {
		long n = syscall(SYS_read, 0, line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			return 0;
		len += (size_t)n;
		char *nl;
		while ((nl = memchr(line, '\n', len))) {
			*nl = 0;
			char *cmd = line, *a1 = strchr(cmd, ' '), *a2 = NULL;
			if (a1) {
				*a1++ = 0;
				a2 = strchr(a1, ' ');
				if (a2)
					*a2++ = 0;
			}
			long r = -1;
			errno = 0;
			if (!strcmp(cmd, "getppid"))
				r = syscall(SYS_getppid);
			else if (!strcmp(cmd, "getpid"))
				r = syscall(SYS_getpid);
			else if (!strcmp(cmd, "compat-getpid"))
				r = compat_getpid();
			else if (!strcmp(cmd, "creat") && a1)
				r = open_close(syscall(SYS_creat, a1, 0600));
			else if (!strcmp(cmd, "open-r") && a1)
				r = open_close(syscall(SYS_openat, AT_FDCWD, a1, O_RDONLY));
			else if (!strcmp(cmd, "open-w") && a1)
				r = open_close(syscall(SYS_openat, AT_FDCWD, a1, O_WRONLY | O_CREAT, 0600));
			else if (!strcmp(cmd, "open-legacy-w") && a1)
				r = open_close(syscall(SYS_open, a1, O_WRONLY | O_CREAT, 0600));
			else if (!strcmp(cmd, "openat2-r") && a1)
				r = openat2_flags(a1, O_RDONLY);
			else if (!strcmp(cmd, "openat2-w") && a1)
				r = openat2_flags(a1, O_WRONLY | O_CREAT);
			else if (!strcmp(cmd, "mkdir") && a1)
				r = syscall(SYS_mkdir, a1, 0700);
			else if (!strcmp(cmd, "connect4") && a1 && a2)
				r = inet_connect(AF_INET, a1, a2, 0);
			else if (!strcmp(cmd, "connect6") && a1 && a2)
				r = inet_connect(AF_INET6, a1, a2, 0);
			else if (!strcmp(cmd, "udp4") && a1 && a2)
				r = inet_connect(AF_INET, a1, a2, 1);
			else if (!strcmp(cmd, "fork-creat") && a1)
				r = fork_creat(a1);
			else if (!strcmp(cmd, "exec") && a1 && a2)
				r = exec_one(a1, a2);
			else if (!strcmp(cmd, "seccomp"))
				r = allow_all_seccomp();
			else if (!strcmp(cmd, "exit"))
				syscall(SYS_exit_group, 0);
			else {
				errno = EINVAL;
				r = -1;
			}
			answer(r);
			len -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, len);
		}
		if (len == sizeof(line) - 1)
			len = 0;
	}
}
