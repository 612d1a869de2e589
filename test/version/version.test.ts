// One version everywhere: `fhirguard --version` (the compiled CLI, as installed), and the
// fhirguard_build_info gauge on the proxy's and the node agent's /metrics, all say what
// package.json says.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { nodeRegistry } from '../../src/agent/kube/node-agent';
import { ProxyMetrics } from '../../src/metrics/registry';

const REPO = path.resolve(__dirname, '..', '..');
const VERSION = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version as string;
const FHIRGUARD = path.join(REPO, 'bin', 'fhirguard');

/** The build-info series of a Prometheus text exposition. */
function buildInfo(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('fhirguard_build_info'));
}

describe('fhirguard --version', () => {
  test.each(['--version', '-V'])('%s prints the package version and exits 0', (flag) => {
    const r = spawnSync(FHIRGUARD, [flag], { encoding: 'utf8' });
    expect({ code: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `fhirguard ${VERSION}\n`, stderr: '' });
  });

  test('the main help names it', () => {
    const r = spawnSync(FHIRGUARD, ['--help'], { encoding: 'utf8' });
    expect(r.stdout).toContain('fhirguard --version');
  });
});

describe('fhirguard_build_info', () => {
  test("is 1 on the proxy's metrics, labelled with the version, the Node.js version and the component", async () => {
    const m = new ProxyMetrics(['read', 'write'], { processMetrics: false });
    expect(buildInfo(await m.registry.metrics())).toEqual([`fhirguard_build_info{version="${VERSION}",node="${process.version}",component="proxy"} 1`]);
  });

  test("is 1 on the node agent's metrics", async () => {
    const adopter = {
      counters: async () => ({ available: false, eventsDropped: 0, tiers: [] }),
      workers: () => [],
      enforcement: () => ({ degraded: true, tiers: [] }),
    };
    const { registry } = nodeRegistry(adopter as never, ['read'], { warn: () => undefined });
    expect(buildInfo(await registry.metrics())).toEqual([`fhirguard_build_info{version="${VERSION}",node="${process.version}",component="agent"} 1`]);
  });
});
