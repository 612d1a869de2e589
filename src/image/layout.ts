// Reading an OCI image layout (a directory with oci-layout, index.json and blobs/sha256/):
// image references, the manifest a reference names, and blobs checked against their digest.
// A reference is `<layout-dir>[:<tag>]` or `<layout-dir>@sha256:<hex>`; without a tag, the
// layout's only image (or the one tagged `latest`).

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, pipeline, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
export const LAYER_GZIP_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const LAYER_TAR_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export class ImageError extends Error {}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ImageRef {
  /** The layout directory (absolute). */
  layout: string;
  tag?: string;
  digest?: string;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: { User?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
  rootfs?: { type: string; diff_ids: string[] };
}

export interface ResolvedImage {
  ref: ImageRef;
  /** The reference as given, for messages and as the image's name. */
  name: string;
  /** sha256:<hex> of the manifest. */
  digest: string;
  manifest: { schemaVersion: number; mediaType?: string; config: Descriptor; layers: Descriptor[]; annotations?: Record<string, string> };
  config: ImageConfig;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Parses `<dir>[:<tag>]` or `<dir>@sha256:<hex>` (a ':' inside the directory path is kept). */
export function parseImageRef(text: string): ImageRef {
  const at = text.lastIndexOf('@');
  if (at > 0 && text.slice(at + 1).startsWith('sha256:')) {
    const digest = text.slice(at + 1);
    if (!DIGEST.test(digest)) throw new ImageError(`${JSON.stringify(text)}: ${digest} is not sha256:<64 hex digits>`);
    return { layout: path.resolve(text.slice(0, at)), digest };
  }
  const colon = text.lastIndexOf(':');
  if (colon > 0 && !text.slice(colon + 1).includes('/')) {
    const tag = text.slice(colon + 1);
    if (!TAG.test(tag)) throw new ImageError(`${JSON.stringify(text)}: ${JSON.stringify(tag)} is not an image tag`);
    return { layout: path.resolve(text.slice(0, colon)), tag };
  }
  return { layout: path.resolve(text) };
}

export function blobPath(layout: string, digest: string): string {
  if (!DIGEST.test(digest)) throw new ImageError(`${digest} is not a sha256 digest`);
  return path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** A blob's bytes, refused unless they hash to its digest (and have the size its descriptor says). */
export function readBlob(layout: string, d: Pick<Descriptor, 'digest'> & { size?: number }): Buffer {
  const file = blobPath(layout, d.digest);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ImageError(`blob ${d.digest} is missing from ${layout}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (actual !== d.digest) throw new ImageError(`blob ${d.digest} in ${layout} is corrupt: its content hashes to ${actual}`);
  if (d.size !== undefined && d.size !== bytes.length) throw new ImageError(`blob ${d.digest} is ${bytes.length} bytes, its descriptor says ${d.size}`);
  return bytes;
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new ImageError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function readIndex(layout: string): { schemaVersion: number; manifests: Descriptor[] } {
  if (!existsSync(path.join(layout, 'oci-layout'))) throw new ImageError(`${layout} is not an OCI image layout (no oci-layout file)`);
  const index = readJson<{ schemaVersion: number; manifests?: Descriptor[] }>(path.join(layout, 'index.json'), 'image index');
  return { schemaVersion: index.schemaVersion, manifests: index.manifests ?? [] };
}

/** The manifest descriptor a reference names in its layout's index. */
export function findManifest(ref: ImageRef): Descriptor {
  const manifests = readIndex(ref.layout).manifests.filter((m) => m.mediaType === MANIFEST_MEDIA_TYPE || m.mediaType === undefined);
  const tagOf = (m: Descriptor): string | undefined => m.annotations?.[REF_NAME_ANNOTATION];
  let found: Descriptor | undefined;
  if (ref.digest) found = manifests.find((m) => m.digest === ref.digest);
  else if (ref.tag) found = manifests.find((m) => tagOf(m) === ref.tag);
  else found = manifests.length === 1 ? manifests[0] : manifests.find((m) => tagOf(m) === 'latest');
  if (!found) {
    const tags = manifests.map(tagOf).filter(Boolean).join(', ') || 'none';
    const what = ref.digest ? `no manifest ${ref.digest}` : ref.tag ? `no image tagged ${ref.tag}` : 'more than one image and none tagged latest: name a tag';
    throw new ImageError(`${ref.layout}: ${what} (tags: ${tags})`);
  }
  return found;
}

/** Resolves a reference to its manifest and config, every blob read checked against its digest. */
export function resolveImage(text: string): ResolvedImage {
  const ref = parseImageRef(text);
  const desc = findManifest(ref);
  const manifest = JSON.parse(readBlob(ref.layout, desc).toString('utf8')) as ResolvedImage['manifest'];
  if (manifest.schemaVersion !== 2 || !manifest.config || !Array.isArray(manifest.layers)) throw new ImageError(`${text}: ${desc.digest} is not an OCI image manifest`);
  const config = JSON.parse(readBlob(ref.layout, manifest.config).toString('utf8')) as ImageConfig;
  return { ref, name: text, digest: desc.digest, manifest, config };
}

/**
 * The manifest digest (`sha256:<hex>`) an image reference names now: what a signed
 * statement binds and what the agent runs. The manifest's bytes are checked against it.
 */
export async function manifestDigest(ref: string): Promise<string> {
  const r = parseImageRef(ref);
  const desc = findManifest(r);
  readBlob(r.layout, desc);
  return desc.digest;
}

/**
 * A layer's uncompressed tar stream. Its compressed bytes are hashed on the way and the
 * stream fails at its end when they do not match the layer's digest.
 */
export function layerStream(layout: string, layer: Descriptor): Readable {
  const gzip = layer.mediaType === LAYER_GZIP_MEDIA_TYPE || layer.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  if (!gzip && layer.mediaType !== LAYER_TAR_MEDIA_TYPE) throw new ImageError(`layer ${layer.digest}: media type ${layer.mediaType} is not supported (tar or tar+gzip)`);
  const hash = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = `sha256:${hash.digest('hex')}`;
      done(actual === layer.digest ? null : new ImageError(`layer ${layer.digest} is corrupt: its content hashes to ${actual}`));
    },
  });
  const out = new PassThrough();
  const fail = (err: NodeJS.ErrnoException | null): void => {
    if (err) out.destroy(err instanceof ImageError ? err : new ImageError(`layer ${layer.digest}: ${err.message}`));
  };
  const raw = createReadStream(blobPath(layout, layer.digest));
  if (gzip) pipeline(raw, check, createGunzip(), out, fail);
  else pipeline(raw, check, out, fail);
  return out;
}
