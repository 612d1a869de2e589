// Reading a set of tier profiles for `fhirguard profile`: a profiles directory (seccomp/
// and ebpf/ below it, as shipped), a directory of profile files, or one file. The files
// are checked by the same parsers the agent uses (../seccomp.ts, ../ebpf-profile.ts), so
// what these commands accept is what the agent enforces; every problem becomes a
// ProfileError naming the file and the place in it.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseEbpfProfile, type EbpfProfile } from '../enforce/ebpf-profile';
import { parseSeccompProfile, type SeccompProfile } from '../enforce/seccomp';
import { loadPolicy } from '../policy';
import { ProfileError, readText } from './errors';

export interface Loaded<T> {
  file: string;
  profile: T;
}

export interface TierProfileFiles {
  tier: string;
  seccomp?: Loaded<SeccompProfile>;
  ebpf?: Loaded<EbpfProfile>;
}

export interface ProfileSet {
  /** The directory or file the set was read from. */
  source: string;
  /** Tiers in the policy's order (when a policy was read), then by name. */
  tiers: TierProfileFiles[];
  /** Why the tier order is alphabetical, when a policy was expected but not usable. */
  orderNote?: string;
}

type Kind = 'seccomp' | 'ebpf';

function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProfileError(file, undefined, `not valid JSON: ${(err as Error).message}`);
  }
}

/** The agent's parsers name the file and field already; anything else they throw is
 * still reported against the file rather than crashing the command. */
function parseAs(kind: Kind, json: unknown, file: string): SeccompProfile | EbpfProfile {
  try {
    return kind === 'seccomp' ? parseSeccompProfile(json, file) : parseEbpfProfile(json, file);
  } catch (err) {
    const msg = (err as Error).message;
    const prefix = `${file}: `;
    throw new ProfileError(file, undefined, msg.startsWith(prefix) ? msg.slice(prefix.length) : `${kind} profile rejected: ${msg}`);
  }
}

/** A file's kind: from its folder (seccomp/, ebpf/) or else from its content. */
/** What the agent's eBPF parser leaves to the kernel loader: addresses, prefixes and ports
 * the loader would refuse at set-policy time are reported here, against the file. */
function checkEgress(profile: EbpfProfile, file: string): void {
  (profile.egress ?? []).forEach((e, i) => {
    const [addr, prefix, ...rest] = e.cidr.split('/');
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || rest.length > 0) throw new ProfileError(file, `egress[${i}].cidr`, `not an IPv4 or IPv6 address or prefix: ${JSON.stringify(e.cidr)}`);
    if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max)) {
      throw new ProfileError(file, `egress[${i}].cidr`, `prefix length must be 0..${max}: ${JSON.stringify(e.cidr)}`);
    }
    if (e.port < 0 || e.port > 65535) throw new ProfileError(file, `egress[${i}].port`, `must be 0..65535 (0 = any port), not ${e.port}`);
  });
}

function kindOf(file: string, json: unknown): Kind {
  const folder = path.basename(path.dirname(file));
  if (folder === 'seccomp' || folder === 'ebpf') return folder;
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    if ('defaultAction' in json) return 'seccomp';
    if ('serve' in json) return 'ebpf';
  }
  throw new ProfileError(file, undefined, 'neither a seccomp profile (no defaultAction) nor an eBPF profile (no serve list)');
}

function tierName(file: string): string {
  return path.basename(file, '.json');
}

function addFile(tiers: Map<string, TierProfileFiles>, file: string, forcedKind?: Kind, tier = tierName(file)): void {
  const json = readJson(file);
  const kind = forcedKind ?? kindOf(file, json);
  const entry = tiers.get(tier) ?? { tier };
  if (entry[kind]) throw new ProfileError(file, undefined, `a second ${kind} profile for tier ${tier} (first: ${entry[kind]!.file})`);
  if (kind === 'seccomp') entry.seccomp = { file, profile: parseAs(kind, json, file) as SeccompProfile };
  else {
    const profile = parseAs(kind, json, file) as EbpfProfile;
    checkEgress(profile, file);
    entry.ebpf = { file, profile };
  }
  tiers.set(tier, entry);
}

function jsonFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Tier names in the order of the policy's tiers, when the policy loads. */
function policyOrder(policyFile: string): { order?: string[]; note?: string } {
  if (!existsSync(policyFile)) return {};
  try {
    return { order: loadPolicy(policyFile).tiers.map((t) => t.name) };
  } catch (err) {
    return { note: `tiers sorted by name: ${policyFile} does not load (${(err as Error).message.split('\n')[0]})` };
  }
}

export interface LoadOptions {
  /** Policy giving the tier order; default `<dir>/policy.yaml` for a profiles directory. */
  policyFile?: string;
  /** Read only these tiers; an unknown one is an error. */
  only?: string[];
}

/** Loads a profiles directory, a directory of profile files, or a single profile file. */
export function loadProfileSet(source: string, opts: LoadOptions = {}): ProfileSet {
  let st;
  try {
    st = statSync(source);
  } catch {
    throw new ProfileError(source, undefined, 'no such file or directory');
  }
  const tiers = new Map<string, TierProfileFiles>();
  let order: string[] | undefined;
  let orderNote: string | undefined;
  if (st.isFile()) {
    addFile(tiers, source);
  } else {
    const seccompDir = path.join(source, 'seccomp');
    const ebpfDir = path.join(source, 'ebpf');
    const layered = existsSync(seccompDir) || existsSync(ebpfDir);
    if (layered) {
      if (existsSync(seccompDir)) for (const f of jsonFiles(seccompDir)) addFile(tiers, f, 'seccomp');
      if (existsSync(ebpfDir)) for (const f of jsonFiles(ebpfDir)) addFile(tiers, f, 'ebpf');
    } else {
      for (const f of jsonFiles(source)) addFile(tiers, f);
    }
    if (tiers.size === 0) {
      throw new ProfileError(source, undefined, 'holds no profiles (expected seccomp/<tier>.json and ebpf/<tier>.json)');
    }
    ({ order, note: orderNote } = policyOrder(opts.policyFile ?? path.join(source, 'policy.yaml')));
  }
  const rank = (t: string): number => {
    const i = order?.indexOf(t) ?? -1;
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  let list = [...tiers.values()].sort((a, b) => rank(a.tier) - rank(b.tier) || (a.tier < b.tier ? -1 : a.tier > b.tier ? 1 : 0));
  if (opts.only?.length) {
    const missing = opts.only.filter((t) => !tiers.has(t));
    if (missing.length) throw new ProfileError(source, undefined, `no profiles for tier ${missing.join(', ')} (has: ${list.map((t) => t.tier).join(', ')})`);
    list = list.filter((t) => opts.only!.includes(t.tier));
  }
  return { source, tiers: list, ...(orderNote ? { orderNote } : {}) };
}
