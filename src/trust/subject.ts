// The subject of a tier's statement: what its workers run. With an image, the image itself
// (its name and manifest digest); without one, the host install the workers are started
// from (digests.ts says what that covers).

import type { WorkerImage } from '../image/worker-image';
import path from 'node:path';
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
