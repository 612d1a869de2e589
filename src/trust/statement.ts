// The signed statement: an in-toto Statement v1 whose subject is what the workers of a tier
// run (an OCI image by its manifest digest, or, without an image, the host install the
// workers are started from) and whose predicate binds to it the tier's confinement: the
// digests of its seccomp profile, its eBPF profile and the policy file, the scan result and
// the waivers it relied on, and an optional expiry. It travels as the payload of a DSSE
// envelope of type application/vnd.in-toto+json.

import { expiryOf } from '../policy/supply-chain';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** fhirguard's predicate: one tier's confinement bound to what its workers run. */
export const PREDICATE_TYPE = 'urn:fhirguard:tier-confinement:v1';

export type SubjectKind = 'image' | 'install' | 'server';

export interface Digest {
  sha256: string;
}

export interface Artifact {
  /** Where it was read from, relative to its directory (informative; only digests are compared). */
  name: string;
  digest: Digest;
}

export interface Waiver {
  /** The advisory (or finding) waived. */
  id: string;
  /** Only this package's finding (absent: every package the advisory affects). */
  package?: string;
  /** ISO date or date-time after which the waiver no longer holds. */
  expires: string;
  reason?: string;
}

export interface TierPredicate {
  tier: string;
  subjectKind: SubjectKind;
  seccomp: Artifact;
  ebpf: Artifact;
  policy: Artifact;
  /** The image's scan report, when the image was scanned; the waivers its gate relied on. */
  scan?: { digest: Digest; waivers: Waiver[] };
  signedAt: string;
  expires?: string;
}

export interface Subject {
  name: string;
  digest: Digest;
}

export interface TierStatement {
  _type: typeof STATEMENT_TYPE;
  subject: Subject[];
  predicateType: typeof PREDICATE_TYPE;
  predicate: TierPredicate;
}

export function buildStatement(subject: Subject, predicate: TierPredicate): TierStatement {
  return { _type: STATEMENT_TYPE, subject: [subject], predicateType: PREDICATE_TYPE, predicate };
}

export class StatementError extends Error {}

const HEX64 = /^[0-9a-f]{64}$/;

function digestOf(v: unknown, where: string): Digest {
  const d = (v ?? {}) as Record<string, unknown>;
  if (typeof d.sha256 !== 'string' || !HEX64.test(d.sha256)) throw new StatementError(`${where}.sha256 is not a sha256 digest in hex`);
  return { sha256: d.sha256 };
}

function artifactOf(v: unknown, where: string): Artifact {
  const a = (v ?? {}) as Record<string, unknown>;
  if (typeof a !== 'object' || Array.isArray(a)) throw new StatementError(`${where} is not an object`);
  return { name: typeof a.name === 'string' ? a.name : '', digest: digestOf(a.digest, `${where}.digest`) };
}

/**
 * A time the statement names, as the policy's waivers name theirs: a date (YYYY-MM-DD, through
 * the end of that day, UTC) or an ISO 8601 date-time with its zone (never local time).
 */
export function timeOf(v: unknown, where: string): number {
  const t = typeof v === 'string' ? expiryOf(v) : NaN;
  if (Number.isNaN(t)) throw new StatementError(`${where} is not a date (YYYY-MM-DD) or an ISO 8601 date-time with zone: ${JSON.stringify(v)}`);
  return t;
}

/** Parses and checks a statement's shape (not what it says: verify.ts compares that). */
export function parseStatement(payload: Buffer): TierStatement {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new StatementError(`payload is not JSON: ${(err as Error).message}`);
  }
  const o = (json ?? {}) as Record<string, unknown>;
  if (o._type !== STATEMENT_TYPE) throw new StatementError(`_type is ${JSON.stringify(o._type)}, not ${STATEMENT_TYPE}`);
  if (o.predicateType !== PREDICATE_TYPE) throw new StatementError(`predicateType is ${JSON.stringify(o.predicateType)}, not ${PREDICATE_TYPE}`);
  if (!Array.isArray(o.subject) || o.subject.length !== 1) throw new StatementError('subject must name exactly one artifact');
  const s = (o.subject[0] ?? {}) as Record<string, unknown>;
  const subject: Subject = { name: typeof s.name === 'string' ? s.name : '', digest: digestOf(s.digest, 'subject[0].digest') };
  const p = (o.predicate ?? {}) as Record<string, unknown>;
  if (typeof p.tier !== 'string' || !p.tier) throw new StatementError('predicate.tier missing');
  if (p.subjectKind !== 'image' && p.subjectKind !== 'install' && p.subjectKind !== 'server') throw new StatementError('predicate.subjectKind must be image, install or server');
  const predicate: TierPredicate = {
    tier: p.tier,
    subjectKind: p.subjectKind,
    seccomp: artifactOf(p.seccomp, 'predicate.seccomp'),
    ebpf: artifactOf(p.ebpf, 'predicate.ebpf'),
    policy: artifactOf(p.policy, 'predicate.policy'),
    signedAt: typeof p.signedAt === 'string' ? p.signedAt : '',
  };
  if (p.expires !== undefined) {
    timeOf(p.expires, 'predicate.expires');
    predicate.expires = p.expires as string;
  }
  if (p.scan !== undefined) {
    const scan = (p.scan ?? {}) as Record<string, unknown>;
    if (!Array.isArray(scan.waivers)) throw new StatementError('predicate.scan.waivers must be a list');
    predicate.scan = {
      digest: digestOf(scan.digest, 'predicate.scan.digest'),
      waivers: scan.waivers.map((w: unknown, i: number) => {
        const x = (w ?? {}) as Record<string, unknown>;
        if (typeof x.id !== 'string' || !x.id) throw new StatementError(`predicate.scan.waivers[${i}].id missing`);
        timeOf(x.expires, `predicate.scan.waivers[${i}].expires`);
        return {
          id: x.id,
          ...(typeof x.package === 'string' ? { package: x.package } : {}),
          expires: x.expires as string,
          ...(typeof x.reason === 'string' ? { reason: x.reason } : {}),
        };
      }),
    };
  }
  return { _type: STATEMENT_TYPE, subject: [subject], predicateType: PREDICATE_TYPE, predicate };
}
