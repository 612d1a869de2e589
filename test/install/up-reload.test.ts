// A policy reload under the whole system, as root: `fhirguard up` signed the tiers with its own
// key and its agent runs the proxy confined. SIGHUP to up (and `fhirguard reload`, which finds
// the agent by the state directory) has the agent check the edited file, sign the tiers again
// for it, and hand it to the confined proxy; new requests are decided by it, and a worker
// restarted afterwards is admitted under the new statements. A policy with problems is refused
// and the old one keeps deciding.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../src/agent-api/client';
import { canRunUp, startUp, type RunningSystem } from '../grafana/system';
import { poll } from '../helpers/poll';
import { REPO_ROOT } from '../helpers/worker-process';

const runs = canRunUp();
if (!runs) console.warn('up-reload.test: SKIPPED LOUDLY: `fhirguard up` needs root here; the reload through the agent is not tested');
const maybe = runs ? describe : describe.skip;

let dir: string;
let system: RunningSystem;
let policyFile: string;

const digest = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;
async function inForce(): Promise<string | undefined> {
  const text = await (await fetch(`${system.admin}/metrics`)).text();
  return /fhirguard_policy_info\{digest="([^"]+)"\} 1/.exec(text)?.[1];
}

maybe('reloading the policy of `fhirguard up`', () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fg-up-reload-'));
    // The proxy and workers' identities pass through it to the state directory.
    chmodSync(dir, 0o711);
    system = await startUp(dir);
    policyFile = path.join(dir, 'policy.yaml');
  }, 360_000);

  afterAll(async () => {
    await system?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGHUP: checked, signed again, in force in the confined proxy; a restarted worker is admitted', async () => {
    const original = readFileSync(policyFile, 'utf8');
    expect(await inForce()).toBe(digest(original));
    expect((await fetch(`${system.base}/Observation`)).status).toBe(200);

    const denying = original.replace(/^rules:.*\n/m, (line) => `${line}  - resources: [Observation]\n    interactions: [search-type]\n    deny: true\n`);
    expect(denying).not.toBe(original);
    writeFileSync(policyFile, denying);
    process.kill(system.pid!, 'SIGHUP');
    await poll('the edited policy in force', async () => (await inForce()) === digest(denying), { timeoutMs: 120_000, detail: () => system.log().slice(-3000) });
    expect((await fetch(`${system.base}/Observation`)).status).toBe(403);
    expect((await fetch(`${system.base}/Patient`)).status).toBe(200);

    // The statements were signed again for the file: a read worker killed now starts again.
    const agent = new AgentClient(path.join(system.stateDir!, 'agent.sock'));
    const read = (await agent.workers()).filter((w) => w.tier === 'read');
    expect(read.length).toBeGreaterThan(0);
    process.kill(read[0].pid!, 'SIGKILL');
    await poll(
      'the killed read worker restarted and serving',
      async () => {
        const w = (await agent.workers()).find((x) => x.id === read[0].id);
        return w?.state === 'serving' && w.restarts > read[0].restarts ? w : false;
      },
      { timeoutMs: 120_000, detail: () => system.log().slice(-3000) },
    );
  }, 300_000);

  test('`fhirguard reload` finds the agent by the state directory; a policy with problems is refused and the old one stays', async () => {
    const inForceNow = await inForce();
    writeFileSync(policyFile, `${readFileSync(policyFile, 'utf8')}\nrules: []\n`);
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'fhirguard'), 'reload', '--state-dir', system.stateDir!], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/policy rejected:\n\S*policy\.yaml:\d+:\d+/);
    expect(await inForce()).toBe(inForceNow);
    expect((await fetch(`${system.base}/Observation`)).status).toBe(403);
  }, 180_000);
});
