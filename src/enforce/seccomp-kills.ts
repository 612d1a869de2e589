// Which call a seccomp filter killed a process at: the kernel logs every SECCOMP_RET_KILL_*
// (an audit record, type 1326, in the kernel log when no audit daemon takes it), with the
// process id, the signal (31, SIGSYS) and the syscall number. The proof of completeness makes
// its filter's default action fatal, so a worker dead of SIGSYS can say what was missing.

import { execFile } from 'node:child_process';
import { syscallName } from './syscalls';

export const SIGSYS_EXIT = 128 + 31;

/** Syscall names the kernel log says `pid` was killed at by seccomp (empty when the log is
 * unreadable or rotated). */
export function seccompKills(pid: number): Promise<string[]> {
  return new Promise((resolve) => {
    if (!pid) return resolve([]);
    execFile('dmesg', { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) return resolve([]);
      const names = new Set<string>();
      for (const line of stdout.split('\n')) {
        if (!line.includes('type=1326') || !line.includes(` pid=${pid} `) || !/ sig=31 /.test(line)) continue;
        const nr = /syscall=(\d+)/.exec(line)?.[1];
        if (nr !== undefined) names.add(syscallName(Number(nr)) ?? `syscall_${nr}`);
      }
      resolve([...names].sort());
    });
  });
}
