// The Debian packages whose files an image copies from the host, asked of dpkg, and their
// records as the image carries them: one file per package in /var/lib/dpkg/status.d/ (the
// layout distroless images use and scanners read), so what an image holds can be read from
// the image alone.

import { spawnSync } from 'node:child_process';

export interface DebianPackage {
  package: string;
  version: string;
  architecture: string;
  /** The source package (what Debian's advisories name) and its version. */
  source: string;
  sourceVersion: string;
}

export const STATUS_DIR = 'var/lib/dpkg/status.d';

/** The packages owning any of `paths` (as dpkg names them: try the path as given and resolved). */
export function owningPackages(paths: readonly string[]): DebianPackage[] {
  if (!paths.length) return [];
  const owners = spawnSync('dpkg', ['-S', ...paths], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (owners.error) return []; // not a Debian host: nothing to record
  const names = new Set<string>();
  for (const line of owners.stdout.split('\n')) {
    const m = /^([^:\s,]+(?::[a-z0-9]+)?(?:, [^:\s,]+(?::[a-z0-9]+)?)*): \//.exec(line);
    if (m) for (const n of m[1].split(', ')) names.add(n);
  }
  if (!names.size) return [];
  const q = spawnSync('dpkg-query', ['-W', '-f=${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\n', ...[...names].sort()], {
    encoding: 'utf8',
  });
  const found = new Map<string, DebianPackage>();
  for (const line of q.stdout.split('\n')) {
    const [pkg, version, architecture, source, sourceVersion] = line.split('\t');
    if (!pkg || !version) continue;
    found.set(pkg, { package: pkg, version, architecture, source: source || pkg, sourceVersion: sourceVersion || version });
  }
  return [...found.values()].sort((a, b) => (a.package < b.package ? -1 : 1));
}

/** A package's record in status.d (dpkg's control-file format). */
export function statusRecord(p: DebianPackage): string {
  const lines = [`Package: ${p.package}`, 'Status: install ok installed', `Version: ${p.version}`, `Architecture: ${p.architecture}`];
  if (p.source !== p.package || p.sourceVersion !== p.version) {
    lines.push(`Source: ${p.source}${p.sourceVersion !== p.version ? ` (${p.sourceVersion})` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/** Parses dpkg status records (status.d files, or a whole /var/lib/dpkg/status): installed packages only. */
export function parseStatus(text: string): DebianPackage[] {
  const out: DebianPackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) f[m[1].toLowerCase()] = m[2].trim();
    }
    if (!f.package || !f.version) continue;
    if (f.status && !/\binstalled$/.test(f.status)) continue;
    const src = /^(\S+)(?:\s+\((\S+)\))?$/.exec(f.source ?? '');
    out.push({
      package: f.package,
      version: f.version,
      architecture: f.architecture ?? '',
      source: src?.[1] ?? f.package,
      sourceVersion: src?.[2] ?? f.version,
    });
  }
  return out;
}
