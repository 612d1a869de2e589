// The agent's worker image (`fhirguard agent --image <layout>[:<tag>]`): the reference is
// resolved once, at start, to a manifest digest that every worker of this agent then runs
// (a tag moved later changes nothing until the agent is restarted or rolled out). The image
// is scanned against the advisory database and gated by the policy before it is unpacked,
// and the gate is decided again before every worker start, so a waiver that expires stops
// the next start. A refused start is a StartRefusedError (reason `scan`): the supervisor
// keeps the worker refused and the tier answers 503.

import type { Logger } from 'pino';
import { StartRefusedError } from '../agent/launchers';
import type { SupplyChainPolicy } from '../policy';
import { imageRootOf, type ImageRoot } from './container';
import { describeDecision } from './scan-gate';
import { resolveImage, type ResolvedImage } from './layout';
import { gateScan, scanImage, type ScanResult } from './scan';
import { unpackImage } from './unpack';

export interface WorkerImageOptions {
  /** `<layout>[:<tag>]` or `<layout>@sha256:<hex>`. */
  ref: string;
  /** The OSV advisory directory the image is scanned against. */
  advisories: string;
  policy: SupplyChainPolicy;
  /** Where unpacked images are kept, one directory per manifest digest. */
  cacheDir: string;
  log: Logger;
  tool: { name: string; version: string };
  umoci?: string;
  now?: () => number;
}

export class WorkerImage {
  private resolved: ResolvedImage | null = null;
  private scanned: ScanResult | null = null;
  private unpacking: Promise<ImageRoot> | null = null;

  constructor(readonly o: WorkerImageOptions) {}

  /** Resolves and scans the image (once); logs the gate's decision. Throws when the image cannot be read. */
  async prepare(): Promise<ScanResult> {
    if (this.scanned) return this.scanned;
    const image = resolveImage(this.o.ref);
    this.resolved = image;
    const scan = await scanImage({ image: this.o.ref, resolved: image, advisories: this.o.advisories, policy: this.o.policy, tool: this.o.tool });
    this.scanned = scan;
    const d = gateScan(scan, this.o.policy, this.now());
    const text = describeDecision(d, `${this.o.ref} (${image.digest})`);
    if (d.refused) this.o.log.error({ image: image.digest, findings: d.blocking.length }, text);
    else this.o.log.info({ image: image.digest, findings: scan.findings.length, waived: d.waived.length }, text);
    return scan;
  }

  /** The manifest digest (`sha256:<hex>`) this agent's workers run. */
  async manifestDigest(): Promise<string> {
    return (await this.prepare()).image.digest;
  }

  /** sha256 (hex) of the image's scan report: what a signed statement binds. */
  async scanDigest(): Promise<string> {
    return (await this.prepare()).reportDigest;
  }

  /**
   * Before a worker start: the gate, decided now, then the unpacked root (unpacked on first
   * use). Throws StartRefusedError('scan') when the gate refuses the image.
   */
  async admit(): Promise<ImageRoot> {
    const scan = await this.prepare();
    const d = gateScan(scan, this.o.policy, this.now());
    if (d.refused) throw new StartRefusedError('scan', describeDecision(d, `${this.o.ref} (${scan.image.digest})`), 'image-scan');
    if (!this.unpacking) {
      const image = this.resolved!;
      this.unpacking = unpackImage(image, this.o.cacheDir, this.o.umoci).then(
        (u) => {
          this.o.log.info({ image: image.digest, rootfs: u.rootfs }, 'worker image unpacked');
          return imageRootOf(image.digest, u.rootfs, image.config);
        },
        (err) => {
          this.unpacking = null; // try again at the next start
          throw err;
        },
      );
    }
    return this.unpacking;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}
