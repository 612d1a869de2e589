// `npm run bench:processes`: what `--processes N` buys. The same `fhirguard proxy` in front of
// bench:proxy's fixed upstream (read by id), started with one process and with N (default: the
// cores available), each loaded in turn by wrk with 32 connections for several rounds, in
// alternating order. Per variant: median req/s and the CPU per request of all its processes
// (supervisor included, from /proc). On a machine whose load generator and upstream share the
// cores with the proxy, the throughput says little about more cores; the CPU per request says
// what the supervisor and the extra processes cost. The result goes to stdout and
// bench/results/processes-<date>.json.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { childrenOf, totalCpuSeconds } from './lib/cpu-time';
import { describe, load, machine as machineInfo } from './lib/machine';
import { firstLine, freePort, spawnLogged, stopAll, waitFor } from './lib/procs';
import { stats, type Stats } from './lib/stats';
import { BIN, ROOT } from './lib/system';
import { wrkInstalled, wrkRunner } from './lib/wrk';

const CONNECTIONS = 32;

interface Variant {
  processes: number;
  url: string;
  /** The supervisor (or the one process) and, under a supervisor, its processes. */
  pids(): number[];
}

async function startFhirguard(dir: string, processes: number, upstream: string): Promise<Variant> {
  const policy = join(dir, `policy-${processes}.yaml`);
  writeFileSync(policy, ['tiers:', '  - name: read', `    upstreams: ["${upstream}"]`, 'rules:', '  - resources: ["*"]', '    interactions: [read, capabilities]', '    tier: read', ''].join('\n'));
  const [listen, admin] = [await freePort(), await freePort()];
  const child = spawnLogged(
    `fhirguard x${processes}`,
    process.execPath,
    [BIN, 'proxy', '--policy', policy, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--processes', String(processes), '--log-level', 'warn'],
    { cwd: ROOT },
  );
  await waitFor(`fhirguard x${processes}`, async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200, 120_000, child);
  const pid = child.pid!;
  return {
    processes,
    url: `http://127.0.0.1:${listen}/fhir/Patient/example`,
    pids: () => {
      // The supervisor's children are read from /proc at each measurement: a replaced one counts too.
      return [pid, ...childrenOf(pid)];
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { processes: { type: 'string' }, rounds: { type: 'string' }, seconds: { type: 'string' }, out: { type: 'string' } } });
  if (!wrkInstalled()) throw new Error('bench:processes needs wrk (apt-get install wrk; `make bench` installs it)');
  const n = Number(values.processes ?? Math.max(2, availableParallelism()));
  const rounds = Number(values.rounds ?? 5);
  const seconds = Number(values.seconds ?? 8);
  const loadStart = load();
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-processes-'));
  try {
    const upChild = spawnLogged('upstream', process.execPath, [join(ROOT, 'dist', 'bench', 'proxy.js'), 'upstream'], { cwd: ROOT });
    const upPort = await firstLine(upChild, 'upstream', (l) => (l.startsWith('{"port"') ? (JSON.parse(l) as { port: number }).port : undefined));
    const upstream = `http://127.0.0.1:${upPort}`;
    const variants = [await startFhirguard(dir, 1, upstream), await startFhirguard(dir, n, upstream)];
    const wrk = wrkRunner(dir);
    for (const v of variants) await wrk(v.url, CONNECTIONS, 5); // warm-up
    const rps = new Map<number, number[]>(variants.map((v) => [v.processes, []]));
    const cpu = new Map<number, number[]>(variants.map((v) => [v.processes, []]));
    for (let r = 0; r < rounds; r++) {
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
        const before = totalCpuSeconds(v.pids());
        const run = await wrk(v.url, CONNECTIONS, seconds);
        const used = totalCpuSeconds(v.pids()) - before;
        rps.get(v.processes)!.push(run.rps);
        cpu.get(v.processes)!.push((used * 1e6) / run.requests);
        console.log(`round ${r + 1}: ${v.processes} process(es): ${Math.round(run.rps)} req/s, ${((used * 1e6) / run.requests).toFixed(1)} µs CPU per request`);
      }
    }
    const m = machineInfo(loadStart);
    const result: Record<string, Stats> = {};
    for (const v of variants) {
      result[`rps-${v.processes}`] = stats(rps.get(v.processes)!);
      result[`cpuUs-${v.processes}`] = stats(cpu.get(v.processes)!);
    }
    const [one, many] = [variants[0].processes, variants[1].processes];
    const lines = [
      `machine: ${describe(m)}`,
      `fhirguard proxy, read by id on a fixed upstream, wrk ${CONNECTIONS} connections, ${rounds} rounds of ${seconds} s each`,
      '(the load generator and the upstream share the cores with the proxy: read CPU per request, not req/s, for the cost)',
      `| processes | req/s median (min–max) | CPU µs per request median (min–max) |`,
      `| --- | --- | --- |`,
      ...variants.map((v) => {
        const r = result[`rps-${v.processes}`];
        const c = result[`cpuUs-${v.processes}`];
        return `| ${v.processes} | ${Math.round(r.median)} (${Math.round(r.min)}–${Math.round(r.max)}) | ${c.median.toFixed(1)} (${c.min.toFixed(1)}–${c.max.toFixed(1)}) |`;
      }),
      `throughput ${many} vs ${one}: ${((result[`rps-${many}`].median / result[`rps-${one}`].median) * 100).toFixed(1)}%; CPU per request ${many} vs ${one}: ${((result[`cpuUs-${many}`].median / result[`cpuUs-${one}`].median) * 100).toFixed(1)}%`,
    ];
    console.log(lines.join('\n'));
    const out = values.out ?? join(ROOT, 'bench', 'results', `processes-${new Date().toISOString().slice(0, 10)}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(
      out,
      JSON.stringify({ benchmark: 'processes', date: new Date().toISOString(), machine: m, connections: CONNECTIONS, rounds, seconds, processes: [one, many], result }, null, 2) + '\n',
    );
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
