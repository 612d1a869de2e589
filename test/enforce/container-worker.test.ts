// The reference worker in real runc containers of the read and write tiers (the shipped
// profiles, seccomp enforcing, the eBPF policy in serve phase): it serves FHIR over its
// socket, and the kernel's view of each container (read from the host through /proc) is
// the confinement the design promises.

import { openSync, closeSync, readFileSync, readlinkSync, existsSync } from 'node:fs';
import path from 'node:path';
import { waitHealthy } from '../../src/agent/health';
import { openEnforcement } from '../../src/enforce/open';
import { launchConfined, type ConfinedProcess, type EnforcementContext } from '../../src/enforce/launch';
import { prepareDataDir, prepareSocketDir, socketDirOwner } from '../../src/enforce/layout';
import { loadTierProfiles } from '../../src/enforce/tier-profiles';
import { procStatus, REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { closeClient, fhirRequest } from '../helpers/worker-process';

// Numeric identities (no user of these ids needs to exist), one per role as `up` gives them.
const IDS = { proxy: { uid: 61170, gid: 61170 }, reader: { uid: 61171, gid: 61171 }, writer: { uid: 61172, gid: 61172 } };
let dir: string;
let ctx: EnforcementContext;
let db: string;
const workers: Record<'read' | 'write', { proc: ConfinedProcess; socket: string }> = {} as never;

async function startWorker(tier: 'read' | 'write'): Promise<void> {
  const id = `cw-${tier}-${path.basename(dir).slice(-6)}`;
  const socketDir = path.join(ctx.layout.sockets, tier, id);
  await prepareSocketDir(socketDir, socketDirOwner(IDS, tier === 'read'));
  const socket = path.join(socketDir, 'worker.sock');
  const readOnly = tier === 'read';
  const proc = await launchConfined(ctx, {
    tier,
    readOnly,
    mode: 'enforce',
    profiles: loadTierProfiles(path.join(REPO, 'profiles'), tier, readOnly),
    ebpf: true,
    id,
    dataDir: path.dirname(db),
    socketDir,
    args: [process.execPath, path.join(REPO, 'bin', 'fhirguard'), 'worker', '--tier', tier, '--db', db, '--listen', `unix:${socket}`, ...(readOnly ? ['--read-only'] : [])],
    stdio: 'ignore',
  });
  workers[tier] = { proc, socket };
  if (!(await waitHealthy(socket, proc.container.exited, 90_000))) throw new Error(`${tier} worker did not become healthy`);
  await proc.setPhase('serve');
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('cworker');
  db = path.join(dir, 'data', 'fhir.db');
  const opened = await openEnforcement({ stateDir: path.join(dir, 'state'), install: REPO, identities: IDS });
  if (!opened.ctx || !opened.status.ebpf.ok) throw new Error(`enforcement unavailable: ${JSON.stringify(opened.status.ebpf)}`);
  ctx = opened.ctx;
  await prepareDataDir(path.dirname(db), IDS);
  await startWorker('write'); // creates the database
  await startWorker('read');
}, 180_000);

afterAll(async () => {
  for (const w of Object.values(workers)) {
    await closeClient(w.socket);
    await w.proc.setPhase('shutdown').catch(() => undefined);
    await w.proc.container.stop(10_000);
    await w.proc.forget().catch(() => undefined);
  }
  removeDir(dir);
});

/** The options of the mount at `mountPoint` in the process's mount namespace. */
function mountOptions(pid: number, mountPoint: string): string[] {
  const line = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === mountPoint)
    .pop();
  if (!line) throw new Error(`${mountPoint} is not a mount point in process ${pid}`);
  return line.split(' ')[5].split(',');
}

test('the write worker serves FHIR from its container and writes the database; the read worker sees the write', async () => {
  const created = await fhirRequest(workers.write.socket, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Confined' }] });
  expect(created.status).toBe(201);
  const read = await fhirRequest(workers.read.socket, 'GET', `/Patient/${created.json.id}`);
  expect(read.status).toBe(200);
  expect(read.json.name[0].family).toBe('Confined');
  const search = await fhirRequest(workers.read.socket, 'GET', '/Patient?family=Confined');
  expect(search.status).toBe(200);
  expect(search.json.total ?? search.json.entry.length).toBeGreaterThanOrEqual(1);
});

test('the read worker refuses writes, and in serve phase nothing it did for these requests was a violation', async () => {
  const refused = await fhirRequest(workers.read.socket, 'POST', '/Patient', { resourceType: 'Patient' });
  expect(refused.status).toBe(405);
  for (const t of ['read', 'write'] as const) {
    const c = await workers[t].proc.counters();
    expect(c?.policy?.phase).toBe('serve');
    const violations = Object.entries(c!.syscalls).filter(([, s]) => s.violations > 0);
    expect(violations).toEqual([]);
  }
});

test.each(['read', 'write'] as const)('%s worker: non-root, no capabilities, no new privileges, seccomp filter, own namespaces', (tier) => {
  const pid = workers[tier].proc.container.pid;
  expect(pid).toBeGreaterThan(0);
  const s = procStatus(pid);
  const id = tier === 'read' ? IDS.reader : IDS.writer;
  expect(s.Uid.split(/\s+/)).toEqual(Array(4).fill(String(id.uid)));
  expect(s.Gid.split(/\s+/)[0]).toBe(String(id.gid));
  expect(s.Groups.trim()).toBe(String(id.gid));
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(s[set]).toBe('0000000000000000');
  expect(s.NoNewPrivs).toBe('1');
  expect(s.Seccomp).toBe('2'); // SECCOMP_MODE_FILTER
  for (const ns of ['net', 'pid', 'mnt', 'ipc', 'uts']) {
    expect(readlinkSync(`/proc/${pid}/ns/${ns}`)).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
  }
  // The empty network namespace: only lo, and it is down.
  const dev = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  expect(
    dev
      .split('\n')
      .slice(2)
      .filter(Boolean)
      .map((l) => l.trim().split(':')[0]),
  ).toEqual(['lo']);
});

test.each(['read', 'write'] as const)('%s worker: read-only root without a shell; the database directory read-only only for the read tier', (tier) => {
  const pid = workers[tier].proc.container.pid;
  expect(mountOptions(pid, '/')).toContain('ro');
  expect(existsSync(`/proc/${pid}/root/bin/sh`)).toBe(false);
  expect(existsSync(`/proc/${pid}/root/usr/bin/node`)).toBe(true);
  expect(existsSync(`/proc/${pid}/root/etc/passwd`)).toBe(false);
  const dataOpts = mountOptions(pid, path.dirname(db));
  expect(dataOpts).toContain(tier === 'read' ? 'ro' : 'rw');
  // Through the container's own mount namespace even root on the host gets the mount's answer.
  const viaContainer = `/proc/${pid}/root${db}`;
  if (tier === 'read') {
    expect(() => openSync(viaContainer, 'r+')).toThrow(/EROFS/);
  } else {
    closeSync(openSync(viaContainer, 'r+'));
  }
});

test.each(['read', 'write'] as const)('%s worker: cgroup fhirguard/<tier>/<id> in the v2 hierarchy too, with pids and memory limits', (tier) => {
  const pid = workers[tier].proc.container.pid;
  const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const id = path.basename(path.dirname(workers[tier].socket));
  expect(cgroups).toContain(`0::/fhirguard/${tier}/${id}`);
  expect(workers[tier].proc.cgroupDir).toBe(`${ctx.cgroupV2Mount}/fhirguard/${tier}/${id}`);
  expect(existsSync(workers[tier].proc.cgroupDir)).toBe(true);
  expect(readFileSync(`/sys/fs/cgroup/pids/fhirguard/${tier}/${id}/pids.max`, 'utf8').trim()).toBe('128');
  expect(Number(readFileSync(`/sys/fs/cgroup/memory/fhirguard/${tier}/${id}/memory.limit_in_bytes`, 'utf8'))).toBe(1024 * 1024 * 1024);
});
