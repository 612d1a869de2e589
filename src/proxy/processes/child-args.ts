// How the supervisor starts a proxy process: the user's own `fhirguard proxy` options, less
// those the supervisor keeps for itself (the listeners it binds, the trail it writes), plus
// `--supervised`: listen on the inherited descriptor, report on the IPC channel; and
// `--audit-handover` when the supervisor keeps an audit trail (a child makes no events else).

/** The inherited FHIR listener in a child: fd 3 is the IPC channel. */
export const SUPERVISED_FHIR_FD = 4;

/** Options with a value the supervisor keeps: they are not passed on. */
const KEPT = new Set(['listen', 'admin', 'processes', 'audit-dir', 'audit-sink']);

/** A child's command-line options from the supervisor's parsed `values`; `audit`: it keeps a trail (or hands one to the agent). */
export function childArgs(values: Record<string, string | boolean | string[] | undefined>, audit: boolean): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (KEPT.has(name) || value === undefined || value === false) continue;
    if (value === true) args.push(`--${name}`);
    else for (const v of Array.isArray(value) ? value : [value]) args.push(`--${name}`, v);
  }
  return [...args, '--processes', '1', '--supervised', ...(audit ? ['--audit-handover'] : [])];
}
