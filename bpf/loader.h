/* The loader's parts (loader.c and its loader-*.c files) share these: pinned state, helpers
 * that end the command on error, the policy spec, and the subcommands. */
#ifndef FHIRGUARD_LOADER_H
#define FHIRGUARD_LOADER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <bpf/libbpf.h>
#include "fhirguard.h"

extern const char *pin_dir;
extern const char *cgroup_root;
extern const char *phase_names[FG_NPHASES];
extern const char *recset_names[FG_NRECSETS];
/* What libbpf said while the last command ran: shown only when it failed (the verifier's reason). */
extern char libbpf_log[8192];

struct maps {
	int policies, counters, recorded, egress, events, stats;
};

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

__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
void json_str(FILE *f, const char *s);
void pin_path(char *buf, size_t len, const char *name);
int mkdir_p(const char *path, mode_t mode);
bool is_fs(const char *path, long magic);
uint64_t cgroup_id(const char *path);
uint64_t cgroup_arg(const char *arg);
void lock_pin_dir(void);
int open_pinned(const char *name);
struct maps open_maps(void);
int ncpus(void);
int try_load_programs(void);
int cmd_load(void);
int cmd_unload(void);
int phase_index(const char *s);
void parse_spec(FILE *f, uint64_t cgid, struct spec *s);
int cmd_set_policy(const char *cg, const char *spec_path);
int cmd_phase(const char *cg, const char *phase);
int cmd_forget(const char *cg);
int cmd_counters(const char *only);
int cmd_events(void);
int cmd_probe(void);

#endif
