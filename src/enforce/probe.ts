// What kernel confinement this host and this process can give workers: are we root, is
// runc here, does the kernel filter syscalls, where does the cgroup v2 hierarchy live.
// Each missing piece comes with the reason, for the loud degraded-mode log and for
// GET /enforcement.

import { accessSync, constants, existsSync, readFileSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { runcVersion } from './runc';

export interface Capability {
  ok: boolean;
  /** Why not, when !ok; what was found, when ok. */
  detail: string;
}

export interface HostProbe {
  root: Capability;
  runc: Capability & { path?: string; version?: string };
  seccomp: Capability;
  /** The cgroup v2 mount whose directory inodes are the cgroup ids eBPF sees. */
  cgroupV2: Capability & { mount?: string };
}

/** Where runc is looked for when no path is given. */
const RUNC_SEARCH = ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc'];

const CGROUP2_SUPER_MAGIC = 0x63677270;

function findRunc(explicit?: string): string | undefined {
  const candidates = explicit
    ? [explicit]
    : [
        ...(process.env.PATH ?? '')
          .split(':')
          .filter(Boolean)
          .map((d) => path.join(d, 'runc')),
        ...RUNC_SEARCH,
      ];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next place
    }
  }
  return undefined;
}

export function cgroupV2Mount(): string | undefined {
  for (const m of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    try {
      if (existsSync(m) && Number(statfsSync(m).type) === CGROUP2_SUPER_MAGIC) return m;
    } catch {
      // not mounted
    }
  }
  return undefined;
}

/** `runcPath`: an explicit runc binary (--runc); absent: PATH and the usual places. */
export async function probeHost(runcPath?: string): Promise<HostProbe> {
  const uid = process.getuid?.() ?? -1;
  const root: Capability = uid === 0 ? { ok: true, detail: 'running as root' } : { ok: false, detail: `not root (uid ${uid}): runc and eBPF need root` };

  let runc: HostProbe['runc'];
  const found = findRunc(runcPath);
  if (!found) {
    runc = { ok: false, detail: runcPath ? `runc not found at ${runcPath}` : 'runc not found (apt-get install runc)' };
  } else {
    try {
      const version = await runcVersion(found);
      runc = { ok: true, detail: `runc ${version} at ${found}`, path: found, version };
    } catch (err) {
      runc = { ok: false, detail: `${found} does not run: ${(err as Error).message.split('\n')[0]}` };
    }
  }

  let seccomp: Capability;
  try {
    const actions = readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8').trim();
    const needed = ['errno', 'log', 'allow'];
    const missing = needed.filter((a) => !actions.split(/\s+/).includes(a));
    seccomp = missing.length ? { ok: false, detail: `kernel seccomp lacks actions: ${missing.join(', ')}` } : { ok: true, detail: `seccomp actions: ${actions}` };
  } catch {
    seccomp = { ok: false, detail: 'kernel has no seccomp filter support (/proc/sys/kernel/seccomp missing)' };
  }

  const mount = cgroupV2Mount();
  const cgroupV2: HostProbe['cgroupV2'] = mount ? { ok: true, detail: `cgroup v2 at ${mount}`, mount } : { ok: false, detail: 'no cgroup v2 hierarchy mounted' };

  return { root, runc, seccomp, cgroupV2 };
}

/** Containers need root, runc and seccomp; the reasons they cannot run, or [] when they can. */
export function containerBlockers(p: HostProbe): string[] {
  return [p.root, p.runc, p.seccomp].filter((c) => !c.ok).map((c) => c.detail);
}
