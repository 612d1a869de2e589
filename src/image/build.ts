// `fhirguard image build`: the reference worker as an OCI image layout. fhirguard writes
// each layer's tar itself (content.ts decides what, tar.ts makes the bytes reproducible);
// umoci assembles the layout: blobs, the gzip-compressed layers, the config, the manifest
// and the tag. Every timestamp is SOURCE_DATE_EPOCH (default: the install's last git
// commit), so two builds of the same tree give the same manifest digest.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DATA_DIR_LABEL, IMAGE_DATA_DIR, IMAGE_SOCKET_DIR, planImage, SOCKET_DIR_LABEL, type LayerName } from './content';
import type { DebianPackage } from './debian';
import { findManifest, ImageError, readIndex, REF_NAME_ANNOTATION, resolveImage, type Descriptor } from './layout';
import { writeTar } from './tar';

export interface BuildOptions {
  /** The fhirguard install the worker is built from. */
  install: string;
  /** The OCI layout directory to write (created, or an existing layout the tag is replaced in). */
  output: string;
  tag: string;
  /** Seconds since 1970 for every timestamp in the image. */
  epoch: number;
  umoci?: string;
  log?: (line: string) => void;
}

export interface BuildResult {
  ref: string;
  digest: string;
  layers: Array<{ name: LayerName; digest: string; size: number; entries: number }>;
  packages: DebianPackage[];
}

/** SOURCE_DATE_EPOCH when set, else the time of the install's last git commit, else 0. */
export function defaultEpoch(install: string, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^\d+$/.test(fromEnv)) throw new ImageError(`SOURCE_DATE_EPOCH=${fromEnv} is not a number of seconds`);
    return Number(fromEnv);
  }
  const git = spawnSync('git', ['-C', install, 'log', '-1', '--format=%ct'], { encoding: 'utf8' });
  const t = Number(git.stdout?.trim());
  return git.status === 0 && Number.isInteger(t) && t > 0 ? t : 0;
}

function ociArch(): string {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return arch[process.arch] ?? process.arch;
}

function umoci(bin: string, args: string[]): void {
  try {
    execFileSync(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new ImageError(`umoci is not installed (${bin}): apt-get install umoci`);
    throw new ImageError(`umoci ${args.slice(0, 2).join(' ')} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Puts the image tagged `tag` of layout `from` into layout `to` (blobs copied, tag replaced). */
function mergeLayout(from: string, to: string, tag: string, bin: string): void {
  if (!existsSync(to)) {
    mkdirSync(path.dirname(to), { recursive: true });
    renameSync(from, to);
    return;
  }
  const index = readIndex(to);
  const desc = findManifest({ layout: from, tag });
  const blobs = path.join(to, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  for (const b of readdirSync(path.join(from, 'blobs', 'sha256'))) {
    if (!existsSync(path.join(blobs, b))) copyFileSync(path.join(from, 'blobs', 'sha256', b), path.join(blobs, b));
  }
  const manifests: Descriptor[] = [...index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag), desc];
  const tmp = path.join(to, `.index.json.${process.pid}`);
  writeFileSync(tmp, JSON.stringify({ ...index, schemaVersion: 2, manifests }));
  renameSync(tmp, path.join(to, 'index.json'));
  umoci(bin, ['gc', '--layout', to]);
}

export function buildImage(o: BuildOptions): BuildResult {
  const bin = o.umoci ?? 'umoci';
  const log = o.log ?? (() => undefined);
  const output = path.resolve(o.output);
  if (existsSync(output) && readdirSync(output).length && !existsSync(path.join(output, 'oci-layout'))) {
    throw new ImageError(`${output} exists and is not an OCI image layout: name a new directory`);
  }
  const created = new Date(o.epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
  const plan = planImage(o.install);
  mkdirSync(path.dirname(output), { recursive: true });
  const work = mkdtempSync(path.join(path.dirname(output), `.${path.basename(output)}.build-`));
  try {
    const layout = path.join(work, 'layout');
    const image = `${layout}:${o.tag}`;
    umoci(bin, ['init', '--layout', layout]);
    umoci(bin, ['new', '--image', image]);
    const layers: BuildResult['layers'] = [];
    for (const layer of plan.layers) {
      const tar = path.join(work, `${layer.name}.tar`);
      const { entries, bytes } = writeTar(tar, layer.entries, o.epoch);
      log(`layer ${layer.name}: ${entries} entries, ${(bytes / 1048576).toFixed(1)} MiB uncompressed`);
      umoci(bin, ['raw', 'add-layer', '--image', image, '--history.created', created, '--history.author', 'fhirguard', '--history.created_by', layer.description, tar]);
      rmSync(tar);
      layers.push({ name: layer.name, digest: '', size: 0, entries });
    }
    const config = [
      ...['--created', created, '--author', 'fhirguard', '--os', 'linux', '--architecture', ociArch()],
      '--clear=config.env',
      '--clear=config.entrypoint',
      '--clear=config.cmd',
      ...plan.entrypoint.flatMap((a) => ['--config.entrypoint', a]),
      ...['--config.cmd', 'worker', '--config.user', '65534:65534', '--config.workingdir', '/'],
      ...['PATH=/usr/bin:/bin', 'HOME=/nonexistent'].flatMap((e) => ['--config.env', e]),
      ...[
        'org.opencontainers.image.title=fhirguard-worker',
        `org.opencontainers.image.version=${plan.version}`,
        `org.opencontainers.image.created=${created}`,
        `${DATA_DIR_LABEL}=${IMAGE_DATA_DIR}`,
        `${SOCKET_DIR_LABEL}=${IMAGE_SOCKET_DIR}`,
      ].flatMap((l) => ['--config.label', l]),
    ];
    umoci(bin, ['config', '--image', image, '--no-history', ...config]);
    umoci(bin, ['gc', '--layout', layout]);
    const desc = findManifest({ layout, tag: o.tag });
    mergeLayout(layout, output, o.tag, bin);
    const built = resolveImage(`${output}@${desc.digest}`);
    built.manifest.layers.forEach((l, i) => Object.assign(layers[i], { digest: l.digest, size: l.size }));
    return { ref: `${output}:${o.tag}`, digest: desc.digest, layers, packages: plan.packages };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
