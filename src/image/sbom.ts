// What an image holds, read from its layers alone (no unpacking, every layer checked
// against its digest): the npm packages under any node_modules (name and version from
// their package.json), the Debian packages its dpkg records name (/var/lib/dpkg/status.d/
// or status), and its OS (/etc/os-release). Written out as a CycloneDX 1.5 JSON SBOM that
// depends only on the image: two scans of one image give the same bytes.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { parseStatus } from './debian';
import { layerStream, type ResolvedImage } from './layout';
import { readTarStream, type TarEntryHeader, type TarLimits } from '../archive/tar-read';

export interface Component {
  ecosystem: 'npm' | 'Debian';
  name: string;
  version: string;
  purl: string;
  /** Debian: the source package and version (what advisories name). */
  source?: string;
  sourceVersion?: string;
  architecture?: string;
  /** Where in the image it was found (npm: the package directories). */
  locations: string[];
}

export interface Inventory {
  image: ResolvedImage;
  os?: { id: string; versionId?: string; prettyName?: string };
  components: Component[];
  /** Entries in the final filesystem. */
  files: number;
  /** True when `path` exists in the image's final filesystem (symlinks followed). */
  has(path: string): boolean;
}

const NPM_MANIFEST = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/@][^/]*)\/package\.json$/;

function interesting(p: string): boolean {
  return NPM_MANIFEST.test(p) || p === 'var/lib/dpkg/status' || (p.startsWith('var/lib/dpkg/status.d/') && !p.endsWith('.md5sums')) || p === 'etc/os-release' || p === 'usr/lib/os-release';
}

interface Node {
  header: TarEntryHeader;
  data?: Buffer;
}

/**
 * An image layer is a root filesystem, streamed: bounds far above any real layer, far below a
 * disk. What is kept in memory (package manifests, dpkg records, os-release) is bounded apart.
 */
const LAYER_LIMITS: TarLimits = { maxEntryBytes: 8 * 2 ** 30, maxTotalBytes: 64 * 2 ** 30, maxEntries: 2_000_000, maxKeptBytes: 256 * 2 ** 20, rootfs: true };

/** Applies the image's layers in order (with OCI whiteouts) and keeps the files of interest. */
async function flatten(image: ResolvedImage): Promise<Map<string, Node>> {
  const fs = new Map<string, Node>();
  for (const layer of image.manifest.layers) {
    const entries = await readTarStream(layerStream(image.ref.layout, layer), (h) => interesting(h.path), LAYER_LIMITS);
    for (const e of entries) {
      const base = path.posix.basename(e.path);
      const dir = path.posix.dirname(e.path);
      if (base === '.wh..wh..opq') {
        for (const k of [...fs.keys()]) if (k.startsWith(`${dir}/`)) fs.delete(k);
        continue;
      }
      if (base.startsWith('.wh.')) {
        const gone = path.posix.join(dir, base.slice(4));
        fs.delete(gone);
        for (const k of [...fs.keys()]) if (k.startsWith(`${gone}/`)) fs.delete(k);
        continue;
      }
      const { data, ...header } = e;
      fs.set(e.path, data ? { header, data } : { header });
    }
  }
  return fs;
}

/** Looks a path up in the image, following symlinks on the way (relative and absolute targets). */
function resolve(fs: Map<string, Node>, p: string): Node | undefined {
  let parts = p.split('/').filter(Boolean);
  let hops = 0;
  for (let i = 0; i < parts.length; i++) {
    const cur = parts.slice(0, i + 1).join('/');
    const n = fs.get(cur);
    if (!n) return undefined;
    if (n.header.type === 'symlink') {
      if (++hops > 32) return undefined;
      const t = n.header.target ?? '';
      const base = t.startsWith('/') ? t : path.posix.join('/', parts.slice(0, i).join('/'), t);
      parts = [...path.posix.normalize(base).split('/').filter(Boolean), ...parts.slice(i + 1)];
      i = -1;
    }
  }
  return parts.length ? fs.get(parts.join('/')) : undefined;
}

function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return out;
}

function npmPurl(name: string, version: string): string {
  const [scope, bare] = name.startsWith('@') ? [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)] : [undefined, name];
  return `pkg:npm/${scope ? `${encodeURIComponent(scope)}/` : ''}${encodeURIComponent(bare)}@${encodeURIComponent(version)}`;
}

function debPurl(c: { name: string; version: string; architecture?: string; source?: string; sourceVersion?: string }, os?: Inventory['os']): string {
  const q: string[] = [];
  if (c.architecture) q.push(`arch=${encodeURIComponent(c.architecture)}`);
  if (os?.versionId) q.push(`distro=${encodeURIComponent(`${os.id}-${os.versionId}`)}`);
  if (c.source && c.source !== c.name) q.push(`upstream=${encodeURIComponent(c.source)}`);
  return `pkg:deb/${encodeURIComponent(os?.id ?? 'debian')}/${encodeURIComponent(c.name)}@${encodeURIComponent(c.version)}${q.length ? `?${q.join('&')}` : ''}`;
}

export async function inventory(image: ResolvedImage): Promise<Inventory> {
  const fs = await flatten(image);
  const osNode = resolve(fs, 'etc/os-release') ?? resolve(fs, 'usr/lib/os-release');
  const osr = osNode?.data ? parseOsRelease(osNode.data.toString('utf8')) : undefined;
  const os = osr?.ID ? { id: osr.ID, ...(osr.VERSION_ID ? { versionId: osr.VERSION_ID } : {}), ...(osr.PRETTY_NAME ? { prettyName: osr.PRETTY_NAME } : {}) } : undefined;
  const byPurl = new Map<string, Component>();
  const add = (c: Component): void => {
    const seen = byPurl.get(c.purl);
    if (seen) seen.locations.push(...c.locations);
    else byPurl.set(c.purl, c);
  };
  for (const [p, n] of fs) {
    if (!n.data) continue;
    const npm = NPM_MANIFEST.exec(p);
    if (npm) {
      let pkg: { name?: unknown; version?: unknown };
      try {
        pkg = JSON.parse(n.data.toString('utf8')) as typeof pkg;
      } catch {
        continue; // not a package manifest
      }
      const name = typeof pkg.name === 'string' ? pkg.name : npm[1];
      if (typeof pkg.version !== 'string') continue;
      add({ ecosystem: 'npm', name, version: pkg.version, purl: npmPurl(name, pkg.version), locations: [`/${path.posix.dirname(p)}`] });
    } else if (p.startsWith('var/lib/dpkg/status')) {
      for (const d of parseStatus(n.data.toString('utf8'))) {
        add({
          ecosystem: 'Debian',
          name: d.package,
          version: d.version,
          source: d.source,
          sourceVersion: d.sourceVersion,
          architecture: d.architecture,
          purl: debPurl({ ...d, name: d.package }, os),
          locations: [`/${p}`],
        });
      }
    }
  }
  const components = [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
  for (const c of components) c.locations.sort();
  return { image, ...(os ? { os } : {}), components, files: fs.size, has: (q) => resolve(fs, q.replace(/^\/+/, '')) !== undefined };
}

/** A deterministic urn:uuid for the SBOM, from what it describes. */
function serialOf(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The inventory as a CycloneDX 1.5 JSON document. */
export function cycloneDx(inv: Inventory, tool: { name: string; version: string }): Record<string, unknown> {
  const img = inv.image;
  const imageRef = `oci-image@${img.digest}`;
  const components: Array<Record<string, unknown>> = inv.components.map((c) => {
    const scoped = c.ecosystem === 'npm' && c.name.startsWith('@');
    const props: Array<{ name: string; value: string }> = [];
    if (c.source && c.source !== c.name) props.push({ name: 'fhirguard:debian:source', value: `${c.source} ${c.sourceVersion ?? ''}`.trim() });
    return {
      type: 'library',
      'bom-ref': c.purl,
      ...(scoped ? { group: c.name.slice(0, c.name.indexOf('/')), name: c.name.slice(c.name.indexOf('/') + 1) } : { name: c.name }),
      version: c.version,
      purl: c.purl,
      ...(props.length ? { properties: props } : {}),
      evidence: { occurrences: c.locations.map((location) => ({ location })) },
    };
  });
  if (inv.os) {
    components.push({
      type: 'operating-system',
      'bom-ref': `os:${inv.os.id}@${inv.os.versionId ?? ''}`,
      name: inv.os.id,
      ...(inv.os.versionId ? { version: inv.os.versionId } : {}),
      ...(inv.os.prettyName ? { description: inv.os.prettyName } : {}),
    });
  }
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: serialOf(`${img.digest}\n${JSON.stringify(components)}`),
    version: 1,
    metadata: {
      ...(img.config.created ? { timestamp: img.config.created } : {}),
      tools: { components: [{ type: 'application', name: tool.name, version: tool.version }] },
      component: {
        type: 'container',
        'bom-ref': imageRef,
        name: img.config.config?.Labels?.['org.opencontainers.image.title'] ?? 'image',
        version: img.digest,
        ...(img.config.config?.Labels?.['org.opencontainers.image.version']
          ? { properties: [{ name: 'org.opencontainers.image.version', value: img.config.config.Labels['org.opencontainers.image.version'] }] }
          : {}),
      },
    },
    components,
    dependencies: [{ ref: imageRef, dependsOn: components.map((c) => c['bom-ref'] as string) }],
  };
}
