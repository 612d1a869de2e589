// An offline advisory database in OSV format (a directory of OSV JSON files, one advisory
// each, as osv.dev's per-ecosystem exports unpack; operators refresh it from there) and the
// matching of an image's packages against it: npm packages by SemVer ranges, Debian
// packages (by source package, as Debian's advisories name them) by dpkg version order.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { advisorySeverity, type Severity } from './severity';
import type { Component, Inventory } from './sbom';
import { compareDebian, compareSemver, isSemver } from './versions';

interface OsvEvent {
  introduced?: string;
  fixed?: string;
  last_affected?: string;
  limit?: string;
}

interface OsvAffected {
  package?: { ecosystem?: string; name?: string; purl?: string };
  ranges?: Array<{ type?: string; events?: OsvEvent[] }>;
  versions?: string[];
  severity?: Array<{ type?: string; score?: string }>;
  database_specific?: { severity?: unknown };
  ecosystem_specific?: { severity?: unknown };
}

export interface Advisory {
  id: string;
  aliases?: string[];
  summary?: string;
  withdrawn?: string;
  affected?: OsvAffected[];
  severity?: Array<{ type?: string; score?: string }>;
  database_specific?: { severity?: unknown };
}

export interface AdvisoryDb {
  dir: string;
  advisories: Advisory[];
  /** sha256 over every file's name and content: a refreshed database is a different one. */
  digest: string;
}

export class AdvisoryDbError extends Error {}

/** Reads every *.json below `dir` (an OSV advisory each). Throws on an unreadable or malformed file. */
export function loadAdvisories(dir: string): AdvisoryDb {
  const files: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      throw new AdvisoryDbError(`cannot read the advisory database ${d}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.json')) files.push(p);
    }
  };
  walk(dir);
  files.sort();
  const hash = createHash('sha256');
  const advisories: Advisory[] = [];
  for (const f of files) {
    const bytes = readFileSync(f);
    hash.update(`${path.relative(dir, f)}\0${createHash('sha256').update(bytes).digest('hex')}\n`);
    let a: Advisory;
    try {
      a = JSON.parse(bytes.toString('utf8')) as Advisory;
    } catch (err) {
      throw new AdvisoryDbError(`${f}: not JSON: ${(err as Error).message}`);
    }
    if (typeof a?.id !== 'string' || !a.id) throw new AdvisoryDbError(`${f}: not an OSV advisory (no id)`);
    if (a.affected !== undefined && !Array.isArray(a.affected)) throw new AdvisoryDbError(`${f}: affected is not a list`);
    advisories.push(a);
  }
  return { dir, advisories, digest: hash.digest('hex') };
}

export interface Finding {
  id: string;
  aliases: string[];
  summary: string;
  component: Pick<Component, 'ecosystem' | 'name' | 'version' | 'purl'>;
  /** undefined: the advisory states no severity fhirguard can read. */
  severity?: Severity;
  severitySource: string;
  /** Versions that fix it, from the advisory's ranges. */
  fixed: string[];
}

type Compare = (a: string, b: string) => number;

/** OSV's range evaluation: events in version order, affected from an introduced up to a fixed (or past a last_affected). */
export function inRange(version: string, events: readonly OsvEvent[], cmp: Compare): boolean {
  const at = (e: OsvEvent): string | undefined => e.introduced ?? e.fixed ?? e.last_affected;
  const order = (a: string, b: string): number => (a === b ? 0 : a === '0' ? -1 : b === '0' ? 1 : cmp(a, b));
  const sorted = events.filter((e) => at(e) !== undefined).sort((a, b) => order(at(a)!, at(b)!));
  let affected = false;
  for (const e of sorted) {
    if (e.introduced !== undefined) {
      if (e.introduced === '0' || cmp(version, e.introduced) >= 0) affected = true;
    } else if (e.fixed !== undefined) {
      if (cmp(version, e.fixed) >= 0) affected = false;
    } else if (e.last_affected !== undefined) {
      if (cmp(version, e.last_affected) > 0) affected = false;
    }
  }
  return affected;
}

function safe(cmp: Compare, valid: (v: string) => boolean): Compare {
  return (a, b) => {
    if (!valid(a) || !valid(b)) throw new RangeError(`cannot order ${a} and ${b}`);
    return cmp(a, b);
  };
}

const COMPARE: Record<Component['ecosystem'], Compare> = {
  npm: safe(compareSemver, (v) => v === '0' || isSemver(v)),
  Debian: compareDebian,
};

function ecosystemMatches(osv: string | undefined, c: Component, debianRelease: string | undefined): boolean {
  if (!osv) return false;
  if (c.ecosystem === 'npm') return osv === 'npm';
  const m = /^Debian(?::(\S+))?$/.exec(osv);
  return !!m && (!m[1] || !debianRelease || m[1] === debianRelease);
}

/** The name and version an advisory names a component by (Debian: its source package). */
function namesOf(c: Component): Array<{ name: string; version: string }> {
  const out = [{ name: c.name, version: c.version }];
  if (c.source && c.source !== c.name) out.push({ name: c.source, version: c.sourceVersion ?? c.version });
  return out;
}

function affects(a: OsvAffected, version: string, cmp: Compare): boolean {
  if (a.versions?.includes(version)) return true;
  for (const r of a.ranges ?? []) {
    if (r.type !== 'SEMVER' && r.type !== 'ECOSYSTEM') continue;
    try {
      if (inRange(version, r.events ?? [], cmp)) return true;
    } catch {
      // a version the ecosystem's order cannot place: this range says nothing about it
    }
  }
  return false;
}

/** Every (advisory, component) pair where the advisory affects the installed version, sorted. */
export function matchAdvisories(db: AdvisoryDb, inv: Inventory): Finding[] {
  const byName = new Map<string, Component[]>();
  for (const c of inv.components) {
    for (const n of namesOf(c)) {
      const key = `${c.ecosystem}\0${n.name}`;
      byName.set(key, [...(byName.get(key) ?? []), c]);
    }
  }
  const findings = new Map<string, Finding>();
  for (const adv of db.advisories) {
    if (adv.withdrawn) continue;
    for (const aff of adv.affected ?? []) {
      const eco = aff.package?.ecosystem;
      const name = aff.package?.name;
      if (!eco || !name) continue;
      const family = eco === 'npm' ? 'npm' : eco.startsWith('Debian') ? 'Debian' : undefined;
      if (!family) continue;
      for (const c of byName.get(`${family}\0${name}`) ?? []) {
        if (!ecosystemMatches(eco, c, inv.os?.versionId)) continue;
        const version = namesOf(c).find((n) => n.name === name)!.version;
        if (!affects(aff, version, COMPARE[c.ecosystem])) continue;
        const key = `${adv.id}\0${c.purl}`;
        if (findings.has(key)) continue;
        const sev = advisorySeverity(adv, aff);
        const fixed = [...new Set((aff.ranges ?? []).flatMap((r) => (r.events ?? []).flatMap((e) => (e.fixed ? [e.fixed] : []))))];
        findings.set(key, {
          id: adv.id,
          aliases: [...(adv.aliases ?? [])].sort(),
          summary: adv.summary ?? '',
          component: { ecosystem: c.ecosystem, name: c.name, version: c.version, purl: c.purl },
          ...(sev.severity ? { severity: sev.severity } : {}),
          severitySource: sev.source,
          fixed,
        });
      }
    }
  }
  return [...findings.values()].sort((a, b) => (a.id !== b.id ? (a.id < b.id ? -1 : 1) : a.component.purl < b.component.purl ? -1 : 1));
}
