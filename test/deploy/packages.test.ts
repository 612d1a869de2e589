// Which Debian packages each make target installs (Makefile -> scripts/install.sh <section> ->
// scripts/apt-packages.sh), checked against what the code runs: `make up` gets what building
// and running fhirguard needs and no test or benchmark tool, `make test` and `make bench` get
// theirs. The commands are found in the sources (spawn/execFile calls with a literal command,
// option defaults named after their command, absolute /usr/bin paths) and in bpf/Makefile; a
// command this test cannot place in a package fails it, so a new one gets classified.

import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '..', '..');

/** The Debian package of each command the code runs. */
const PACKAGE_OF: Record<string, string> = {
  runc: 'runc',
  umoci: 'umoci',
  clang: 'clang',
  cc: 'gcc',
  gcc: 'gcc',
  'g++': 'g++',
  make: 'make',
  python3: 'python3',
  bpftool: 'bpftool',
  'pkg-config': 'pkg-config',
  prometheus: 'prometheus',
  promtool: 'prometheus',
  wrk: 'wrk',
  openssl: 'openssl',
  git: 'git',
  // Part of every Debian system (priority required): never installed by fhirguard.
  '/bin/sh': 'dash',
  tar: 'tar',
  mount: 'mount',
  umount: 'mount',
  ldd: 'libc-bin',
  taskset: 'util-linux',
  dmesg: 'util-linux',
  dpkg: 'dpkg',
  'dpkg-query': 'dpkg',
  getent: 'libc-bin',
  useradd: 'passwd',
  userdel: 'passwd',
  groupadd: 'passwd',
  groupdel: 'passwd',
  nologin: 'login',
};
const BASE_SYSTEM = new Set(['dash', 'tar', 'mount', 'libc-bin', 'util-linux', 'dpkg', 'passwd', 'login']);
/** Commands that come with Node.js, which scripts/install.sh requires before anything else. */
const WITH_NODE = new Set(['node', 'npm']);

/** Commands the code runs only when present, falling back without them. */
const OPTIONAL: Record<string, string> = {
  'src/image/build.ts git': 'the image epoch falls back to 0 (or SOURCE_DATE_EPOCH) outside a git checkout',
  'test/deploy/kustomize.ts kubectl': 'the kubectl kustomize comparison is skipped without kubectl (not a Debian package)',
};

function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${dir}/${f}`);
}

/** Commands a TypeScript file runs, as `<file> <command>`. */
function commandsIn(file: string): string[] {
  const text = readFileSync(join(REPO, file), 'utf8');
  const found = new Set<string>();
  for (const m of text.matchAll(/\b(?:spawn|spawnSync|execFile|execFileSync)\(\s*'([^']+)'/g)) found.add(m[1]);
  // `umoci = 'umoci'`, `o.umoci ?? 'umoci'`: an option defaulting to the command of its name.
  for (const m of text.matchAll(/\b([a-z][\w]*)\s*(?:=|\?\?)\s*'([a-z][\w-]*)'/g)) if (m[1] === m[2] && PACKAGE_OF[m[2]]) found.add(m[2]);
  for (const m of text.matchAll(/'\/usr\/s?bin\/([\w.+-]+)'/g)) found.add(m[1]);
  return [...found].map((c) => `${file} ${c}`);
}

/** The install section each make target's prerequisites run (`scripts/install.sh <section>`). */
function installSection(target: string): string {
  const lines = readFileSync(join(REPO, 'Makefile'), 'utf8').split('\n');
  const rules = new Map<string, { prereqs: string[]; recipe: string[] }>();
  let current: { prereqs: string[]; recipe: string[] } | undefined;
  for (const l of lines) {
    const rule = /^([\w.-]+):(?!=)\s*(.*)$/.exec(l);
    if (rule) rules.set(rule[1], (current = { prereqs: rule[2].split(/\s+/).filter(Boolean), recipe: [] }));
    else if (l.startsWith('\t') && current) current.recipe.push(l.trim());
    else if (!l.startsWith('\t')) current = undefined;
  }
  const sections: string[] = [];
  const visit = (t: string): void => {
    const r = rules.get(t);
    if (!r) throw new Error(`Makefile has no target ${t}`);
    r.prereqs.forEach(visit);
    for (const c of r.recipe) for (const m of c.matchAll(/scripts\/install\.sh\s+(\w+)/g)) sections.push(m[1]);
    if (r.recipe.some((c) => /scripts\/install\.sh\s*$/.test(c))) sections.push('run');
  };
  visit(target);
  if (sections.length !== 1) throw new Error(`make ${target} runs scripts/install.sh ${sections.length} times (${sections.join(', ')})`);
  return sections[0];
}

function packagesOf(section: string): Set<string> {
  return new Set(
    execFileSync(join(REPO, 'scripts', 'apt-packages.sh'), [section], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean),
  );
}

const installs = Object.fromEntries(['up', 'test', 'bench'].map((t) => [t, packagesOf(installSection(t))])) as Record<'up' | 'test' | 'bench', Set<string>>;

/** Problems with the commands of some files against what a make target installs. */
function missingFor(files: string[], target: 'up' | 'test' | 'bench'): string[] {
  const problems: string[] = [];
  for (const use of files.flatMap(commandsIn)) {
    const command = use.split(' ')[1];
    const pkg = PACKAGE_OF[command];
    if (OPTIONAL[use]) continue;
    if (WITH_NODE.has(command)) {
      if (!/npm ci/.test(readFileSync(join(REPO, 'scripts', 'install.sh'), 'utf8'))) problems.push(`${use}: scripts/install.sh no longer requires Node.js and npm`);
      continue;
    }
    if (pkg === undefined) problems.push(`${use}: no Debian package known for ${command} (add it to PACKAGE_OF)`);
    else if (!BASE_SYSTEM.has(pkg) && !installs[target].has(pkg)) problems.push(`${use}: make ${target} does not install ${pkg}`);
  }
  return problems;
}

describe('Debian packages per make target', () => {
  test('make up, make test and make bench each install one section; CI runs make test', () => {
    expect(['up', 'test', 'bench'].map(installSection)).toEqual(['run', 'test', 'bench']);
    expect(readFileSync(join(REPO, '.ci', 'run'), 'utf8')).toMatch(/^exec make test$/m);
  });

  test('make up installs no test or benchmark tool; make test and make bench install theirs', () => {
    expect({ prometheus: installs.up.has('prometheus'), wrk: installs.up.has('wrk') }).toEqual({ prometheus: false, wrk: false });
    expect(installs.test.has('prometheus')).toBe(true);
    expect(installs.bench.has('wrk')).toBe(true);
    // The test suite and the benchmarks build and run fhirguard too.
    for (const p of installs.up) expect({ p, test: installs.test.has(p), bench: installs.bench.has(p) }).toEqual({ p, test: true, bench: true });
  });

  test('make up installs every command fhirguard runs and bpf/Makefile builds with', () => {
    expect(missingFor(sources('src'), 'up')).toEqual([]);
    const bpfMake = readFileSync(join(REPO, 'bpf', 'Makefile'), 'utf8');
    for (const tool of ['clang', 'cc', 'bpftool', 'pkg-config']) {
      expect(bpfMake).toMatch(new RegExp(`\\b${tool.replace('+', '\\+')}\\b`));
      expect({ tool, installed: installs.up.has(PACKAGE_OF[tool]) }).toEqual({ tool, installed: true });
    }
    // npm ci builds better-sqlite3 from source with node-gyp.
    for (const tool of ['python3', 'make', 'g++']) expect({ tool, installed: installs.up.has(PACKAGE_OF[tool]) }).toEqual({ tool, installed: true });
  });

  test('make test installs every command the tests run, make bench every command the benchmarks run', () => {
    expect(missingFor(sources('test'), 'test')).toEqual([]);
    expect(missingFor(sources('bench'), 'bench')).toEqual([]);
  });

  test('finds the commands it checks (the scan works)', () => {
    const src = sources('src')
      .flatMap(commandsIn)
      .map((u) => u.split(' ')[1]);
    expect(src).toEqual(expect.arrayContaining(['runc', 'umoci']));
    const tests = sources('test')
      .flatMap(commandsIn)
      .map((u) => u.split(' ')[1]);
    expect(tests).toEqual(expect.arrayContaining(['prometheus', 'promtool', 'openssl']));
    expect(
      sources('bench')
        .flatMap(commandsIn)
        .map((u) => u.split(' ')[1]),
    ).toContain('wrk');
  });

  test('counts as base system only packages every Debian system has (priority required)', () => {
    for (const pkg of BASE_SYSTEM) {
      const r = spawnSync('dpkg-query', ['-W', '-f=${Priority}', pkg], { encoding: 'utf8' });
      expect({ pkg, priority: r.stdout }).toEqual({ pkg, priority: 'required' });
    }
  });

  test('scripts/apt-packages.sh refuses an unknown section', () => {
    const r = spawnSync(join(REPO, 'scripts', 'apt-packages.sh'), ['deploy'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
  });
});
