// The subject of a tier's statement: what its workers run. With an image, the image itself
// (its name and manifest digest); without one, the host install the workers are started
// from (digests.ts says what that covers); for a tier an operator's server serves, the
// files its policy names as its artifacts (its jar).

import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { WorkerImage } from '../image/worker-image';
import path from 'node:path';
import type { ServerConfig } from '../policy';
import { InstallDigest } from './digests';
import type { Subject, SubjectKind } from './statement';

export interface SubjectSource {
  readonly kind: SubjectKind;
  /** The subject as it is now (recomputed, or unchanged files taken from a stat cache). */
  current(): Promise<Subject>;
}

/** The name install statements give their subject. */
export const INSTALL_SUBJECT_NAME = 'fhirguard-install';

/** The stat cache of the install digest, in the agent's (and `up`'s) state directory. */
export function installCacheFile(stateDir: string): string {
  return path.join(stateDir, 'trust', 'install-digest.json');
}

export class InstallSubject implements SubjectSource {
  readonly kind = 'install';
  private readonly tree: InstallDigest;

  /** `cacheFile`: where the install's stat cache is kept between processes (digests.ts). */
  constructor(install: string, node?: string, cacheFile?: string) {
    this.tree = new InstallDigest(install, node, cacheFile);
  }

  async current(): Promise<Subject> {
    const d = await this.tree.digest();
    return { name: INSTALL_SUBJECT_NAME, digest: { sha256: d.sha256 } };
  }
}

/** An image named by reference and manifest digest, the digest found by `manifestDigest`. */
export class ImageSubject implements SubjectSource {
  readonly kind = 'image';

  constructor(
    readonly name: string,
    private readonly manifestDigest: () => Promise<string>,
  ) {}

  async current(): Promise<Subject> {
    const d = (await this.manifestDigest()).replace(/^sha256:/, '');
    return { name: this.name, digest: { sha256: d } };
  }
}

/** What a gate over an agent's image compares: the image's manifest digest and its scan report. */
export function imageSubject(image: WorkerImage): { subject: SubjectSource; scanDigest: () => Promise<string> } {
  return { subject: new ImageSubject(image.o.ref, () => image.manifestDigest()), scanDigest: () => image.scanDigest() };
}

/** The files a server tier's statement binds: its `artifacts`, else the files among its read-only paths and its program. */
export function serverArtifacts(server: ServerConfig): string[] {
  if (server.artifacts.length) return [...server.artifacts].sort();
  const files = [server.command[0], ...server.readOnly].filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
  return [...new Set(files)].sort();
}

/** File digests by identity and change time: a jar is hashed again only when it changed. */
const fileDigests = new Map<string, { key: string; sha256: string }>();

async function fileDigest(file: string): Promise<string> {
  const st = statSync(file);
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  const known = fileDigests.get(file);
  if (known?.key === key) return known.sha256;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  const sha256 = h.digest('hex');
  fileDigests.set(file, { key, sha256 });
  return sha256;
}

/** An operator's server: the digest of `<sha256>  <path>` lines of its artifacts, sorted by path. */
export class ServerSubject implements SubjectSource {
  readonly kind = 'server';

  constructor(
    readonly tier: string,
    private readonly server: ServerConfig,
  ) {}

  async current(): Promise<Subject> {
    const files = serverArtifacts(this.server);
    if (files.length === 0) throw new Error(`tier ${this.tier}: its server names no file to sign (give server.artifacts)`);
    const lines = [];
    for (const f of files) lines.push(`${await fileDigest(f)}  ${f}\n`);
    return { name: `server:${this.tier}`, digest: { sha256: createHash('sha256').update(lines.join('')).digest('hex') } };
  }
}
