// Unpacking a verified image for runc: `umoci unpack` of exactly the manifest that was
// checked (a private view of the layout whose index names only that digest, so a tag moved
// meanwhile cannot change what is unpacked), once per manifest digest, into the agent's
// state directory. Workers share the unpacked root read-only.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { findManifest, ImageError, REF_NAME_ANNOTATION, type ResolvedImage } from './layout';

const run = promisify(execFile);

export interface UnpackedImage {
  digest: string;
  /** The unpacked root filesystem (runc's root.path). */
  rootfs: string;
}

function cacheDirOf(cache: string, digest: string): string {
  return path.join(cache, digest.replace(':', '-'));
}

/** Unpacks `image` into `<cache>/sha256-<hex>/rootfs` unless it is there already. */
export async function unpackImage(image: ResolvedImage, cache: string, umoci = 'umoci'): Promise<UnpackedImage> {
  const dir = cacheDirOf(cache, image.digest);
  const rootfs = path.join(dir, 'rootfs');
  const done = path.join(dir, 'fhirguard-unpacked');
  if (existsSync(done)) return { digest: image.digest, rootfs };
  await mkdir(cache, { recursive: true, mode: 0o700 });
  const work = path.join(cache, `.unpack-${image.digest.slice(7, 19)}-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { mode: 0o700 });
  try {
    // The view: the layout's blobs, and an index naming only the verified manifest.
    const view = path.join(work, 'layout');
    await mkdir(view);
    await writeFile(path.join(view, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const desc = findManifest({ layout: image.ref.layout, digest: image.digest });
    const pinned = { ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: 'verified' } };
    await writeFile(path.join(view, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [pinned] }));
    await symlink(path.join(image.ref.layout, 'blobs'), path.join(view, 'blobs'));
    const bundle = path.join(work, 'bundle');
    try {
      await run(umoci, ['unpack', '--image', `${view}:verified`, bundle], { maxBuffer: 16 << 20 });
    } catch (err) {
      const e = err as { code?: string; stderr?: string; message: string };
      if (e.code === 'ENOENT') throw new ImageError(`umoci is not installed (${umoci}): apt-get install umoci`);
      throw new ImageError(`umoci unpack of ${image.name} (${image.digest}) failed: ${(e.stderr || e.message).trim()}`);
    }
    // umoci names the manifest it unpacked: it must be the one that was checked.
    if (!existsSync(path.join(bundle, `${image.digest.replace(':', '_')}.mtree`))) {
      throw new ImageError(`umoci unpacked another manifest than ${image.digest}`);
    }
    await chmod(path.join(bundle, 'rootfs'), 0o755);
    await writeFile(path.join(bundle, 'fhirguard-unpacked'), `${image.digest}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(bundle, dir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { digest: image.digest, rootfs };
}
