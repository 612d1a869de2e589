// A tier's `server:` block: the operator's own FHIR server, run by the agent instead of the
// reference worker and confined the same way (runc, read-only root, seccomp, eBPF phases,
// egress allow-list). Relative paths are the policy file's directory's.
//
//   server:
//     command: [/usr/lib/jvm/java-17-openjdk-amd64/bin/java, -jar, target/server.jar]
//     readOnly: [/usr/lib/jvm/java-17-openjdk-amd64, target/server.jar]
//     state: [var/server-state]          # write tiers only
//     scratchMiB: 64                     # a private tmpfs at /tmp, gone with the container
//     env: ["SERVER_LISTEN=unix:${socket}"]
//     secrets: ["DB_PASSWORD=var/secrets/db.password"]
//     health: /metadata
//     startTimeoutMs: 180000
//     egress: ["127.0.0.1:5432"]
//     memoryMiB: 1024
//     pids: 256
//
// The server listens on the Unix socket `${socket}` names (the only way in is fhirguard's
// proxy: a TCP port in the host's network would let anything on the host past the policy)
// and serves FHIR at that socket's root.

import { isIP } from 'node:net';
import path from 'node:path';
import type { Field, Spec } from './yaml-check';
import type { SourcePositions } from './yaml-check';

export interface ServerFields {
  command: string[];
  readOnly?: string[];
  artifacts?: string[];
  state?: string[];
  scratchMiB?: number;
  env?: string[];
  secrets?: string[];
  health?: string;
  startTimeoutMs?: number;
  egress?: string[];
  memoryMiB?: number;
  pids?: number;
}

export interface ServerEgress {
  /** As written, e.g. 127.0.0.1:55432. */
  spec: string;
  cidr: string;
  port: number;
}

export interface ServerConfig {
  /** Program (absolute) and arguments; `${socket}` stands for the socket's path. */
  command: string[];
  /** Host paths mounted read-only at their own path (absolute). */
  readOnly: string[];
  /** Files whose digests are the tier's signed subject (default: the files among readOnly). */
  artifacts: string[];
  /** Host directories mounted read-write (never in a read-only tier). */
  state: string[];
  /** Size of the private tmpfs at /tmp in MiB; 0: none. */
  scratchMiB: number;
  /** NAME=value, `${socket}` substituted. */
  env: string[];
  /** NAME → host file whose first line the agent reads (as root) at each start. */
  secrets: Array<{ name: string; file: string }>;
  /** GET on the socket that answers 200 once the server serves. */
  health: string;
  startTimeoutMs: number;
  /** Where it may connect (TCP); empty: an empty network namespace. */
  egress: ServerEgress[];
  memoryBytes: number;
  pidsLimit: number;
}

export const SOCKET_PLACEHOLDER = '${socket}';
export const DEFAULT_SERVER_START_TIMEOUT_MS = 180_000;
export const DEFAULT_SERVER_MEMORY_MIB = 1024;
export const DEFAULT_SERVER_PIDS = 256;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const hostPath: Spec = {
  type: 'string',
  expect: 'a path',
  check: (v) => (v.trim() === '' || v.includes('\0') ? `${JSON.stringify(v)} is not a path` : v.split('/').includes('..') ? `${JSON.stringify(v)}: '..' is not allowed in a server path` : undefined),
};

const envEntry: Spec = {
  type: 'string',
  expect: 'NAME=value',
  check: (v) => {
    const eq = v.indexOf('=');
    return eq > 0 && ENV_NAME.test(v.slice(0, eq)) ? undefined : `${JSON.stringify(v)} is not NAME=value`;
  },
};

/** host:port with a literal IPv4 or IPv6 address ([::1]:5432), or cidr:port (10.0.0.0/8:5432). */
export function parseEgress(v: string): ServerEgress | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))(?:\/(\d{1,3}))?:(\d{1,5})$/.exec(v);
  const ip = m?.[1] ?? m?.[2];
  const port = Number(m?.[4]);
  if (!m || !ip || !isIP(ip) || port < 1 || port > 65535) return `${JSON.stringify(v)} is not ADDRESS:PORT with a literal IP address (e.g. 127.0.0.1:5432, [::1]:5432, 10.0.0.0/8:5432)`;
  const max = isIP(ip) === 6 ? 128 : 32;
  const bits = m[3] === undefined ? max : Number(m[3]);
  if (bits > max) return `${JSON.stringify(v)}: /${bits} is longer than the address`;
  return { spec: v, cidr: `${ip}/${bits}`, port };
}

export const SERVER_FIELD: Field = {
  spec: {
    type: 'object',
    fields: {
      command: {
        spec: { type: 'list', items: { type: 'string', expect: 'an argument', check: (v) => (v.includes('\0') ? 'an argument cannot hold NUL' : undefined) }, minItems: 1 },
        required: true,
        doc: 'the program (absolute, or relative to the policy file) and its arguments; ${socket} is the Unix socket to listen on',
      },
      readOnly: { spec: { type: 'list', items: hostPath, unique: true }, doc: 'host files and directories the server reads, mounted read-only at their own path' },
      artifacts: { spec: { type: 'list', items: hostPath, unique: true }, doc: 'files whose digests signed statements bind (default: the files among readOnly)' },
      state: { spec: { type: 'list', items: hostPath, unique: true }, doc: 'host directories the server writes (tiers that write only)' },
      scratchMiB: { spec: { type: 'integer', min: 1, max: 4096 }, doc: 'a private tmpfs of this size at /tmp, gone when the container ends' },
      env: { spec: { type: 'list', items: envEntry, unique: true }, doc: 'NAME=value environment of the server; ${socket} is substituted' },
      secrets: { spec: { type: 'list', items: envEntry, unique: true }, doc: 'NAME=file: the variable gets the first line of the file, read by the agent at each start' },
      health: {
        spec: { type: 'string', expect: 'a path', check: (v) => (/^\/[A-Za-z0-9._~\-/$?=&]*$/.test(v) ? undefined : `${JSON.stringify(v)} is not a request path such as /metadata`) },
        doc: 'GET on the socket that answers 200 once the server serves (default /metadata)',
      },
      startTimeoutMs: { spec: { type: 'integer', min: 1000, max: 3_600_000 }, doc: 'how long a start may take before the server is killed (default 180000)' },
      egress: {
        spec: { type: 'list', items: { type: 'string', expect: 'ADDRESS:PORT', check: (v) => (typeof parseEgress(v) === 'string' ? (parseEgress(v) as string) : undefined) }, unique: true },
        doc: 'where the server may connect, e.g. its database; absent: nowhere (an empty network namespace)',
      },
      memoryMiB: { spec: { type: 'integer', min: 64, max: 1_048_576 }, doc: 'memory limit per server container (default 1024)' },
      pids: { spec: { type: 'integer', min: 8, max: 65_536 }, doc: 'process and thread limit per server container (default 256)' },
    },
  },
  doc: "the operator's own FHIR server, run and confined by the agent instead of the reference worker",
};

/** Defaults, absolute paths, and the checks that need the tier: a read-only tier writes nowhere. */
export function compileServer(f: ServerFields, policyFile: string, tierPath: string, readOnly: boolean, at: SourcePositions): ServerConfig {
  const dir = path.dirname(path.resolve(policyFile));
  const abs = (p: string): string => path.resolve(dir, p);
  const p = `${tierPath}.server`;
  const state = (f.state ?? []).map(abs);
  if (readOnly && state.length > 0) {
    at.report(`${p}.state`, `tier is read-only (no rule routes a write to it): its server gets no writable state directory; use scratchMiB for temporary files`);
  }
  const readOnlyPaths = (f.readOnly ?? []).map(abs);
  for (const [i, s] of state.entries()) {
    if (readOnlyPaths.some((r) => r === s || s.startsWith(r + '/') || r.startsWith(s + '/'))) at.report(`${p}.state[${i}]`, `${s} overlaps a readOnly path: a directory is either read-only or state`);
  }
  const [program, ...args] = f.command;
  if (!program.includes('/')) at.report(`${p}.command[0]`, `${JSON.stringify(program)}: name the program by its path (absolute, or relative to the policy file); the container has no search path`);
  const secrets = (f.secrets ?? []).map((s) => ({ name: s.slice(0, s.indexOf('=')), file: abs(s.slice(s.indexOf('=') + 1)) }));
  const envNames = new Set((f.env ?? []).map((e) => e.slice(0, e.indexOf('='))));
  secrets.forEach((s, i) => {
    if (envNames.has(s.name)) at.report(`${p}.secrets[${i}]`, `${s.name} is set by env too: one source per variable`);
  });
  return {
    command: [abs(program), ...args],
    readOnly: readOnlyPaths,
    artifacts: (f.artifacts ?? []).map(abs),
    state,
    scratchMiB: f.scratchMiB ?? 0,
    env: f.env ?? [],
    secrets,
    health: f.health ?? '/metadata',
    startTimeoutMs: f.startTimeoutMs ?? DEFAULT_SERVER_START_TIMEOUT_MS,
    egress: (f.egress ?? []).map((e) => parseEgress(e) as ServerEgress),
    memoryBytes: (f.memoryMiB ?? DEFAULT_SERVER_MEMORY_MIB) * 1024 * 1024,
    pidsLimit: f.pids ?? DEFAULT_SERVER_PIDS,
  };
}
