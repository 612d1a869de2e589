/* The policy spec the TypeScript client writes for set-policy, parsed into the kernel's
 * fg_policy and egress keys. */
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

/* ---------- policies ---------- */


int phase_index(const char *s)
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
void parse_spec(FILE *f, uint64_t cgid, struct spec *s)
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
