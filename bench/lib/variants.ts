// The five ways the benchmark sends a workload to the same reference workers:
//   direct                   the worker itself, on its Unix socket (no proxy)
//   bare                     a plain @fastify/http-proxy in front of that worker (no FHIR logic)
//   fhirguard                fhirguard proxy, workers as plain processes (no enforcement)
//   fhirguard+seccomp        fhirguard proxy, workers in runc containers under seccomp
//   fhirguard+seccomp+ebpf   the same plus the eBPF policy (serve phase) on every worker cgroup
// direct and bare reach the workers of the `fhirguard` system, so the first three differ
// only in what stands in front of the same processes.

import type { Enforcement } from './system';

export type VariantId = 'direct' | 'bare' | 'fhirguard' | 'fhirguard+seccomp' | 'fhirguard+seccomp+ebpf';
export const VARIANTS: VariantId[] = ['direct', 'bare', 'fhirguard', 'fhirguard+seccomp', 'fhirguard+seccomp+ebpf'];

export const DESCRIBE: Record<VariantId, string> = {
  direct: 'client to the worker Unix socket, no proxy',
  bare: 'bare @fastify/http-proxy (no FHIR logic) in front of the same worker',
  fhirguard: 'fhirguard proxy, workers as plain processes (no enforcement)',
  'fhirguard+seccomp': 'fhirguard proxy, workers in runc containers with seccomp (agent --without-ebpf)',
  'fhirguard+seccomp+ebpf': 'fhirguard proxy, workers in runc containers with seccomp and the eBPF policy',
};

/** The enforcement level of the system each variant needs (direct and bare: the unconfined one's workers). */
export const SYSTEM_OF: Record<VariantId, Enforcement> = {
  direct: 'unconfined',
  bare: 'unconfined',
  fhirguard: 'unconfined',
  'fhirguard+seccomp': 'seccomp',
  'fhirguard+seccomp+ebpf': 'seccomp+ebpf',
};

const ALIASES: Record<string, VariantId> = {
  plain: 'fhirguard',
  unconfined: 'fhirguard',
  'fhirguard-plain': 'fhirguard',
  seccomp: 'fhirguard+seccomp',
  ebpf: 'fhirguard+seccomp+ebpf',
  'seccomp+ebpf': 'fhirguard+seccomp+ebpf',
};

/** A comma-separated list of variants (ids or aliases), in the canonical order. */
export function parseVariants(list: string): VariantId[] {
  const want = new Set<VariantId>();
  for (const raw of list
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    const id = (VARIANTS as string[]).includes(raw) ? (raw as VariantId) : ALIASES[raw];
    if (!id) throw new Error(`unknown variant '${raw}' (one of ${VARIANTS.join(', ')}; or plain, seccomp, ebpf)`);
    want.add(id);
  }
  return VARIANTS.filter((v) => want.has(v));
}
