// `fhirguard rollout`: replaces a tier's workers with new ones from a new profiles directory
// and/or image, with no failed request; the running agent does the work (rollout.ts) and
// this command asks it over the agent's root-only control socket and prints its progress.

import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { defaultControlSocket } from '../agent/control';
import { ROLLOUT_DEFAULTS, type RolloutProgress, type RolloutRequest, type RolloutResult } from '../agent/rollout';
import { DEFAULT_STATE_DIR } from '../enforce/layout';
import type { Command } from './command';

/** `10s`, `500ms`, `2m`, or a bare number of seconds → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`${what} '${text}' is not a duration (e.g. 10s, 500ms, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

function post(socketPath: string, body: RolloutRequest, onLine: (v: RolloutProgress | RolloutResult) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = http.request({ socketPath, path: '/rollout', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      if (res.statusCode !== 200) {
        let err = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (err += c));
        res.once('end', () => reject(new Error(`the agent refused the request (HTTP ${res.statusCode}): ${err}`)));
        return;
      }
      createInterface({ input: res })
        .on('line', (l) => {
          if (l.trim()) onLine(JSON.parse(l) as RolloutProgress | RolloutResult);
        })
        .once('close', () => resolve());
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(text);
  });
}

export const rolloutCommand: Command = {
  name: 'rollout',
  summary: "replace a tier's workers with new ones (new profiles and/or image) without failing a request",
  usage: '--tier <name> [--profile <dir>] [--image <ref>] [options]',
  options: {
    tier: { type: 'string', arg: '<name>', help: 'the tier to roll (a tier of the policy the agent runs)' },
    profile: { type: 'string', arg: '<dir>', help: "new profiles directory (seccomp/<tier>.json, ebpf/<tier>.json); default: the tier's current one" },
    image: { type: 'string', arg: '<layout>[:<tag>]', help: "new worker image (as the agent's --image); default: the tier's current one" },
    advisories: { type: 'string', arg: '<dir>', help: "advisory database the new image is scanned against (default: the current image's)" },
    attestations: { type: 'string', arg: '<dir>', help: 'signed statements for the new artifacts, when the agent checks signatures (default <profile>/attestations with --profile)' },
    bake: { type: 'string', arg: '<duration>', default: `${ROLLOUT_DEFAULTS.bakeMs / 1000}s`, help: 'how long old and new workers serve together while the new ones are watched (at least 2s)' },
    'ready-timeout': { type: 'string', arg: '<duration>', default: `${ROLLOUT_DEFAULTS.readyTimeoutMs / 1000}s`, help: 'how long the new workers may take to serve' },
    'drain-timeout': { type: 'string', arg: '<duration>', default: `${ROLLOUT_DEFAULTS.drainTimeoutMs / 1000}s`, help: 'how long a draining worker may keep connections before it is stopped anyway' },
    'state-dir': { type: 'string', env: 'FHIRGUARD_STATE_DIR', arg: '<dir>', default: DEFAULT_STATE_DIR, help: "the agent's state directory (its control socket is there)" },
    control: { type: 'string', env: 'FHIRGUARD_AGENT_CONTROL', arg: '<path>', help: "the agent's control socket (default <state-dir>/control/agent.sock)" },
    json: { type: 'boolean', help: "print the agent's NDJSON progress and result lines as they come" },
  },
  details: [
    'Steps: start the new workers next to the old ones (through the same checks as every start:',
    'image gate, signed statement, container, eBPF policy); wait until they serve under their',
    'serve-phase policy; let old and new share the traffic for the bake time; then drain the old',
    'ones (the proxy stops picking them, requests in flight finish) and stop them.',
    'A new worker that fails to start or serve, is refused, crashes or violates its profile before',
    'the drain rolls the tier back: the new workers go, the old ones never stopped serving.',
    'Needs root (the control socket is root-only). Exit 0: rolled out; 1: failed and rolled back',
    '(the reason is printed); 2: usage error or the agent could not be reached.',
  ].join('\n'),
  async run(values) {
    const err = (m: string): void => void process.stderr.write(`fhirguard rollout: ${m}\n`);
    const tier = typeof values.tier === 'string' ? values.tier : '';
    if (!tier) {
      err('--tier <name> is required');
      return 2;
    }
    let req: RolloutRequest;
    try {
      req = {
        tier,
        ...(typeof values.profile === 'string' ? { profilesDir: path.resolve(values.profile) } : {}),
        ...(typeof values.image === 'string' ? { image: values.image } : {}),
        ...(typeof values.advisories === 'string' ? { advisories: path.resolve(values.advisories) } : {}),
        ...(typeof values.attestations === 'string' ? { attestations: path.resolve(values.attestations) } : {}),
        bakeMs: parseDuration(String(values.bake), '--bake'),
        readyTimeoutMs: parseDuration(String(values['ready-timeout']), '--ready-timeout'),
        drainTimeoutMs: parseDuration(String(values['drain-timeout']), '--drain-timeout'),
      };
    } catch (e) {
      err((e as Error).message);
      return 2;
    }
    const socketPath = path.resolve(typeof values.control === 'string' ? values.control : defaultControlSocket(path.resolve(String(values['state-dir']))));
    const t0 = Date.now();
    let result: RolloutResult | undefined;
    try {
      await post(socketPath, req, (v) => {
        if (values.json) process.stdout.write(JSON.stringify(v) + '\n');
        if (v.type === 'result') result = v;
        else if (!values.json) process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${v.step}: ${v.message}\n`);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      err(
        code === 'ENOENT' || code === 'ECONNREFUSED'
          ? `no agent listens on ${socketPath} (is it running, with this --state-dir?)`
          : code === 'EACCES'
            ? `${socketPath}: permission denied (the control socket is root's)`
            : (e as Error).message,
      );
      return 2;
    }
    if (!result) {
      err('the agent closed the connection before the rollout ended (see its log)');
      return 2;
    }
    if (!values.json) {
      if (result.ok) process.stdout.write(`tier ${result.tier} rolled out in ${(result.durationMs / 1000).toFixed(1)}s: workers ${result.workers.join(', ')} run ${result.runs}\n`);
      else err(`tier ${result.tier} NOT rolled out: ${result.reason}${result.workers.length ? `; still serving: ${result.workers.join(', ')} (${result.runs})` : ''}`);
    }
    return result.ok ? 0 : 1;
  },
};
