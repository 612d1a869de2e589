// The Dockerfile, checked without a Docker engine (these machines have none): its stages and
// users, that every COPY source exists in a clean clone of the repository (after
// .dockerignore), and the builder stage's steps run the way Docker runs them (WORKDIR, COPY
// into an empty tree, RUN under sh -c) on a fresh `git clone`. The runtime stages' files are
// then assembled from the builder's output and the CLI is run from them, a worker included.
//
// Time: `npm ci` builds better-sqlite3 from source (about 80 s here); the RUN steps use the
// machine's npm cache (~/.npm, or $npm_config_cache) with prefer-offline, as a BuildKit cache
// mount would, so no package is downloaded twice.
//
// Node: the builder's steps run on a Node of the images' major, so the native binding is built
// and loaded by the Node the images carry. That is this machine's Node when the majors agree,
// otherwise the Node installation FHIRGUARD_IMAGE_NODE names (a directory holding bin/node
// and include/node, e.g. an official nodejs.org tarball unpacked). Without one the steps run
// on this machine's Node and the test says loudly that the image's Node was not tried.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import dockerignore from '@balena/dockerignore';
import { Client } from 'undici';
import { aptPackages, copies, effectiveUser, isRootUser, lineage, parseDockerfile, type Stage } from './dockerfile';
import semver from 'semver';
import { nodeSupport } from './node-support';

const REPO = resolve(__dirname, '..', '..');
const stages = parseDockerfile(join(REPO, 'Dockerfile'));
const stage = (name: string): Stage => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`Dockerfile has no stage ${name}`);
  return s;
};

let tmp: string;
let context: string;
let contextFiles: Set<string>;

function walk(dir: string, base = dir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === '.git' && dir === base) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, base, out);
    else out.push(relative(base, p).split('\\').join('/'));
  }
  return out;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'fg-dockerfile-'));
  context = join(tmp, 'context');
  // A clean copy: what `git clone` of this repository gives, nothing built, nothing untracked.
  execFileSync('git', ['clone', '--quiet', REPO, context], { stdio: 'pipe' });
  const ignore = dockerignore({ ignorecase: false }).add(readFileSync(join(REPO, '.dockerignore'), 'utf8'));
  contextFiles = new Set(walk(context).filter((f) => !ignore.ignores(f)));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The context files a COPY source names (a file, or every file under a directory). */
function contextMatches(source: string): string[] {
  const s = posix.normalize(source).replace(/^\.\//, '').replace(/\/$/, '');
  if (contextFiles.has(s)) return [s];
  return [...contextFiles].filter((f) => f.startsWith(`${s}/`));
}

/** Docker's COPY: a directory's contents go into dest; a file into dest/ or onto dest. */
function copyInto(fromRoot: string, source: string, toRoot: string, workdir: string, dest: string, files?: string[]): void {
  const target = join(toRoot, posix.resolve(workdir, dest));
  const src = posix.normalize(source).replace(/^\.\//, '').replace(/\/$/, '');
  const abs = join(fromRoot, src);
  if (files) {
    for (const f of files) {
      const rel = f === src ? '' : f.slice(src.length + 1);
      const to = rel === '' ? (dest.endsWith('/') ? join(target, posix.basename(f)) : target) : join(target, rel);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(join(fromRoot, f), to);
    }
    return;
  }
  if (!existsSync(abs)) throw new Error(`COPY source ${source} does not exist`);
  if (statSync(abs).isDirectory()) {
    mkdirSync(target, { recursive: true });
    cpSync(abs, target, { recursive: true });
  } else {
    const to = dest.endsWith('/') ? join(target, posix.basename(src)) : target;
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(abs, to);
  }
}

/** The Node major of the images (the builder's base). */
const IMAGE_NODE_MAJOR = Number(/node:(\d+)-/.exec(stage('builder').base)?.[1]);

/**
 * The Node installation the builder's steps run on: this machine's when its major is the
 * images', else FHIRGUARD_IMAGE_NODE's when that is the images' major, else this machine's
 * (and `matches` false: the images' Node was not tried).
 */
function builderNode(): { prefix?: string; version: string; matches: boolean } {
  const hostMajor = Number(process.versions.node.split('.')[0]);
  if (hostMajor === IMAGE_NODE_MAJOR) return { version: process.version, matches: true };
  const prefix = process.env.FHIRGUARD_IMAGE_NODE;
  if (prefix) {
    const version = execFileSync(join(prefix, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
    if (Number(version.slice(1).split('.')[0]) !== IMAGE_NODE_MAJOR) throw new Error(`FHIRGUARD_IMAGE_NODE is Node ${version}, the images run Node ${IMAGE_NODE_MAJOR}`);
    return { prefix, version, matches: true };
  }
  return { version: process.version, matches: false };
}

function dpkgInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

describe('Dockerfile stages', () => {
  it('has the builder, the shared runtime base, the worker, agent, bridge and proxy targets, proxy by default', () => {
    expect(stages.map((s) => s.name)).toEqual(['builder', 'app', 'worker', 'agent', 'bridge', 'proxy']);
    for (const t of ['worker', 'agent', 'proxy']) expect(lineage(stages, t).map((s) => s.name)).toEqual(['app', t]);
    // The bridge holds socat only: no Node, no fhirguard.
    expect(lineage(stages, 'bridge').map((s) => s.base)).toEqual(['docker.io/library/debian:bookworm-slim']);
  });

  it('builds on Debian Node images of one LTS major, the one docs/deploy.md names for the images', () => {
    const builder = /^docker\.io\/library\/node:(\d+)-bookworm$/.exec(stage('builder').base);
    const runtime = /^docker\.io\/library\/node:(\d+)-bookworm-slim$/.exec(stage('app').base);
    expect(builder).not.toBeNull();
    expect(runtime).not.toBeNull();
    const major = Number(builder?.[1]);
    // The native SQLite binding built by the builder loads only on the same major.
    expect(Number(runtime?.[1])).toBe(major);
    expect(IMAGE_NODE_MAJOR).toBe(major);
    const table = nodeSupport(join(REPO, 'docs', 'deploy.md'));
    expect(table.filter((r) => r.image).map((r) => r.major)).toEqual([major]);
    expect(table.find((r) => r.major === major)?.status).toMatch(/LTS/);
    // Node 20 reached its end of life on 2026-04-30: no image is built on it.
    expect(major).toBeGreaterThan(20);
  });

  it('lists in docs/deploy.md only Node majors that package.json and the native SQLite binding admit', () => {
    const engines = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).engines.node;
    const sqlite = JSON.parse(readFileSync(join(REPO, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')).engines.node;
    const table = nodeSupport(join(REPO, 'docs', 'deploy.md'));
    expect(table.length).toBeGreaterThan(1);
    for (const r of table.filter((x) => x.host || x.image)) {
      expect({ major: r.major, engines: semver.intersects(`${r.major}.x`, engines), sqlite: semver.intersects(`${r.major}.x`, sqlite) }).toEqual({ major: r.major, engines: true, sqlite: true });
    }
    // This machine's Node is one the table says the tests run on.
    const here = Number(process.versions.node.split('.')[0]);
    expect(table.find((r) => r.major === here)?.tested).toBe(true);
  });

  it('installs the compilers and eBPF tool chain in the builder, runc and the loader libraries in the agent', () => {
    const builderApt = stage('builder')
      .steps.filter((s) => s.keyword === 'RUN')
      .flatMap((s) => aptPackages(s.args));
    expect(builderApt).toEqual(expect.arrayContaining(['clang', 'llvm', 'libbpf-dev', 'bpftool', 'python3', 'make', 'g++']));
    const agentApt = stage('agent')
      .steps.filter((s) => s.keyword === 'RUN')
      .flatMap((s) => aptPackages(s.args));
    expect(agentApt).toEqual(expect.arrayContaining(['runc', 'libbpf1', 'libelf1']));
    const bridgeApt = stage('bridge')
      .steps.filter((s) => s.keyword === 'RUN')
      .flatMap((s) => aptPackages(s.args));
    expect(bridgeApt).toEqual(['socat']);
  });

  it('runs the proxy and the worker as a non-root user the image creates, and only the agent as root', () => {
    for (const t of ['proxy', 'worker', 'bridge']) {
      const user = effectiveUser(stages, t);
      expect(isRootUser(user)).toBe(false);
      const uid = user.split(':')[0];
      const created = lineage(stages, t)
        .flatMap((s) => s.steps)
        .some((s) => s.keyword === 'RUN' && new RegExp(`useradd\\b.*--uid ${uid}\\b`).test(s.args));
      expect({ target: t, uid, created }).toEqual({ target: t, uid, created: true });
    }
    expect(isRootUser(effectiveUser(stages, 'agent'))).toBe(true);
  });

  it('starts each target with the fhirguard command of its role', () => {
    const cmd = (t: string): string[] => {
      const steps = lineage(stages, t).flatMap((s) => s.steps);
      return JSON.parse([...steps].reverse().find((s) => s.keyword === 'CMD')?.args ?? '[]');
    };
    expect(cmd('proxy')[0]).toBe('proxy');
    expect(cmd('worker')[0]).toBe('worker');
    expect(cmd('agent')[0]).toBe('agent');
    const entry = stage('app').steps.find((s) => s.keyword === 'ENTRYPOINT');
    expect(JSON.parse(entry?.args ?? '[]')).toEqual(['/opt/fhirguard/bin/fhirguard']);
  });

  it('copies from the build context only files a clean clone has and .dockerignore lets through', () => {
    const fromContext = copies(stages).filter((c) => c.from === undefined);
    expect(fromContext.length).toBeGreaterThan(0);
    const missing = fromContext.flatMap((c) => c.sources.filter((s) => contextMatches(s).length === 0).map((s) => `line ${c.line}: ${s}`));
    expect(missing).toEqual([]);
  });

  it('points the agent at the eBPF loader where its stage copies it (bpf/Makefile is not in the image to find it by)', () => {
    const steps = stage('agent').steps;
    const workdir =
      lineage(stages, 'agent')
        .flatMap((s) => s.steps)
        .filter((s) => s.keyword === 'WORKDIR')
        .pop()
        ?.args.trim() ?? '/';
    const loaderCopy = copies(stages).find((c) => c.stage === 'agent' && c.sources.some((src) => src.endsWith('/fhirguard-bpf')));
    const env = steps.find((s) => s.keyword === 'ENV' && s.args.startsWith('FHIRGUARD_BPF_LOADER='));
    expect(loaderCopy).toBeDefined();
    expect(env?.args.split('=')[1]).toBe(posix.resolve(workdir, loaderCopy?.dest as string));
  });

  it('copies between stages only from stages that exist earlier', () => {
    const names = stages.map((s) => s.name);
    for (const c of copies(stages).filter((c) => c.from !== undefined)) {
      expect(names.indexOf(c.from as string)).toBeGreaterThanOrEqual(0);
      expect(names.indexOf(c.from as string)).toBeLessThan(names.indexOf(c.stage));
    }
  });
});

describe('the builder stage run as Docker runs it, on a clean clone', () => {
  let rootfs: string;
  let image: string;
  let worker: ChildProcess | undefined;

  afterAll(() => {
    worker?.kill('SIGKILL');
  });

  /** The image's files run on the builder's Node (bin/fhirguard finds node on PATH). */
  const runtimeEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: node.prefix ? `${join(node.prefix, 'bin')}:${process.env.PATH}` : process.env.PATH });

  const node = builderNode();
  it(`runs on a Node of the images' major (${IMAGE_NODE_MAJOR}): ${node.matches ? `${node.version}` : `NOT TRIED, ${node.version} stands in; set FHIRGUARD_IMAGE_NODE`}`, () => {
    if (!node.matches)
      console.warn(
        `dockerfile.test: the images run Node ${IMAGE_NODE_MAJOR}; the builder steps below ran on this machine's ${node.version}. Set FHIRGUARD_IMAGE_NODE to a Node ${IMAGE_NODE_MAJOR} installation to build and load the native binding with it.`,
      );
    expect(node.version).toMatch(/^v\d+\./);
  });

  it('runs every builder step: npm ci, tsc, the R4 model, make -C bpf, npm prune', () => {
    rootfs = join(tmp, 'builder');
    mkdirSync(rootfs);
    let workdir = '/';
    const env: NodeJS.ProcessEnv = {
      PATH: node.prefix ? `${join(node.prefix, 'bin')}:${process.env.PATH}` : process.env.PATH,
      // node-gyp builds against the headers of the Node that runs it, from its own installation.
      ...(node.prefix ? { npm_config_nodedir: node.prefix } : {}),
      // Where the registry is reached through a TLS-inspecting proxy, the machine's extra CA
      // (a nodejs.org Node trusts only its bundled CAs, where Debian's uses the system store).
      ...(process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } : {}),
      HOME: process.env.HOME,
      // The machine's npm cache stands in for a BuildKit cache mount.
      npm_config_cache: process.env.npm_config_cache ?? join(process.env.HOME ?? '/root', '.npm'),
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
    };
    const ran: string[] = [];
    for (const st of stage('builder').steps) {
      if (st.keyword === 'WORKDIR') {
        workdir = posix.resolve(workdir, st.args.trim());
        mkdirSync(join(rootfs, workdir), { recursive: true });
      } else if (st.keyword === 'ENV') {
        for (const m of st.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
      } else if (st.keyword === 'COPY') {
        const parts = st.args.split(/\s+/);
        const dest = parts[parts.length - 1];
        for (const src of parts.slice(0, -1)) {
          const files = contextMatches(src);
          expect({ line: st.line, src, found: files.length > 0 }).toEqual({ line: st.line, src, found: true });
          copyInto(context, src, rootfs, workdir, dest, files);
        }
      } else if (st.keyword === 'RUN') {
        const pkgs = aptPackages(st.args);
        if (pkgs.length > 0) {
          // The image's package installation: here the same Debian packages must already be
          // installed (scripts/apt-packages.txt brings them).
          expect({ line: st.line, missing: pkgs.filter((p) => !dpkgInstalled(p)) }).toEqual({ line: st.line, missing: [] });
          continue;
        }
        const r = spawnSync('/bin/sh', ['-c', st.args], { cwd: join(rootfs, workdir), env, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
        if (r.status !== 0) throw new Error(`RUN ${st.args} (line ${st.line}) failed with ${r.status ?? r.signal}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        ran.push(st.args);
      } else {
        throw new Error(`the builder emulation does not handle ${st.keyword} (line ${st.line})`);
      }
    }
    expect(ran).toEqual(expect.arrayContaining(['npm ci --no-audit --no-fund', 'npx tsc -p tsconfig.json', 'node dist/src/fhir/validate/model/generate.js', 'make -C bpf']));
  }, 900_000);

  it('produces every file the runtime stages copy from the builder', () => {
    const fromBuilder = copies(stages).filter((c) => c.from === 'builder');
    expect(fromBuilder.length).toBeGreaterThan(0);
    const missing = fromBuilder.flatMap((c) => c.sources.filter((s) => !existsSync(join(rootfs, s))).map((s) => `line ${c.line}: ${s}`));
    expect(missing).toEqual([]);
    // Production dependencies only in the images.
    expect(existsSync(join(rootfs, 'build', 'node_modules', 'typescript'))).toBe(false);
    // The validator's model is a build product the runtime reads at start.
    expect(existsSync(join(rootfs, 'build', 'dist', 'model', 'r4-model.json'))).toBe(true);
    expect(existsSync(join(rootfs, 'build', 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toBe(true);
  });

  it('assembles the runtime files whose CLI runs every command the targets start', () => {
    image = join(tmp, 'image');
    for (const s of lineage(stages, 'agent')) {
      let workdir = '/';
      for (const st of s.steps) {
        if (st.keyword === 'WORKDIR') workdir = posix.resolve(workdir, st.args.trim());
        if (st.keyword !== 'COPY') continue;
        const parts = st.args.split(/\s+/);
        const dest = parts[parts.length - 1];
        for (const src of parts.slice(0, -1)) {
          if (st.flags.from === 'builder') copyInto(rootfs, src.replace(/^\//, ''), image, workdir, dest);
          else copyInto(context, src, image, workdir, dest, contextMatches(src));
        }
      }
    }
    const bin = join(image, 'opt', 'fhirguard', 'bin', 'fhirguard');
    const help = spawnSync(bin, ['--help'], { encoding: 'utf8', env: runtimeEnv() });
    expect(help.status).toBe(0);
    // The image knows its version (package.json is copied in): `fhirguard --version`, build info.
    const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
    expect(spawnSync(bin, ['--version'], { encoding: 'utf8', env: runtimeEnv() }).stdout).toBe(`fhirguard ${version}\n`);
    const failed = ['proxy', 'worker', 'agent']
      .map((cmd) => ({ cmd, r: spawnSync(bin, [cmd, '--help'], { encoding: 'utf8', env: runtimeEnv() }) }))
      .filter(({ r }) => r.status !== 0)
      .map(({ cmd, r }) => `${cmd} --help: exit ${r.status}: ${r.stderr.split('\n')[0]}`);
    expect(failed).toEqual([]);
  });

  it('serves FHIR from a worker started out of those files alone', async () => {
    const bin = join(image, 'opt', 'fhirguard', 'bin', 'fhirguard');
    const socket = join(tmp, 'worker.sock');
    mkdirSync(join(tmp, 'data'));
    worker = spawn(bin, ['worker', '--tier', 'write', '--db', join(tmp, 'data', 'fhirguard.db'), '--listen', `unix:${socket}`], { stdio: ['ignore', 'ignore', 'pipe'], env: runtimeEnv() });
    let stderr = '';
    worker.stderr?.on('data', (d) => (stderr += d));
    const client = new Client('http://localhost', { socketPath: socket });
    try {
      const deadline = Date.now() + 120_000;
      let status = 0;
      while (Date.now() < deadline && worker.exitCode === null) {
        try {
          const res = await client.request({ method: 'GET', path: '/metadata', headers: { accept: 'application/fhir+json' } });
          const body = (await res.body.json()) as { resourceType?: string };
          status = res.statusCode;
          expect(body.resourceType).toBe('CapabilityStatement');
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      expect({ status, stderr: status === 200 ? '' : stderr }).toEqual({ status: 200, stderr: '' });
    } finally {
      await client.close();
      worker.kill('SIGTERM');
    }
  }, 180_000);
});
