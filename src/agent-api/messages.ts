// What the agent's API says, as types both sides share: the agent serves these over its Unix
// socket (GET /workers, /events, /counters, /enforcement) and the proxy reads them through
// ./client.ts. The proxy imports this folder and nothing else of the agent.

import type { TierTrust } from '../trust/start-check';
import type { RefusalCheck } from '../trust/reasons';

export type WorkerState = 'starting' | 'ready' | 'serving' | 'crashed' | 'stopped' | 'refused' | 'draining';

export interface WorkerInfo {
  tier: string;
  id: string;
  /** How the proxy reaches it: unix:/path. */
  address: string;
  socketPath: string;
  state: WorkerState;
  restarts: number;
  /** container: runc + seccomp (+ eBPF); process: degraded mode. */
  confinement: 'container' | 'process';
  /** The worker's cgroup (containers): /fhirguard/<tier>/<id>-<agent instance>. */
  cgroup: string | null;
  pid: number | null;
  /** ISO time of the last state change. */
  since: string;
  lastExit: WorkerExitInfo | null;
  /** Why the last start was refused (state 'refused'), else null; `check`: trust or image-scan. */
  refusal: { reason: string; message: string; check: RefusalCheck } | null;
}

/** How a worker's last run ended. */
export interface WorkerExitInfo {
  code: number | null;
  signal: string | null;
  at: string;
  /** The phase it was in: boot (never served) or serve. */
  phase?: 'boot' | 'serve';
  /** Syscalls its eBPF policy counted as violations in that run (what killed it, in enforce mode). */
  violations?: string[];
  /** The end of its log (an operator's server), when it failed to start or exited. */
  logTail?: string[];
}

export type Mechanism = 'seccomp' | 'ebpf' | 'mount_ro' | 'netns';

export const MECHANISMS: readonly Mechanism[] = ['seccomp', 'ebpf', 'mount_ro', 'netns'];

export interface MechanismState {
  active: boolean;
  /** Why not (or, when active, what exactly is applied). */
  reason: string;
}

export interface TierEnforcement {
  tier: string;
  /** running: workers started; refused: `enforcement: required` and a mechanism is missing;
   * external: the tier's upstreams are an operator's own servers. */
  status: 'running' | 'refused' | 'external';
  mode: 'audit' | 'enforce';
  enforcement: 'required' | 'preferred';
  confinement: 'container' | 'process' | 'none';
  mechanisms: Record<Mechanism, MechanismState>;
  reason?: string;
}

export interface TierCounters {
  tier: string;
  /** The eBPF action of the tier's policy (the `action` label of violation metrics). */
  action: 'enforce' | 'audit';
  syscalls: Record<string, { calls: number; violations: number }>;
  egressDenied: number;
  egressAllowed: number;
}

export interface ProfileInfo {
  tier: string;
  digest: string;
  seccompFile: string;
  ebpfFile: string;
  seccompAllowed: number;
  serveAllowed: number;
  borrowedFrom?: string;
}

export interface CountersReport {
  available: boolean;
  reason?: string;
  eventsDropped: number;
  tiers: TierCounters[];
}

export type FrontDoorState = 'starting' | 'serving' | 'crashed' | 'stopped';

export interface FrontDoorInfo {
  state: FrontDoorState;
  confinement: 'container' | 'process';
  pid: number | null;
  cgroup: string | null;
  restarts: number;
  lastExit: WorkerExitInfo | null;
}

export interface EnforcementReport {
  degraded: boolean;
  /**
   * trust: the tier's signed-statement check (null when the agent checks none);
   * startRefusals: refused start attempts by reason, either check (absent from older agents).
   */
  tiers: Array<TierEnforcement & { profile: ProfileInfo | null; trust?: TierTrust | null; startRefusals?: Record<string, number> }>;
  /** The proxy as the agent runs it (null: the agent does not run it; absent from older agents). */
  frontDoor?: (FrontDoorInfo & { mode: 'enforce' | 'audit'; profile: ProfileInfo | null }) | null;
}
