// `npm run bench` in its quick mode on the cheap variants: the suite starts, measures and
// cleans up, and its JSON result file has the structure the README's figures are read from.
// No timing is asserted: figures on a shared machine say nothing about correctness.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'fg-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'run.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bench --quick on direct and bare, read: a table and a JSON result file', async () => {
  const out = path.join(dir, 'result.json');
  const r = await run(['--quick', '--variants', 'direct,bare', '--workloads', 'read', '--out', out]);
  expect(`${r.code}\n${r.stderr}`).toMatch(/^0\n/);
  expect(r.stdout).toMatch(/^read: GET Patient\/<id>/m);
  expect(r.stdout).toMatch(/^direct\s+[\d,]+ \(/m);
  expect(r.stdout).toMatch(/^bare\s+[\d,]+ \(/m);
  expect(r.stdout).toContain(`results: ${out}`);

  const json = JSON.parse(readFileSync(out, 'utf8'));
  expect(json.benchmark).toBe('fhirguard bench');
  expect(typeof json.date).toBe('string');
  expect(json.machine).toEqual(
    expect.objectContaining({ nproc: expect.any(Number), cpu: expect.any(String), kernel: expect.any(String), node: process.version, loadavgStart: expect.any(Array), loadavgEnd: expect.any(Array) }),
  );
  expect(json.settings).toEqual(expect.objectContaining({ quick: true, repeats: 1, loadGenerator: expect.stringMatching(/^autocannon /) }));
  expect(json.variants.map((v: { id: string }) => v.id)).toEqual(['direct', 'bare']);
  expect(json.workloads.map((w: { name: string }) => w.name)).toEqual(['read']);
  expect(json.cells).toHaveLength(2);
  for (const cell of json.cells) {
    expect(cell.workload).toBe('read');
    expect(cell.runs).toHaveLength(1);
    expect(cell.runs[0]).toEqual(expect.objectContaining({ non2xx: 0, errors: 0, requests: expect.any(Number) }));
    expect(cell.runs[0].requests).toBeGreaterThan(0);
    for (const k of ['rps', 'p50', 'p90', 'p99', 'cpuMsPerReq']) expect(cell[k]).toEqual(expect.objectContaining({ median: expect.any(Number), min: expect.any(Number), max: expect.any(Number) }));
    expect(cell.vsBare).toEqual(expect.objectContaining({ rps: expect.any(Number), p50: expect.any(Number) }));
    expect(cell.vsUnconfined).toBeNull(); // fhirguard itself was not measured
  }
  expect(json.cells.find((c: { variant: string }) => c.variant === 'bare').vsBare.rps).toBe(1);
  expect(json.noise).toEqual(expect.objectContaining({ loadavg1: expect.any(Object), otherCpu: expect.any(Object) }));
}, 120_000);

test('unknown variants and workloads are refused before anything starts', async () => {
  const v = await run(['--quick', '--variants', 'direct,nginx']);
  expect(v.code).toBe(1);
  expect(v.stderr).toContain("unknown variant 'nginx'");
  const w = await run(['--quick', '--workloads', 'read,delete']);
  expect(w.code).toBe(1);
  expect(w.stderr).toContain("unknown workload 'delete'");
});
