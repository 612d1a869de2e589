// SPDX-License-Identifier: GPL-2.0
/* The bench's reference point: an empty raw_tracepoint/sys_enter program. What it costs is the
 * kernel's price for any sys_enter hook (every task takes the traced syscall path); what
 * fhirguard.bpf.c costs beyond it is fhirguard's own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("raw_tracepoint/sys_enter")
int fg_empty(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}
