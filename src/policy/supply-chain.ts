// The policy file's `supplyChain:` section: how the image scan gate decides. Findings at or
// above `scan.failOn` refuse an image unless a waiver names them with a reason and an
// expiry date; an advisory whose severity cannot be read counts as `scan.unknownSeverity`.
//
//   supplyChain:
//     scan:
//       failOn: high            # low | medium | high | critical (default high)
//       unknownSeverity: high   # default high: an unrated advisory is not waved through
//     waivers:
//       - id: GHSA-xxxx-xxxx-xxxx   # the advisory id or one of its aliases (CVE-...)
//         package: undici           # optional: only this package's finding
//         reason: not reachable: workers make no outbound HTTP requests
//         expires: 2026-06-30       # through that day (UTC), or an ISO date-time

import { SEVERITIES, type Severity } from '../image/severity';
import type { Field, Spec } from './yaml-check';
import type { SourcePositions } from './yaml-check';

export interface SupplyChainWaiver {
  id: string;
  package?: string;
  reason: string;
  /** As written in the policy file. */
  expires: string;
  /** The last millisecond the waiver holds. */
  expiresAt: number;
  /** Where it is in the policy file, e.g. `supplyChain.waivers[1]`. */
  path: string;
}

export interface SupplyChainPolicy {
  failOn: Severity;
  unknownSeverity: Severity;
  waivers: SupplyChainWaiver[];
}

export interface SupplyChainFields {
  scan?: { failOn?: Severity; unknownSeverity?: Severity };
  waivers?: Array<{ id: string; package?: string; reason: string; expires: string }>;
}

export const DEFAULT_SUPPLY_CHAIN: SupplyChainPolicy = { failOn: 'high', unknownSeverity: 'high', waivers: [] };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** The instant a waiver stops holding: the end of a date (UTC), or the date-time itself. */
export function expiryOf(v: string): number {
  if (DATE.test(v)) {
    const t = Date.parse(`${v}T23:59:59.999Z`);
    if (!Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === v) return t;
  } else if (DATE_TIME.test(v)) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return NaN;
}

const severity: Spec = {
  type: 'string',
  expect: `a severity (${SEVERITIES.join(', ')})`,
  check: (v) => ((SEVERITIES as readonly string[]).includes(v) ? undefined : `${JSON.stringify(v)} is not a severity; expected one of ${SEVERITIES.join(', ')}`),
};

const WAIVER_FIELDS: Readonly<Record<string, Field>> = {
  id: {
    spec: {
      type: 'string',
      expect: 'an advisory id',
      check: (v) => (/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(v) ? undefined : `${JSON.stringify(v)} is not an advisory id such as GHSA-xxxx-xxxx-xxxx or CVE-2024-12345`),
    },
    required: true,
    doc: 'the advisory waived: its OSV id or one of its aliases',
  },
  package: {
    spec: { type: 'string', expect: 'a package name', check: (v) => (v.trim() ? undefined : 'an empty package name') },
    doc: 'only the finding in this package (npm or Debian name); absent: every package the advisory affects',
  },
  reason: {
    spec: { type: 'string', expect: 'a reason', check: (v) => (v.trim().length >= 10 ? undefined : `${JSON.stringify(v)}: say why the finding is acceptable (at least 10 characters)`) },
    required: true,
    doc: 'why the finding is acceptable here, for whoever reviews the waiver',
  },
  expires: {
    spec: {
      type: 'string',
      expect: 'a date (YYYY-MM-DD) or an ISO date-time with zone',
      check: (v) => (Number.isNaN(expiryOf(v)) ? `${JSON.stringify(v)} is not a date (YYYY-MM-DD) or an ISO date-time with zone` : undefined),
    },
    required: true,
    doc: 'the last day (UTC) the waiver holds; after it the finding refuses the image again',
  },
};

export const SUPPLY_CHAIN_FIELD: Field = {
  spec: {
    type: 'object',
    fields: {
      scan: {
        spec: {
          type: 'object',
          fields: {
            failOn: { spec: severity, doc: 'refuse images with a finding at or above this severity (default high)' },
            unknownSeverity: { spec: severity, doc: 'the severity of an advisory that states none fhirguard can read (default high)' },
          },
        },
        doc: 'the image scan gate',
      },
      waivers: {
        spec: { type: 'list', items: { type: 'object', fields: WAIVER_FIELDS } },
        doc: 'findings accepted until a date, each with its reason',
      },
    },
  },
  doc: 'the image scan gate: the severity that refuses an image, and waivers',
};

/** Defaults and the checks across waivers; expired waivers are warnings (the gate refuses what they no longer cover). */
export function compileSupplyChain(fields: SupplyChainFields | undefined, file: string, at: SourcePositions, now: number = Date.now()): { supplyChain: SupplyChainPolicy; warnings: string[] } {
  const warnings: string[] = [];
  const waivers: SupplyChainWaiver[] = [];
  const seen = new Map<string, number>();
  (fields?.waivers ?? []).forEach((w, i) => {
    const path = `supplyChain.waivers[${i}]`;
    const key = `${w.id}\0${w.package ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) at.report(`${path}.id`, `${w.id}${w.package ? ` (${w.package})` : ''} is already waived by supplyChain.waivers[${first}]`);
    seen.set(key, i);
    const expiresAt = expiryOf(w.expires);
    if (expiresAt < now) warnings.push(`${file}: ${path}: the waiver of ${w.id} expired on ${w.expires}: images with that finding are refused again`);
    waivers.push({ id: w.id, ...(w.package ? { package: w.package } : {}), reason: w.reason.trim(), expires: w.expires, expiresAt, path });
  });
  return {
    supplyChain: {
      failOn: fields?.scan?.failOn ?? DEFAULT_SUPPLY_CHAIN.failOn,
      unknownSeverity: fields?.scan?.unknownSeverity ?? DEFAULT_SUPPLY_CHAIN.unknownSeverity,
      waivers,
    },
    warnings,
  };
}
