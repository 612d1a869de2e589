// `fhirguard reload`: asks a running front door to read its policy file again, and prints
// what is in force afterwards. The proxy checks the new policy first: one with problems is
// refused (its file:line:col messages printed here) and the old one stays in force.

import http from 'node:http';
import { parseHostPort } from '../proxy/address';
import { PROXY_OPTIONS } from '../proxy/options';
import type { ReloadAnswer } from '../proxy/policy-reload';
import type { Command } from './command';

function postReload(host: string, port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: '/reload', method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

export const reloadCommand: Command = {
  name: 'reload',
  summary: 'have a running front door read its policy file again (checked first; the old one stays on any problem)',
  usage: '[--admin <host:port>]',
  options: {
    admin: { ...PROXY_OPTIONS.admin, help: "the front door's admin listener (as given to `fhirguard proxy` or `up`)" },
    json: { type: 'boolean', help: "print the front door's answer as JSON" },
  },
  details: [
    'Same as SIGHUP to the proxy, but with an answer: exit 0 when the policy in force is the file',
    '(applied, or unchanged), 1 when the new policy was refused (why is printed; the old one stays),',
    '2 when the front door could not be asked.',
  ].join('\n'),
  async run(values) {
    const err = (m: string): void => void process.stderr.write(`fhirguard reload: ${m}\n`);
    let answer: ReloadAnswer;
    try {
      const at = parseHostPort(String(values.admin), '--admin');
      const r = await postReload(at.host, at.port);
      if (r.status !== 200 && r.status !== 422) {
        err(`the front door answered HTTP ${r.status}: ${r.body.trim()}`);
        return 2;
      }
      answer = JSON.parse(r.body) as ReloadAnswer;
    } catch (e) {
      err(`cannot ask the front door at ${String(values.admin)}: ${(e as Error).message}`);
      return 2;
    }
    if (values.json) process.stdout.write(JSON.stringify(answer) + '\n');
    if (answer.result === 'refused') {
      err(`${answer.error}\nstill in force: ${answer.policy.digest} (${answer.policy.file})`);
      return 1;
    }
    if (!values.json) process.stdout.write(`${answer.result === 'applied' ? 'in force' : 'unchanged, in force'}: ${answer.policy.digest} (${answer.policy.file})\n`);
    return 0;
  },
};
