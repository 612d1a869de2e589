// The proxy, the read tiers' workers and the writing tiers' workers run as three identities
// that share nothing: checked here at the file-permission level, as each identity, against
// the database, the journal, every worker's socket and the agent's API socket of a real
// agent (root, containers). The option parsing and its refusals need no root.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { resolveIdentities, resolveIdentity, DEFAULT_USER_NAMES, type Identities } from '../../src/enforce/identities';
import type { WorkerInfo } from '../../src/agent-api/client';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';

const ROOT = process.getuid?.() === 0;
const rootDescribe = ROOT ? describe : describe.skip;
if (!ROOT) console.warn('test/enforce/identities: NOT RUN as root here: the agent checks need root (CI runs them)');

describe('identity options', () => {
  test('uid:gid pairs are taken as they are, never root', () => {
    expect(resolveIdentity('61001:61002', false)).toEqual({ uid: 61001, gid: 61002 });
    expect(() => resolveIdentity('0:61002', false)).toThrow(/never run as root/);
    expect(() => resolveIdentity('61001:', false)).toThrow(/neither uid:gid nor a system user name/);
    expect(() => resolveIdentity('bad name!', false)).toThrow(/neither uid:gid nor a system user name/);
  });

  test('a name must be a user of this host unless it may be made', () => {
    expect(() => resolveIdentity('fhirguard-no-such-user', false)).toThrow(/no user fhirguard-no-such-user on this host/);
    expect(() => resolveIdentity('root', false)).toThrow(/root \(uid or gid 0\)/);
  });

  test('two roles sharing a uid or a group are refused', () => {
    const base = { 'proxy-user': '61001:61001', 'reader-user': '61002:61002', 'writer-user': '61003:61003' };
    expect(resolveIdentities(base, false)).toEqual({ proxy: { uid: 61001, gid: 61001 }, reader: { uid: 61002, gid: 61002 }, writer: { uid: 61003, gid: 61003 } });
    expect(() => resolveIdentities({ ...base, 'reader-user': '61003:61009' }, false)).toThrow(/--reader-user and --writer-user are the same uid 61003/);
    expect(() => resolveIdentities({ ...base, 'proxy-user': '61009:61002' }, false)).toThrow(/--proxy-user and --reader-user share gid 61002/);
  });

  (ROOT ? test : test.skip)('as root, a missing named user is made: a system user of its own group, no login', () => {
    const name = `fg-t${process.pid}`;
    try {
      const id = resolveIdentity(name, true);
      const entry = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
      expect(entry.slice(2, 4).map(Number)).toEqual([id.uid, id.gid]);
      expect(entry[6]).toBe('/usr/sbin/nologin');
      expect(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]).toBe(String(id.gid));
      expect(id.uid).toBeLessThan(1000); // a system user
      expect(resolveIdentity(name, true)).toEqual(id); // found, not made twice
    } finally {
      spawnSync('userdel', [name]);
      spawnSync('groupdel', [name]);
    }
  });
});

/** What `identity` gets from each probe: 'ok' or the errno code. */
function probe(identity: { uid: number; gid: number }, probes: Array<['read' | 'write', string] | ['connect', string]>): string[] {
  const script = `
    const fs = require('fs'), net = require('net');
    const probes = JSON.parse(process.argv[1]);
    (async () => {
      const out = [];
      for (const [op, p] of probes) {
        if (op === 'connect') {
          out.push(await new Promise((resolve) => {
            const s = net.connect(p, () => { s.destroy(); resolve('ok'); });
            s.on('error', (e) => resolve(e.code));
          }));
        } else {
          try { fs.closeSync(fs.openSync(p, op === 'read' ? 'r' : 'r+')); out.push('ok'); } catch (e) { out.push(e.code); }
        }
      }
      console.log(JSON.stringify(out));
    })();`;
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify(probes)], { uid: identity.uid, gid: identity.gid, encoding: 'utf8', cwd: '/' });
  if (r.status !== 0) throw new Error(`probe as ${identity.uid} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

rootDescribe('a root agent gives each role only what it needs', () => {
  let dir: string;
  let agent: AgentProcess;
  let ids: Identities;
  let workers: WorkerInfo[];

  beforeAll(async () => {
    await requireEnforcement({ ebpf: false });
    dir = shortTempDir('ids');
    // The probes run on the host as each identity: let them through the test's own directory.
    chmodSync(dir, 0o711);
    agent = await startAgent(dir);
    workers = await waitWorkers(agent.client, allServing, 120_000, agent.log);
    ids = resolveIdentities({}, false);
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    killLeftoverAgents();
    removeDir(dir);
  });

  const socketOf = (tier: string): string => workers.find((w) => w.tier === tier)!.socketPath;

  test('the identities are the named system users, and each tier runs as its class', () => {
    for (const role of ['proxy', 'reader', 'writer'] as const) {
      expect(execFileSync('getent', ['passwd', DEFAULT_USER_NAMES[role]], { encoding: 'utf8' }).split(':')[2]).toBe(String(ids[role].uid));
    }
    for (const w of workers) {
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${w.pid}/status`, 'utf8'))![1];
      expect({ tier: w.tier, uid: Number(uid) }).toEqual({ tier: w.tier, uid: w.tier === 'read' ? ids.reader.uid : ids.writer.uid });
    }
  });

  test('the proxy reaches every worker and the agent, and cannot open the database', () => {
    const got = probe(ids.proxy, [
      ['read', agent.db],
      ['write', agent.db],
      ['connect', socketOf('read')],
      ['connect', socketOf('write')],
      ['connect', socketOf('ops')],
      ['connect', agent.socketPath],
    ]);
    expect(got).toEqual(['EACCES', 'EACCES', 'ok', 'ok', 'ok', 'ok']);
  });

  test('read workers read the database and cannot write it, reach no other tier and not the agent', () => {
    const got = probe(ids.reader, [
      ['read', agent.db],
      ['write', agent.db],
      ['connect', socketOf('write')],
      ['connect', socketOf('ops')],
      ['connect', agent.socketPath],
    ]);
    expect(got).toEqual(['ok', 'EACCES', 'EACCES', 'EACCES', 'EACCES']);
  });

  test('writing workers write the database, reach no read worker and not the agent', () => {
    expect(
      probe(ids.writer, [
        ['write', agent.db],
        ['connect', socketOf('read')],
        ['connect', agent.socketPath],
      ]),
    ).toEqual(['ok', 'EACCES', 'EACCES']);
  });

  test('the database directory and its files: writers own them, readers are the group, nobody else', () => {
    const ls = (p: string): string => {
      const st = statSync(p);
      return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
    };
    expect(ls(path.dirname(agent.db))).toBe(`${ids.writer.uid}:${ids.reader.gid} 2750`);
    expect(ls(agent.db)).toBe(`${ids.writer.uid}:${ids.reader.gid} 640`);
  });
});
