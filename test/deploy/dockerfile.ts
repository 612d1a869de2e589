// The Dockerfile as data: its stages, their instructions with ARG defaults expanded, and what
// each COPY reads. Parsed with dockerfile-ast (the parser of the Docker language server).

import { readFileSync } from 'node:fs';
import { DockerfileParser, type Copy, type From } from 'dockerfile-ast';

export interface Step {
  keyword: string;
  /** Arguments as Docker reads them (line continuations joined). */
  args: string;
  /** --from=, --chown= ... */
  flags: Record<string, string>;
  line: number;
}

export interface Stage {
  name: string;
  /** The image or earlier stage it starts from, ARGs expanded. */
  base: string;
  steps: Step[];
}

export function expandArgs(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => args[(a ?? b) as string] ?? whole);
}

export function parseDockerfile(file: string): Stage[] {
  const dockerfile = DockerfileParser.parse(readFileSync(file, 'utf8'));
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of dockerfile.getInstructions()) {
    const keyword = ins.getKeyword();
    const line = ins.getRange().start.line + 1;
    if (keyword === 'FROM') {
      const from = ins as From;
      const name = from.getBuildStage() ?? String(stages.length);
      stages.push({ name, base: expandArgs(from.getImage() ?? '', globalArgs), steps: [] });
      continue;
    }
    if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [k, v] = (ins.getArgumentsContent() ?? '').split('=');
        globalArgs[k] = v ?? '';
      }
      continue;
    }
    const flags: Record<string, string> = {};
    if (keyword === 'COPY' || keyword === 'ADD') for (const f of (ins as Copy).getFlags()) flags[f.getName()] = f.getValue() ?? '';
    const args =
      keyword === 'COPY' || keyword === 'ADD'
        ? ins
            .getArguments()
            .map((a) => a.getValue())
            .join(' ')
        : (ins.getArgumentsContent() ?? '');
    stages[stages.length - 1].steps.push({ keyword, args, flags, line });
  }
  return stages;
}

/** The stage a stage builds on, following FROM <stage> chains. */
export function lineage(stages: Stage[], name: string): Stage[] {
  const out: Stage[] = [];
  let s = stages.find((x) => x.name === name);
  while (s) {
    out.unshift(s);
    const base = s.base;
    s = stages.find((x) => x.name === base);
  }
  return out;
}

/** The user a stage's processes run as: the last USER of the stage or of the stages below it. */
export function effectiveUser(stages: Stage[], name: string): string {
  let user = 'root';
  for (const s of lineage(stages, name)) for (const st of s.steps) if (st.keyword === 'USER') user = st.args.trim();
  return user;
}

export function isRootUser(user: string): boolean {
  const u = user.split(':')[0];
  return u === 'root' || u === '0';
}

export interface CopySpec {
  stage: string;
  from?: string;
  sources: string[];
  dest: string;
  line: number;
}

export function copies(stages: Stage[]): CopySpec[] {
  const out: CopySpec[] = [];
  for (const s of stages) {
    for (const st of s.steps) {
      if (st.keyword !== 'COPY' && st.keyword !== 'ADD') continue;
      const parts = st.args.split(/\s+/).filter(Boolean);
      out.push({ stage: s.name, from: st.flags.from, sources: parts.slice(0, -1), dest: parts[parts.length - 1], line: st.line });
    }
  }
  return out;
}

/** Packages an `apt-get install` in a RUN line asks for. */
export function aptPackages(run: string): string[] {
  const out: string[] = [];
  for (const m of run.matchAll(/apt-get\s+install\s+([^&;|]+)/g)) out.push(...m[1].split(/\s+/).filter((w) => w && !w.startsWith('-')));
  return out;
}

/**
 * The capabilities the comment block just above `FROM ... AS agent` documents (CAP_X names,
 * without the CAP_ prefix, as compose and Kubernetes spell them): the one list of the
 * agent's privileges that compose and the DaemonSet must grant exactly.
 */
export function documentedAgentCapabilities(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const from = lines.findIndex((l) => /^FROM\s+\S+\s+AS\s+agent\s*$/i.test(l));
  if (from < 0) throw new Error('no agent stage');
  let start = from;
  while (start > 0 && lines[start - 1].startsWith('#')) start--;
  const caps = new Set<string>();
  for (const l of lines.slice(start, from)) for (const m of l.matchAll(/\bCAP_([A-Z_]+)\b/g)) caps.add(m[1]);
  return [...caps].sort();
}
