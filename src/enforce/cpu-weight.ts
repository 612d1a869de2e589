// CPU weights of the cgroups above the workers. Under contention the kernel shares CPU
// between sibling cgroups by weight, and a cgroup counts as one task: left at the default
// weight, /fhirguard (every worker of every tier) would get what one plain process gets,
// e.g. the proxy alone would weigh as much as all workers together. Giving /fhirguard and
// /fhirguard/<tier> the weight of the containers they hold lets confined workers compete for
// CPU as plain processes would.

import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

const V1_CPU = '/sys/fs/cgroup/cpu';
const V2_MOUNTS = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
const DEFAULT_SHARES = 1024; // v1 cpu.shares of a nice-0 task
const DEFAULT_WEIGHT = 100; // v2 cpu.weight

function children(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

async function setWeight(rel: string, tasks: number): Promise<void> {
  const n = Math.max(1, tasks);
  const v1 = path.join(V1_CPU, rel, 'cpu.shares');
  if (existsSync(v1)) await writeFile(v1, String(Math.min(262_144, DEFAULT_SHARES * n)));
  for (const mount of V2_MOUNTS) {
    const v2 = path.join(mount, rel, 'cpu.weight');
    if (existsSync(v2)) await writeFile(v2, String(Math.min(10_000, DEFAULT_WEIGHT * n)));
  }
}

/** Weighs /fhirguard/<tier> as the containers in it, and /fhirguard as all of them. */
export async function balanceCpuWeights(): Promise<void> {
  const root = existsSync(path.join(V1_CPU, 'fhirguard')) ? path.join(V1_CPU, 'fhirguard') : V2_MOUNTS.map((m) => path.join(m, 'fhirguard')).find(existsSync);
  if (!root) return;
  let total = 0;
  for (const tier of children(root)) {
    const n = children(path.join(root, tier)).length;
    total += n;
    await setWeight(path.join('fhirguard', tier), n);
  }
  await setWeight('fhirguard', total);
}
