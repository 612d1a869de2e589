// The privileged agent never loads the proxy's code: the built CLI is asked to load the
// agent command (as `fhirguard agent` does before it runs), and the modules Node loaded are
// listed from require.cache. The proxy, in turn, loads nothing of src/agent/: only the API
// module both sides share (src/agent-api/).

import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** The fhirguard modules (relative to dist/src) that loading `command` brings in. */
function loadedBy(command: string): string[] {
  const script = `
    const { main } = require('./dist/src/cli/index');
    main([${JSON.stringify(command)}, '--help']).then(() => {
      const mine = Object.keys(require.cache).filter((f) => f.includes('/dist/src/'));
      process.stderr.write(JSON.stringify(mine.map((f) => f.split('/dist/src/')[1])));
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect({ status: r.status, help: r.stdout.startsWith(`Usage: fhirguard ${command}`) }).toEqual({ status: 0, help: true });
  return JSON.parse(r.stderr) as string[];
}

test('`fhirguard agent` loads no proxy code', () => {
  const loaded = loadedBy('agent');
  expect(loaded).toContain('agent/agent.js');
  expect(loaded.filter((f) => f.startsWith('proxy/') || f === 'cli/proxy.js' || f === 'cli/up.js')).toEqual([]);
});

test('`fhirguard proxy` loads none of the agent, runc or eBPF code', () => {
  const loaded = loadedBy('proxy');
  expect(loaded).toContain('proxy/server.js');
  // The proxy talks to the agent through the module both sides share (agent-api/: the client
  // and the messages' types), and loads nothing of src/agent/.
  expect(loaded).toContain('agent-api/client.js');
  expect(loaded.filter((f) => /^(agent\/|enforce\/(runc|bpf|launch|container)|cli\/agent\.js)/.test(f))).toEqual([]);
});
