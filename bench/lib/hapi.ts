// HAPI FHIR for the tests and the benchmark of tiers an operator's server serves: the
// example's jar (built with Maven when missing or older than its sources, as `make hapi`
// builds it), a PostgreSQL cluster of their own (examples/hapi/postgres.sh, on a free port),
// and the example policy rewritten to both. Everything real: the JVM, HAPI, PostgreSQL.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../src/record/ports';

const REPO = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []));
export const HAPI_DIR = path.join(REPO, 'examples', 'hapi');
export const HAPI_PROFILES = path.join(HAPI_DIR, 'profiles');
export const HAPI_TEMPLATES = path.join(HAPI_PROFILES, 'template');
/** The state directory the example policy names; tests put theirs in its place. */
const POLICY_STATE = '/var/lib/fhirguard-hapi';
const POLICY_PORT = '55432';

/** Builds the jar when needed (the first build downloads HAPI from Maven Central); returns its path. */
export function hapiJar(): string {
  execFileSync(path.join(HAPI_DIR, 'run.sh'), ['build'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 900_000 });
  return path.join(HAPI_DIR, 'target', 'fhirguard-hapi.jar');
}

export interface HapiWorld {
  /** The example's state for this test: app/, secrets/, pg/. */
  state: string;
  port: number;
  policyFile: string;
  jar: string;
  postgres(command: 'start' | 'stop' | 'status'): string;
  /** Puts a jar where the policy names it (a rename: running JVMs keep theirs). */
  installJar(from: string): void;
  stop(): void;
}

/**
 * PostgreSQL started in `<dir>/hapi` and the example policy rewritten to it, as `<dir>/policy.yaml`.
 * `dir` must be passable (0711) for the postgres user and the tiers' identities.
 */
export async function hapiWorld(dir: string, jar: string): Promise<HapiWorld> {
  const state = path.join(dir, 'hapi');
  mkdirSync(path.join(state, 'app'), { recursive: true });
  chmodSync(state, 0o711);
  const port = await freePort();
  const env = { ...process.env, FHIRGUARD_HAPI_STATE: state, FHIRGUARD_HAPI_PG_PORT: String(port) };
  const postgres = (command: string): string => execFileSync(path.join(HAPI_DIR, 'postgres.sh'), [command], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const installJar = (from: string): void => {
    const to = path.join(state, 'app', 'fhirguard-hapi.jar');
    copyFileSync(from, `${to}.new`);
    renameSync(`${to}.new`, to);
  };
  installJar(jar);
  postgres('start');
  const policyFile = path.join(dir, 'policy.yaml');
  const text = readFileSync(path.join(HAPI_DIR, 'policy.yaml'), 'utf8').split(POLICY_STATE).join(state).split(POLICY_PORT).join(String(port));
  writeFileSync(policyFile, text);
  return {
    state,
    port,
    policyFile,
    jar: path.join(state, 'app', 'fhirguard-hapi.jar'),
    postgres: postgres as HapiWorld['postgres'],
    installJar,
    stop: () => {
      try {
        postgres('stop');
      } catch {
        // already stopped
      }
    },
  };
}
