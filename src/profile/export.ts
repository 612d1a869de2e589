// A tier's seccomp profile in the forms other runtimes read:
//   docker: the JSON `docker run --security-opt seccomp=<file>` (and a kubelet Localhost
//           profile) reads, rule comments kept;
//   oci:    the `linux.seccomp` object of an OCI runtime config (runc, crun, containerd);
//   spo:    a Kubernetes Security Profiles Operator SeccompProfile object, as YAML.
// SPO layouts (its api/seccompprofile types and config.ProfilesRootPath):
//   SPO >= 0.9  SeccompProfile is cluster-scoped: the operator writes each one to
//               <kubelet root>/seccomp/operator/<name>.json on every node, so a pod names it as
//               localhostProfile `operator/<name>.json`.
//   SPO >= 1.0  serves v1 (its storage version) and still v1beta1; 0.9 and 0.10 serve
//               v1beta1 only. The default is v1; `--spo-api v1beta1` writes for 0.9 and 0.10.
//   SPO <= 0.8  namespaced objects under operator/<namespace>/<name>.json: the objects are the
//               same v1beta1 ones, placed in a namespace (deploy/kubernetes/spo-0.8 does that).
// Output is a pure function of the profile (sorted names, fixed key order, no dates), so
// regenerating gives the same bytes and a review sees only real changes.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Document, isMap, isSeq } from 'yaml';
import { ociSeccomp, type SeccompProfile, type SeccompRule } from '../enforce/seccomp';
import { ProfileError } from './errors';
import type { ProfileSet } from './load';

export const EXPORT_FORMATS = ['docker', 'oci', 'spo'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
/** enforce: the profile as written; audit: every refusal becomes SCMP_ACT_LOG. */
export type ExportMode = 'enforce' | 'audit';

export const SPO_GROUP = 'security-profiles-operator.x-k8s.io';
export const SPO_APIS = ['v1', 'v1beta1'] as const;
export type SpoApi = (typeof SPO_APIS)[number];
/** The version current SPO (1.x) stores SeccompProfiles in. */
export const SPO_API_VERSION = `${SPO_GROUP}/v1`;

/** The SeccompProfile object name of a tier. */
export function spoProfileName(tier: string): string {
  return `fhirguard-${tier}`;
}

/**
 * What a pod's `seccompProfile.localhostProfile` names to run under a tier's profile, relative
 * to the kubelet's seccomp root: cluster-scoped objects (SPO >= 0.9) land in operator/ itself,
 * namespaced ones (SPO <= 0.8) in operator/<namespace>/.
 */
export function spoLocalhostProfile(tier: string, namespace?: string): string {
  return ['operator', ...(namespace ? [namespace] : []), `${spoProfileName(tier)}.json`].join('/');
}

export interface ExportOptions {
  /** enforce (default) or audit. */
  mode?: ExportMode;
  /** spo: the SeccompProfile API version (default v1). */
  spoApi?: SpoApi;
}

export interface ExportedFile {
  tier: string;
  /** File name under the output directory. */
  name: string;
  content: string;
}

export function exportFileName(format: ExportFormat, tier: string): string {
  if (format === 'docker') return `fhirguard-${tier}.json`;
  if (format === 'oci') return `fhirguard-${tier}.oci-seccomp.json`;
  return `fhirguard-${tier}.seccompprofile.yaml`;
}

type OutRule = { names: string[]; action: string; errnoRet?: number; args?: Array<{ index: number; value: number; valueTwo: number; op: string }>; comment?: string };

/** One rule with a fixed key order and sorted names. */
function outRule(r: Omit<SeccompRule, 'comment'>, comment: string | undefined): OutRule {
  const o: OutRule = { names: [...new Set(r.names)].sort(), action: r.action };
  if (r.errnoRet !== undefined) o.errnoRet = r.errnoRet;
  if (r.args?.length) o.args = r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op }));
  if (comment) o.comment = comment;
  return o;
}

/** The profile in one mode, keys in the order Docker writes them. */
function ordered(profile: SeccompProfile, mode: ExportMode, withComments: boolean): { defaultAction: string; defaultErrnoRet?: number; architectures: string[]; syscalls: OutRule[] } {
  const oci = ociSeccomp(profile, mode);
  return {
    defaultAction: oci.defaultAction,
    ...(oci.defaultErrnoRet !== undefined ? { defaultErrnoRet: oci.defaultErrnoRet } : {}),
    architectures: [...oci.architectures],
    // ociSeccomp keeps the rules in the profile's order, so index i is the same rule.
    syscalls: oci.syscalls.map((r, i) => outRule(r, withComments ? profile.syscalls[i].comment : undefined)),
  };
}

function digest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function spoDocument(tier: string, profile: SeccompProfile, file: string, relFile: string, mode: ExportMode, api: SpoApi): string {
  const seccomp = ordered(profile, mode, false);
  const spec: Record<string, unknown> = {
    defaultAction: seccomp.defaultAction,
    architectures: seccomp.architectures,
    syscalls: seccomp.syscalls,
  };
  const obj = {
    apiVersion: `${SPO_GROUP}/${api}`,
    kind: 'SeccompProfile',
    // No namespace: the object is cluster-scoped (SPO >= 0.9).
    metadata: {
      name: spoProfileName(tier),
      labels: { 'app.kubernetes.io/part-of': 'fhirguard', 'fhirguard/tier': tier },
      annotations: { 'fhirguard/source': relFile, 'fhirguard/source-sha256': digest(file), 'fhirguard/mode': mode },
    },
    spec,
  };
  const doc = new Document(obj);
  doc.commentBefore = [
    ` fhirguard ${tier} tier seccomp profile for the Security Profiles Operator (generated by \`fhirguard profile export --format spo\` from ${relFile}; regenerate, do not edit).`,
    ` Cluster-scoped (SPO >= 0.9): pods name it as localhostProfile ${spoLocalhostProfile(tier)}.`,
  ].join('\n');
  // The CRD has no comment field: each rule's reason travels as a YAML comment.
  const rules = doc.getIn(['spec', 'syscalls'], true);
  if (isSeq(rules)) {
    rules.items.forEach((item, i) => {
      const c = profile.syscalls[i]?.comment;
      if (c && isMap(item)) item.commentBefore = ` ${c.replace(/\n/g, ' ')}`;
    });
  }
  return doc.toString({ lineWidth: 0 });
}

export interface ExportResult {
  files: ExportedFile[];
  /** Things the target format cannot carry, said once per tier. */
  warnings: string[];
}

export function exportProfiles(set: ProfileSet, format: ExportFormat, options: ExportMode | ExportOptions = {}): ExportResult {
  const { mode = 'enforce', spoApi = 'v1' } = typeof options === 'string' ? { mode: options } : options;
  const files: ExportedFile[] = [];
  const warnings: string[] = [];
  const root = path.resolve(set.source);
  for (const t of set.tiers) {
    if (!t.seccomp) throw new ProfileError(path.join(set.source, 'seccomp', `${t.tier}.json`), undefined, `tier ${t.tier} has no seccomp profile to export`);
    const { file, profile } = t.seccomp;
    let content: string;
    if (format === 'spo') {
      const rel = path.relative(root, path.resolve(file)) || path.basename(file);
      content = spoDocument(t.tier, profile, file, rel.split(path.sep).join('/'), mode, spoApi);
      const errno = ociSeccomp(profile, mode).defaultErrnoRet;
      if (errno !== undefined && errno !== 1) {
        warnings.push(`${file}: defaultErrnoRet ${errno}: a SeccompProfile cannot carry it, the runtime's default (EPERM) applies`);
      }
    } else {
      content = JSON.stringify(ordered(profile, mode, format === 'docker'), null, 2) + '\n';
    }
    files.push({ tier: t.tier, name: exportFileName(format, t.tier), content });
  }
  return { files, warnings };
}
