/* The host-wide cost of fhirguard's sys_enter program: a tight loop of one cheap syscall
 * (getppid), timed. Prints the ns per call of the best of <rounds> rounds of <n> calls, so a
 * bench can compare the same loop with and without the programs attached. With --empty-hook it
 * first attaches an empty sys_enter program (fg-empty.bpf.c) for the duration: the kernel's own
 * price for any such hook.
 * usage: fg-syscall-loop [--empty-hook] <n> <rounds> */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "fg_empty.skel.h"

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
	struct fg_empty_bpf *skel = NULL;
	if (argc > 1 && strcmp(argv[1], "--empty-hook") == 0) {
		skel = fg_empty_bpf__open_and_load();
		if (!skel || fg_empty_bpf__attach(skel) != 0) {
			perror("fg-syscall-loop: attaching the empty sys_enter program");
			return 1;
		}
		argv++;
		argc--;
	}
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	if (n <= 0 || rounds <= 0) {
		fputs("usage: fg-syscall-loop [--empty-hook] <n> <rounds>\n", stderr);
		return 2;
	}
	double best = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_ns();
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		double per = (now_ns() - t0) / (double)n;
		if (r == 0 || per < best)
			best = per;
	}
	printf("%.2f\n", best);
	fg_empty_bpf__destroy(skel);
	return 0;
}
