// `fhirguard image build | scan | digest`: the reference worker as a reproducible OCI image,
// its SBOM matched against an offline OSV advisory database under the policy's gate, and
// the manifest digest a reference names (what `fhirguard sign` and the agent bind).
// Exit status: 0 done (scan: the gate passes), 1 the gate refuses the image, 2 error or bad usage.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { enforcePaths } from '../agent/options';
import { installRoot } from '../install/root';
import { buildImage, defaultEpoch } from '../image/build';
import { describeDecision } from '../image/scan-gate';
import { manifestDigest } from '../image/layout';
import { gateScan, scanImage } from '../image/scan';
import { toolVersion } from '../image/tool';
import { loadPolicy } from '../policy';
import type { Command } from './command';

type Values = Record<string, string | boolean | string[] | undefined>;

class UsageError extends Error {}

function say(line: string): void {
  process.stderr.write(`fhirguard image: ${line}\n`);
}

function oneRef(args: string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`${what} needs one image reference: <layout-dir>[:<tag>] or <layout-dir>@sha256:<digest>`);
  return args[0];
}

function build(values: Values, args: string[]): number {
  const ref = oneRef(args, 'build');
  const colon = ref.lastIndexOf(':');
  const [output, tag] = colon > 0 && !ref.slice(colon + 1).includes('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw new UsageError(`${JSON.stringify(tag)} is not an image tag`);
  const install = installRoot();
  const epochText = values['source-date-epoch'];
  const epoch = typeof epochText === 'string' ? Number(epochText) : defaultEpoch(install);
  if (!Number.isInteger(epoch) || epoch < 0) throw new UsageError(`--source-date-epoch ${String(epochText)} is not a number of seconds`);
  const r = buildImage({ install, output: path.resolve(output), tag, epoch, log: say });
  for (const l of r.layers) say(`layer ${l.name}: ${l.digest} (${(l.size / 1048576).toFixed(1)} MiB compressed)`);
  say(`Debian packages copied in: ${r.packages.map((p) => `${p.package} ${p.version}`).join(', ') || 'none (not a Debian host)'}`);
  process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : `${r.ref} ${r.digest}\n`);
  return 0;
}

async function scan(values: Values, args: string[]): Promise<number> {
  const ref = oneRef(args, 'scan');
  const advisories = values.advisories;
  if (typeof advisories !== 'string' || !advisories) throw new UsageError('scan needs --advisories <dir> (FHIRGUARD_ADVISORIES): an OSV advisory database');
  const policy = loadPolicy(enforcePaths(values).policyFile);
  for (const w of policy.warnings) if (w.includes('supplyChain')) say(`warning: ${w}`);
  const result = await scanImage({ image: ref, advisories: path.resolve(advisories), policy: policy.supplyChain, tool: toolVersion() });
  if (typeof values.sbom === 'string') writeFileSync(values.sbom, result.sbomJson);
  if (typeof values.report === 'string') writeFileSync(values.report, result.reportJson);
  const d = gateScan(result, policy.supplyChain);
  say(
    `${result.inventory.components.length} packages (${result.inventory.components.filter((c) => c.ecosystem === 'npm').length} npm, ${result.inventory.components.filter((c) => c.ecosystem === 'Debian').length} Debian), ${result.db.advisories.length} advisories, ${result.findings.length} findings`,
  );
  if (values.json) {
    const gate = {
      refused: d.refused,
      failOn: d.failOn,
      blocking: d.blocking.map((g) => ({
        id: g.finding.id,
        package: g.finding.component.name,
        version: g.finding.component.version,
        severity: g.severity,
        ...(g.waiver ? { expiredWaiver: g.waiver.expires } : {}),
      })),
      waived: d.waived.map((g) => ({ id: g.finding.id, package: g.finding.component.name, severity: g.severity, waiver: { reason: g.waiver!.reason, expires: g.waiver!.expires } })),
      unusedWaivers: d.unused.map((w) => w.path),
    };
    process.stdout.write(JSON.stringify({ image: result.image.digest, reportSha256: result.reportDigest, report: result.report, gate }, null, 2) + '\n');
  } else {
    process.stdout.write(`${describeDecision(d, `${ref} (${result.image.digest})`)}\n`);
    for (const g of d.below) process.stdout.write(`  below ${d.failOn}: ${g.finding.id} ${g.severity} ${g.finding.component.ecosystem} ${g.finding.component.name} ${g.finding.component.version}\n`);
  }
  return d.refused ? 1 : 0;
}

async function digest(args: string[]): Promise<number> {
  process.stdout.write(`${await manifestDigest(oneRef(args, 'digest'))}\n`);
  return 0;
}

export const imageCommand: Command = {
  name: 'image',
  summary: 'build the worker image (OCI layout), scan it against OSV advisories, print its digest',
  usage: 'build <layout-dir>[:<tag>] | scan <image> --advisories <dir> | digest <image>',
  options: {
    advisories: { type: 'string', env: 'FHIRGUARD_ADVISORIES', arg: '<dir>', help: 'scan: the OSV advisory database (a directory of OSV JSON files, e.g. osv.dev exports unpacked)' },
    policy: { type: 'string', env: 'FHIRGUARD_POLICY', arg: '<file>', help: 'scan: the policy whose supplyChain section gates the image (default: the shipped profiles/policy.yaml)' },
    sbom: { type: 'string', arg: '<file>', help: 'scan: write the CycloneDX 1.5 JSON SBOM here' },
    report: { type: 'string', arg: '<file>', help: 'scan: write the scan report (what a signed statement binds) here' },
    'source-date-epoch': { type: 'string', env: 'SOURCE_DATE_EPOCH', arg: '<seconds>', help: "build: every timestamp in the image (default: the install's last git commit, else 0)" },
    json: { type: 'boolean', help: 'machine-readable output' },
  },
  details: [
    'An image is <layout-dir>[:<tag>] (no tag: the only image, or `latest`) or <layout-dir>@sha256:<digest>.',
    'build: the worker runtime (node and the libraries it loads), the production node_modules and',
    '  the app as three layers, no shell; the same tree and epoch give the same digest. Needs umoci.',
    'scan: npm and Debian packages of the image (CycloneDX) against the advisories; refuses (exit 1)',
    "  when a finding is at or above the policy's supplyChain.scan.failOn and no waiver holds.",
    'digest: the manifest digest the image reference names now.',
  ].join('\n'),
  async run(values, positionals) {
    const [sub, ...args] = positionals;
    try {
      if (sub === 'build') return build(values, args);
      if (sub === 'scan') return await scan(values, args);
      if (sub === 'digest') return await digest(args);
      throw new UsageError(sub ? `unknown subcommand '${sub}': build, scan or digest` : 'name a subcommand: build, scan or digest');
    } catch (err) {
      say((err as Error).message);
      return 2;
    }
  },
};
