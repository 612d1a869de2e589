// Tier eBPF profiles: profiles/ebpf/<tier>.json holds the serve-phase allow set, whether
// write opens are violations, and the egress allow-list. The action comes from the tier's
// mode in the policy file (enforce kills, audit counts), so one profile serves both.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BpfAction, BpfPolicy, EgressRule } from './bpf';
import { syscallNr } from './syscalls';

export interface EbpfProfile {
  comment?: string | string[];
  /** Syscalls the serve phase allows. */
  serve: string[];
  noWriteOpens: boolean;
  /** Absent: egress unrestricted; [] = none. */
  egress?: EgressRule[];
}

export class EbpfProfileError extends Error {}

export function ebpfProfilePath(profilesDir: string, tier: string): string {
  return path.join(profilesDir, 'ebpf', `${tier}.json`);
}

export function parseEbpfProfile(json: unknown, file: string): EbpfProfile {
  const fail = (msg: string): never => {
    throw new EbpfProfileError(`${file}: ${msg}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('not a JSON object');
  const o = json as Record<string, unknown>;
  if (!Array.isArray(o.serve) || !o.serve.every((s) => typeof s === 'string')) fail('serve must be a list of syscall names');
  const serve = o.serve as string[];
  const unknown = serve.filter((n) => syscallNr(n) === undefined);
  if (unknown.length) fail(`serve: not x86_64 syscalls: ${unknown.join(', ')}`);
  if (o.noWriteOpens !== undefined && typeof o.noWriteOpens !== 'boolean') fail('noWriteOpens must be true or false');
  const profile: EbpfProfile = { serve: [...new Set(serve)].sort(), noWriteOpens: o.noWriteOpens === true };
  if (o.egress !== undefined) {
    if (!Array.isArray(o.egress)) fail('egress must be a list of {cidr, port}');
    profile.egress = (o.egress as unknown[]).map((r, i) => {
      const e = (r ?? {}) as Record<string, unknown>;
      if (typeof e.cidr !== 'string' || !Number.isInteger(e.port)) fail(`egress[${i}] must be {cidr: string, port: integer}`);
      return { cidr: e.cidr as string, port: e.port as number };
    });
  }
  if (typeof o.comment === 'string' || Array.isArray(o.comment)) profile.comment = o.comment as string | string[];
  return profile;
}

export function loadEbpfProfile(file: string): EbpfProfile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EbpfProfileError(`${file}: ${(err as Error).message}`);
  }
  return parseEbpfProfile(json, file);
}

/** The loader's policy for a worker cgroup of this tier, registered in boot phase. */
export function bpfPolicyOf(profile: EbpfProfile, action: BpfAction): BpfPolicy {
  return {
    allow: profile.serve,
    action,
    noWriteOpens: profile.noWriteOpens,
    ...(profile.egress !== undefined ? { egress: profile.egress } : {}),
    phase: 'boot',
  };
}
