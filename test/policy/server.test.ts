// A tier's `server:` block (src/policy/server.ts): the operator's own server, with paths
// relative to the policy file, defaults, and the refusals that need the tier: a read-only
// tier gets no writable state directory, a tier is served by upstreams or a server, not both.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { compilePolicy, PolicyError } from '../../src/policy';

const RULES = `rules:
  - resources: ["*"]
    interactions: [read, search-type]
    tier: read
  - resources: ["*"]
    interactions: [create]
    tier: write
`;

function policy(readServer: string, writeServer = ''): string {
  return `tiers:
  - name: read
${readServer}
  - name: write
${writeServer}
${RULES}`;
}

function errors(text: string): string[] {
  try {
    compilePolicy(text, '/etc/fhirguard/p.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as PolicyError).issues.map((i) => `${i.line}:${i.col}: ${i.path}: ${i.message}`);
  }
  throw new Error('the policy loaded');
}

describe('server: blocks', () => {
  test('paths are the policy file directory’s, defaults fill the rest', () => {
    const p = compilePolicy(
      policy(`    server:
      command: [bin/java, -jar, app/server.jar]
      readOnly: [app/server.jar, /usr/lib/jvm]
      env: ["LISTEN=unix:\${socket}"]`),
      '/etc/fhirguard/p.yaml',
    );
    const read = p.tierByName.get('read')!;
    expect(read.readOnly).toBe(true);
    expect(read.workers).toBe(1);
    expect(read.server).toEqual({
      command: ['/etc/fhirguard/bin/java', '-jar', 'app/server.jar'],
      readOnly: ['/etc/fhirguard/app/server.jar', '/usr/lib/jvm'],
      artifacts: [],
      state: [],
      scratchMiB: 0,
      env: ['LISTEN=unix:${socket}'],
      secrets: [],
      health: '/metadata',
      startTimeoutMs: 180_000,
      egress: [],
      memoryBytes: 1024 * 1024 * 1024,
      pidsLimit: 256,
    });
    // Reference-worker tiers are unchanged: no server, their own defaults.
    expect(p.tierByName.get('write')!.server).toBeUndefined();
  });

  test('egress, secrets and limits as written', () => {
    const p = compilePolicy(
      policy(
        '',
        `    server:
      command: [/usr/bin/server]
      state: [/var/lib/server]
      secrets: [DB_PASSWORD=secrets/db.password]
      egress: ["127.0.0.1:5432", "[::1]:5432", "10.0.0.0/8:5432"]
      memoryMiB: 2048
      pids: 512
      scratchMiB: 16
      health: /fhir/metadata
      startTimeoutMs: 60000`,
      ),
      '/srv/p.yaml',
    );
    const s = p.tierByName.get('write')!.server!;
    expect(s.egress).toEqual([
      { spec: '127.0.0.1:5432', cidr: '127.0.0.1/32', port: 5432 },
      { spec: '[::1]:5432', cidr: '::1/128', port: 5432 },
      { spec: '10.0.0.0/8:5432', cidr: '10.0.0.0/8', port: 5432 },
    ]);
    expect(s.secrets).toEqual([{ name: 'DB_PASSWORD', file: '/srv/secrets/db.password' }]);
    expect(s).toMatchObject({ state: ['/var/lib/server'], memoryBytes: 2048 * 1024 * 1024, pidsLimit: 512, scratchMiB: 16, health: '/fhir/metadata', startTimeoutMs: 60_000 });
  });

  test('a read-only tier is refused a writable state directory', () => {
    expect(
      errors(
        policy(`    server:
      command: [/usr/bin/server]
      state: [/var/lib/server]`),
      ),
    ).toEqual(['5:14: tiers[0].server.state: tier is read-only (no rule routes a write to it): its server gets no writable state directory; use scratchMiB for temporary files']);
  });

  test('upstreams and a server on one tier, a bare program name, bad egress and env are refused where they are', () => {
    expect(
      errors(
        policy(`    upstreams: ["http://127.0.0.1:8080"]
    server:
      command: [java]
      env: ["not an assignment"]
      egress: ["db.example.org:5432", "127.0.0.1:99999"]`),
      ),
    ).toEqual([
      '6:13: tiers[0].server.env[0]: "not an assignment" is not NAME=value',
      '7:16: tiers[0].server.egress[0]: "db.example.org:5432" is not ADDRESS:PORT with a literal IP address (e.g. 127.0.0.1:5432, [::1]:5432, 10.0.0.0/8:5432)',
      '7:39: tiers[0].server.egress[1]: "127.0.0.1:99999" is not ADDRESS:PORT with a literal IP address (e.g. 127.0.0.1:5432, [::1]:5432, 10.0.0.0/8:5432)',
    ]);
    expect(
      errors(
        policy(`    upstreams: ["http://127.0.0.1:8080"]
    server:
      command: [java]`),
      ),
    ).toEqual([
      "5:7: tiers[0].server: tier 'read' has upstreams: it is served either by upstreams outside fhirguard or by a server the agent runs, not both",
      '5:17: tiers[0].server.command[0]: "java": name the program by its path (absolute, or relative to the policy file); the container has no search path',
    ]);
  });

  test('a state directory inside a read-only path is refused', () => {
    expect(
      errors(
        policy(
          '',
          `    server:
      command: [/usr/bin/server]
      readOnly: [/srv/app]
      state: [/srv/app/data]`,
        ),
      ),
    ).toEqual(['8:15: tiers[1].server.state[0]: /srv/app/data overlaps a readOnly path: a directory is either read-only or state']);
  });

  test('the HAPI example policy loads: two server tiers, egress to PostgreSQL only', () => {
    const file = path.join(__dirname, '..', '..', 'examples', 'hapi', 'policy.yaml');
    const p = compilePolicy(readFileSync(file, 'utf8'), file);
    expect(p.tiers.map((t) => [t.name, t.readOnly, t.workers, t.server?.egress.map((e) => e.spec), t.server?.state])).toEqual([
      ['read', true, 1, ['127.0.0.1:55432'], []],
      ['write', false, 1, ['127.0.0.1:55432'], []],
    ]);
    expect(p.warnings).toEqual([]);
  });
});
