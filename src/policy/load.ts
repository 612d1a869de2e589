// Reading a policy file: YAML (with a LineCounter, so every problem carries its line and
// column), the schema, then compilation. Any problem stops the load with a PolicyError
// listing all that were found.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { compile } from './compile';
import { PolicyError } from './policy-error';
import { POLICY_SPEC, type PolicyFields } from './schema';
import type { Policy } from './types';
import { checkDocument, SourcePositions } from './yaml-check';

/** Compiles policy text; `file` names it in messages. Throws PolicyError. */
export function compilePolicy(text: string, file: string): Policy {
  const lines = new LineCounter();
  // uniqueKeys: a repeated key is an error, never a silent override of the first.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = new SourcePositions(file, lines);
  for (const e of [...doc.errors, ...doc.warnings]) at.report('(syntax)', e.message, e.pos[0]);
  if (at.issues.length > 0) throw new PolicyError(at.issues);

  // The schema guarantees the shape PolicyFields describes once no issue was reported.
  const fields = checkDocument(doc, POLICY_SPEC, at) as PolicyFields | undefined;
  const policy = fields && compile(fields, file, policyDigest(text), at);
  if (!policy || at.issues.length > 0) throw new PolicyError(at.issues);
  return policy;
}

/** What names a policy's content in metrics, logs and reload answers: `sha256:<hex>` of its text. */
export function policyDigest(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** Reads and compiles a policy file. Throws PolicyError. */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new PolicyError([{ file, line: 1, col: 1, path: '(document)', message: `cannot read the policy file: ${why}` }]);
  }
  return compilePolicy(text, file);
}
