/* The host-wide cost of fhirguard's sys_enter program: a tight loop of one cheap syscall
 * (getppid), timed. Prints the ns per call of the best of <rounds> rounds of <n> calls, so a
 * bench can compare the same loop with and without the programs attached.
 * usage: fg-syscall-loop <n> <rounds> */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	if (n <= 0 || rounds <= 0) {
		fputs("usage: fg-syscall-loop <n> <rounds>\n", stderr);
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
	return 0;
}
