// How many connections a worker holds open, seen from outside it: the agent cannot see the
// proxy's in-flight requests, but it can see the worker's accepted sockets. Once a draining
// worker has none, every proxy that was using it has let go (undici closes a removed
// member's connections only after their requests finished), so stopping it loses nothing.
//
// Read from /proc as root: the worker's socket descriptors (/proc/<pid>/fd) matched against
// the Unix sockets of its network namespace (/proc/<pid>/net/unix). A connection the worker
// accepted is connected (state 03) and carries its listener's path; a socket the worker
// connected itself carries none, and the listener is unconnected (01).

import { readdir, readFile, readlink } from 'node:fs/promises';

/** Connections `pid` has accepted and not closed; 0 when the process is gone. */
export async function acceptedConnections(pid: number): Promise<number> {
  let fds: string[];
  let table: string;
  try {
    fds = await readdir(`/proc/${pid}/fd`);
    table = await readFile(`/proc/${pid}/net/unix`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return 0;
    throw err;
  }
  const inodes = new Set<string>();
  await Promise.all(
    fds.map(async (fd) => {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]);
    }),
  );
  let n = 0;
  // Num RefCount Protocol Flags Type St Inode [Path]
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[5] === '03' && inodes.has(f[6])) n++;
  }
  return n;
}
