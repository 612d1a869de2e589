// `fhirguard validate [--profile <url>] [--json] <file>...`: the proxy's resource validator,
// offline, so operators can check resources before sending them. A file that cannot be read
// or is not JSON is an invalid result, never a crash; the exit status is 0 when every file
// is valid, 1 otherwise.

import * as fs from 'node:fs';
import type { Issue } from '../fhir/outcome';
import { defaultProfileDir, FhirValidator, hasErrors } from '../fhir/validate/validator';
import type { Command } from './command';

interface FileResult {
  file: string;
  valid: boolean;
  issues: { severity: string; code: string; expression: string; diagnostics: string }[];
}

function flatten(issues: Issue[]): FileResult['issues'] {
  return issues.map((i) => ({ severity: i.severity, code: i.code, expression: (i.expression ?? []).join(', '), diagnostics: i.diagnostics }));
}

export function validateFile(v: FhirValidator, file: string, profiles: string[], unknownProfileIsError: boolean): FileResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { file, valid: false, issues: [{ severity: 'fatal', code: e.code === 'ENOENT' ? 'not-found' : 'exception', expression: '', diagnostics: `cannot read the file: ${e.message}` }] };
  }
  let resource: unknown;
  try {
    resource = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    return { file, valid: false, issues: [{ severity: 'fatal', code: 'structure', expression: '', diagnostics: `not JSON: ${(err as Error).message}` }] };
  }
  const issues = v.validateResource(resource, { profiles, unknownProfileIsError });
  return { file, valid: !hasErrors(issues), issues: flatten(issues) };
}

function human(r: FileResult): string {
  const errors = r.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').length;
  const warnings = r.issues.length - errors;
  const head = r.valid
    ? `${r.file}: valid${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}`
    : `${r.file}: INVALID (${errors} error${errors > 1 ? 's' : ''}${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''})`;
  const lines = r.issues.map((i) => `  ${i.severity.padEnd(7)} ${i.code.padEnd(13)} ${i.expression ? `${i.expression}: ` : ''}${i.diagnostics}`);
  return [head, ...lines].join('\n') + '\n';
}

export const validateCommand: Command = {
  name: 'validate',
  summary: 'validate FHIR R4 resources (JSON files) offline, with the checks the proxy applies',
  usage: '[--profile <url>] [--json] <file>...',
  options: {
    profile: { type: 'string', multiple: true, arg: '<url>', help: 'also validate against this profile (repeatable)' },
    json: { type: 'boolean', help: 'one JSON object per line and file: {"file","valid","issues":[...]}' },
    'profiles-dir': {
      type: 'string',
      env: 'FHIRGUARD_FHIR_PROFILES',
      arg: '<dir>',
      help: 'folder of custom profiles (StructureDefinitions, FHIR packages .tgz) (default profiles/fhir)',
    },
    'unknown-profile-error': { type: 'boolean', help: 'a profile that is not loaded is an error, not a warning' },
  },
  details: [
    'Checks structure, cardinality, types, primitive formats, required bindings, FHIRPath',
    'invariants, references, Bundle rules, narrative XHTML, and the profiles a resource claims',
    'in meta.profile. Exit status: 0 when every file is valid, 1 otherwise, 2 on a usage error.',
  ].join('\n'),
  async run(values, positionals) {
    if (positionals.length === 0) {
      process.stderr.write('fhirguard validate: name at least one file\n');
      return 2;
    }
    const dir = typeof values['profiles-dir'] === 'string' ? values['profiles-dir'] : defaultProfileDir();
    const v = new FhirValidator();
    for (const note of v.loadProfiles(dir)) process.stderr.write(`fhirguard validate: ${note}\n`);
    const profiles = Array.isArray(values.profile) ? values.profile.map(String) : [];
    const json = values.json === true;
    let allValid = true;
    for (const file of positionals) {
      const r = validateFile(v, file, profiles, values['unknown-profile-error'] === true);
      allValid &&= r.valid;
      process.stdout.write(json ? JSON.stringify(r) + '\n' : human(r));
    }
    return allValid ? 0 : 1;
  },
};
