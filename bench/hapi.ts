// `npm run bench:hapi` (root): what fhirguard costs a real FHIR server. HAPI FHIR JPA on
// PostgreSQL (examples/hapi), measured in one run four ways on read, search, create and
// transaction:
//   direct       HAPI as a plain process, the load straight at its Unix socket
//   unconfined   through fhirguard's proxy to that same HAPI
//   seccomp      through the proxy to HAPI run by the agent in its container under its tier's
//                seccomp profile, without eBPF (agent --without-ebpf)
//   seccomp+ebpf the same with the tier's eBPF policy in its serve phase: production
// Each variant runs HAPI's write tier (the example policy's write server, every interaction
// routed to it). Rounds alternate the variants (ABBA...) so a drifting machine is shared out;
// each round is a warmed-up autocannon run of fixed length, throughput and CPU per request
// (HAPI's JVM, and the proxy's) recorded. Target: seccomp+ebpf ≥ 97% of unconfined.
// BENCH_ROUNDS, BENCH_SECONDS, BENCH_WARMUP (first round, per variant) and BENCH_WORKLOADS tune it.

import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { AgentClient } from '../src/agent-api/client';
import { resolveIdentities } from '../src/enforce/identities';
import { cpuSeconds } from './lib/cpu-time';
import { HAPI_PROFILES, hapiJar, hapiWorld, type HapiWorld } from './lib/hapi';
import { runLoad, type LoadRequest } from './lib/loadgen';
import { describe as describeMachine, load, machine as machineInfo } from './lib/machine';
import { freePort, spawnLogged, stopAll, waitFor } from './lib/procs';
import { stats, type Stats } from './lib/stats';
import { BIN, ROOT } from './lib/system';

const TARGET = 0.97;
const VARIANTS = ['direct', 'unconfined', 'seccomp', 'seccomp+ebpf'] as const;
type Variant = (typeof VARIANTS)[number];

interface Target {
  variant: Variant;
  origin: string;
  socketPath?: string;
  /** The FHIR base path on that origin ('' straight at HAPI, '/fhir' through the proxy). */
  base: string;
  /** HAPI's JVM and, through fhirguard, the proxy: whose CPU a request costs. */
  jvm: () => number;
  proxy: () => number | null;
}

const children: ChildProcess[] = [];

/** The example policy with one tier, `write`, served by HAPI's write server, taking every interaction. */
function singleTierPolicy(world: HapiWorld, out: string): void {
  const doc = parseDocument(readFileSync(world.policyFile, 'utf8'));
  const tiers = doc.get('tiers') as { items: Array<{ get(k: string): unknown }> };
  doc.set('tiers', [tiers.items.find((t) => t.get('name') === 'write')]);
  doc.set('rules', [
    {
      resources: ['*'],
      interactions: ['read', 'vread', 'search-type', 'search-system', 'history-instance', 'history-type', 'history-system', 'capabilities', 'create', 'update', 'patch', 'batch', 'transaction'],
      tier: 'write',
    },
  ]);
  writeFileSync(out, doc.toString());
  chmodSync(out, 0o644);
}

async function readyz(admin: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${admin}/readyz`).then(
    (r) => r.status === 200,
    () => false,
  );
}

/** A proxy in this run's front: `policy`, following `agent` when given. */
async function startProxy(policy: string, agent?: string): Promise<{ url: string; pid: number }> {
  const [listen, admin] = [await freePort(), await freePort()];
  const child = spawnLogged(
    'proxy',
    process.execPath,
    [BIN, 'proxy', '--policy', policy, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--processes', '1', '--log-level', 'warn', ...(agent ? ['--agent', agent] : [])],
    { cwd: ROOT },
  );
  children.push(child);
  await waitFor('proxy', () => readyz(admin), 400_000, child);
  return { url: `http://127.0.0.1:${listen}`, pid: child.pid! };
}

/** HAPI's write server as a plain process (the fhirguard-writer identity), on a Unix socket. */
async function startPlainHapi(world: HapiWorld, dir: string): Promise<{ socket: string; pid: number }> {
  const doc = parseDocument(readFileSync(world.policyFile, 'utf8')).toJS() as { tiers: Array<{ name: string; server: { command: string[]; env: string[]; secrets: string[] } }> };
  const server = doc.tiers.find((t) => t.name === 'write')!.server;
  const sockDir = join(dir, 'plain');
  mkdirSync(sockDir, { mode: 0o755 });
  const ids = resolveIdentities({}, true);
  chmodSync(sockDir, 0o770);
  chownSync(sockDir, ids.writer.uid, ids.writer.gid);
  const socket = join(sockDir, 'hapi.sock');
  const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
  for (const e of server.env)
    env[e.slice(0, e.indexOf('='))] = e
      .slice(e.indexOf('=') + 1)
      .split('${socket}')
      .join(socket);
  for (const s of server.secrets) env[s.slice(0, s.indexOf('='))] = readFileSync(s.slice(s.indexOf('=') + 1), 'utf8').split('\n')[0];
  // Its own /tmp: the container's is a tmpfs.
  const tmp = join(dir, 'plain-tmp');
  mkdirSync(tmp, { mode: 0o777 });
  chmodSync(tmp, 0o1777);
  const args = server.command.slice(1).map((a) => (a === '-Djava.io.tmpdir=/tmp' ? `-Djava.io.tmpdir=${tmp}` : a));
  const child = spawn(server.command[0], args, { env, stdio: ['ignore', 'ignore', 'ignore'], uid: ids.writer.uid, gid: ids.writer.gid });
  children.push(child);
  await waitFor('plain HAPI', () => metadataOn(socket), 400_000, child);
  return { socket, pid: child.pid! };
}

function metadataOn(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/metadata', timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
  });
}

/** An agent running the single tier, with or without eBPF; resolves with its socket and HAPI's pid. */
async function startAgent(dir: string, name: string, policy: string, ebpf: boolean): Promise<{ socket: string; jvmPid: () => number }> {
  const state = join(dir, `agent-${name}`);
  mkdirSync(state, { mode: 0o711 });
  const socket = join(state, 'agent.sock');
  const child = spawnLogged(
    `agent-${name}`,
    process.execPath,
    [BIN, 'agent', '--policy', policy, '--profiles', HAPI_PROFILES, '--state-dir', state, '--db', join(state, 'data', 'fhir.db'), '--log-level', 'warn', ...(ebpf ? [] : ['--without-ebpf'])],
    { cwd: ROOT },
  );
  children.push(child);
  const client = new AgentClient(socket);
  let pid = 0;
  await waitFor(
    `agent ${name}`,
    async () => {
      const ws = await client.workers().catch(() => []);
      const w = ws.find((x) => x.state === 'serving');
      pid = w?.pid ?? 0;
      return pid > 0;
    },
    400_000,
    child,
  );
  return { socket, jvmPid: () => pid };
}

function requestsFor(workload: string, base: string, patientId: string): LoadRequest[] {
  const json = { 'content-type': 'application/fhir+json' };
  const patient = (n: number) => ({ resourceType: 'Patient', name: [{ family: `Bench${n % 50}`, given: ['Load'] }], gender: 'other', birthDate: '1980-01-01' });
  switch (workload) {
    case 'read':
      return [{ method: 'GET', path: `${base}/Patient/${patientId}` }];
    case 'search':
      return Array.from({ length: 10 }, (_, i) => ({ method: 'GET' as const, path: `${base}/Patient?family=Bench${i}&_count=10` }));
    case 'create':
      return Array.from({ length: 10 }, (_, i) => ({ method: 'POST' as const, path: `${base}/Patient`, body: JSON.stringify(patient(i)), headers: json }));
    case 'transaction':
      return [
        {
          method: 'POST',
          path: base || '/',
          headers: json,
          body: JSON.stringify({
            resourceType: 'Bundle',
            type: 'transaction',
            entry: [0, 1].map((i) => ({ fullUrl: `urn:uuid:00000000-0000-4000-8000-00000000000${i}`, resource: patient(i), request: { method: 'POST', url: 'Patient' } })),
          }),
        },
      ];
    default:
      throw new Error(workload);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:hapi needs root: HAPI runs in containers');
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
  const connections = 8;
  // Each JVM's JIT warms up on the first round's warm-up: long enough that the unconfined JVM,
  // which also serves the direct variant, is not the only warm one.
  const warmup = Number(process.env.BENCH_WARMUP ?? 30);
  const workloads = (process.env.BENCH_WORKLOADS ?? 'read,search,create,transaction').split(',');
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-hapi-'));
  chmodSync(dir, 0o711);
  const started = new Date();
  const loadStart = load();
  let world: HapiWorld | undefined;
  try {
    world = await hapiWorld(dir, hapiJar());
    const policy = join(dir, 'bench-policy.yaml');
    singleTierPolicy(world, policy);
    // The agents first: the write server creates the schema the plain one then finds.
    const withEbpf = await startAgent(dir, 'ebpf', policy, true);
    const seccompOnly = await startAgent(dir, 'seccomp', policy, false);
    const plain = await startPlainHapi(world, dir);
    const direct = join(dir, 'direct-policy.yaml');
    const doc = parseDocument(readFileSync(policy, 'utf8'));
    doc.setIn(['tiers', 0, 'upstreams'], [`unix:${plain.socket}`]);
    doc.deleteIn(['tiers', 0, 'server']);
    doc.deleteIn(['tiers', 0, 'workers']);
    writeFileSync(direct, doc.toString());
    const unconfinedProxy = await startProxy(direct);
    const seccompProxy = await startProxy(policy, seccompOnly.socket);
    const ebpfProxy = await startProxy(policy, withEbpf.socket);
    const targets: Target[] = [
      { variant: 'direct', origin: 'http://localhost', socketPath: plain.socket, base: '', jvm: () => plain.pid, proxy: () => null },
      { variant: 'unconfined', origin: unconfinedProxy.url, base: '/fhir', jvm: () => plain.pid, proxy: () => unconfinedProxy.pid },
      { variant: 'seccomp', origin: seccompProxy.url, base: '/fhir', jvm: seccompOnly.jvmPid, proxy: () => seccompProxy.pid },
      { variant: 'seccomp+ebpf', origin: ebpfProxy.url, base: '/fhir', jvm: withEbpf.jvmPid, proxy: () => ebpfProxy.pid },
    ];
    // A patient to read, and the data the searches find.
    const created = await fetch(`${ebpfProxy.url}/fhir/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Bench0' }] }),
    });
    const patientId = ((await created.json()) as { id: string }).id;

    type Row = { rps: number[]; jvmUs: number[]; proxyUs: number[]; non2xx: number; errors: number };
    const results: Record<string, Record<Variant, Row>> = {};
    for (const w of workloads) {
      results[w] = Object.fromEntries(VARIANTS.map((v): [Variant, Row] => [v, { rps: [], jvmUs: [], proxyUs: [], non2xx: 0, errors: 0 }])) as Record<Variant, Row>;
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 ? [...targets].reverse() : targets;
        for (const t of order) {
          // CPU over the measured phase only (the hooks fire as it starts and as its result arrives).
          const cpu = { jvm0: 0, proxy0: 0, jvm1: 0, proxy1: 0 };
          const proxyPid = t.proxy();
          const r = await runLoad(
            dir,
            {
              origin: t.origin,
              ...(t.socketPath ? { socketPath: t.socketPath } : {}),
              requests: requestsFor(w, t.base, patientId),
              connections,
              seconds,
              warmupSeconds: round === 0 ? warmup : 2,
              timeoutSeconds: 30,
            },
            null,
            {
              start: () => {
                cpu.jvm0 = cpuSeconds(t.jvm());
                cpu.proxy0 = proxyPid ? cpuSeconds(proxyPid) : 0;
              },
              end: () => {
                cpu.jvm1 = cpuSeconds(t.jvm());
                cpu.proxy1 = proxyPid ? cpuSeconds(proxyPid) : 0;
              },
            },
          );
          const row = results[w][t.variant];
          row.rps.push(r.rps);
          row.jvmUs.push(((cpu.jvm1 - cpu.jvm0) * 1e6) / Math.max(1, r.requests));
          row.proxyUs.push(((cpu.proxy1 - cpu.proxy0) * 1e6) / Math.max(1, r.requests));
          row.non2xx += r.non2xx;
          row.errors += r.errors;
          process.stderr.write(`  ${w.padEnd(11)} round ${round + 1} ${t.variant.padEnd(12)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(1)} ms  non-2xx ${r.non2xx}\n`);
        }
      }
    }
    const m = machineInfo(loadStart);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const summary: Record<string, Record<Variant, { rps: Stats; jvmUsPerRequest: Stats; proxyUsPerRequest: Stats; non2xx: number; errors: number }>> = {};
    process.stdout.write(`\nfhirguard around HAPI FHIR benchmark, ${started.toISOString()}\nmachine: ${describeMachine(m)}\n`);
    process.stdout.write(`${rounds} rounds x ${seconds} s per variant and workload, ${connections} connections, variants alternating (medians, min-max)\n`);
    for (const w of workloads) {
      summary[w] = {} as (typeof summary)[string];
      process.stdout.write(`${w}:\n`);
      for (const v of VARIANTS) {
        const row = results[w][v];
        const s = { rps: stats(row.rps), jvmUsPerRequest: stats(row.jvmUs), proxyUsPerRequest: stats(row.proxyUs), non2xx: row.non2xx, errors: row.errors };
        summary[w][v] = s;
        process.stdout.write(
          `  ${v.padEnd(13)} ${s.rps.median.toFixed(0).padStart(6)} req/s (${s.rps.min.toFixed(0)}-${s.rps.max.toFixed(0)})  HAPI ${s.jvmUsPerRequest.median.toFixed(0)} µs CPU/req  proxy ${s.proxyUsPerRequest.median.toFixed(0)} µs CPU/req${row.non2xx || row.errors ? `  non-2xx ${row.non2xx} errors ${row.errors}` : ''}\n`,
        );
      }
      const u = summary[w].unconfined.rps.median;
      process.stdout.write(
        `  seccomp/unconfined ${pct(summary[w].seccomp.rps.median / u)}, seccomp+ebpf/unconfined ${pct(summary[w]['seccomp+ebpf'].rps.median / u)} (target ≥ ${pct(TARGET)}: ${summary[w]['seccomp+ebpf'].rps.median / u >= TARGET ? 'met' : 'NOT met'}); unconfined/direct ${pct(u / summary[w].direct.rps.median)}\n`,
      );
    }
    const out = join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `hapi-${started.toISOString().slice(0, 10)}.json`);
    writeFileSync(file, JSON.stringify({ benchmark: 'hapi', date: started.toISOString(), machine: m, target: TARGET, rounds, seconds, connections, results: summary }, null, 2) + '\n');
    process.stdout.write(`results: ${file}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await stopAll();
    await new Promise((r) => setTimeout(r, 3000));
    world?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (err) => {
  process.stderr.write(`bench:hapi failed: ${(err as Error).stack ?? err}\n`);
  for (const c of children) c.kill('SIGTERM');
  await stopAll();
  process.exit(1);
});
