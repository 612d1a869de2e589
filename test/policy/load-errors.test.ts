// Every way a policy file can be wrong is refused at load with `<file>:<line>:<col>: <field
// path>: <what>`, pointing at the exact key or item at fault.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compilePolicy, loadPolicy, PolicyError } from '../../src/policy';
import { loadErrors as errors } from './helpers';

const TIERS = `tiers:
  - name: read
  - name: write
`;

describe('policy load errors', () => {
  test('unknown top-level field, at its key', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
defaults: {}
`),
    ).toEqual(['p.yaml:8:1: defaults: unknown field; expected one of: tiers, rules, supplyChain, authorization, limits']);
  });

  test('unknown tier field', () => {
    expect(
      errors(`tiers:
  - name: read
    timeout: 5
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
    ).toEqual(['p.yaml:3:5: tiers[0].timeout: unknown field; expected one of: name, upstreams, workers, timeoutMs, mode, enforcement, readOnly, server, tls']);
  });

  test('unknown rule field', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
  - resource: [Patient]
    interactions: [create]
    tier: write
`),
    ).toEqual([
      'p.yaml:8:5: rules[1].resource: unknown field; expected one of: resources, interactions, operations, tier, deny, clients, scopes, patient, certificates',
      'p.yaml:8:5: rules[1].resources: missing required field (R4 resource types the rule covers, or ["*"] for every type and the system level)',
    ]);
  });

  test('unknown resource type, with a hint for wrong case', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: [Patient, Patiant, observation]
    interactions: [read]
    tier: read
`),
    ).toEqual(['p.yaml:5:26: rules[0].resources[1]: "Patiant" is not an R4 resource type', 'p.yaml:5:35: rules[0].resources[2]: "observation" is not an R4 resource type (did you mean Observation?)']);
  });

  test('unknown interaction codes, with hints', () => {
    const lines = errors(`${TIERS}rules:
  - resources: ["*"]
    interactions:
      - read
      - search
      - conditional-delete
      - write
    tier: read
`);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^p\.yaml:8:9: rules\[0\]\.interactions\[1\]: "search" is not a FHIR interaction code \(did you mean search-type or search-system\?\); expected one of read, vread, /);
    expect(lines[1]).toMatch(/^p\.yaml:9:9: rules\[0\]\.interactions\[2\]: "conditional-delete" is not a FHIR interaction code \(conditional forms are covered by create, update, patch and delete\)/);
    expect(lines[2]).toMatch(/^p\.yaml:10:9: rules\[0\]\.interactions\[3\]: "write" is not a FHIR interaction code; expected/);
  });

  test('a rule naming a tier that is not defined', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [read]
    tier: reader
`),
    ).toEqual(["p.yaml:7:11: rules[0].tier: tier 'reader' is not defined; the tiers are read, write"]);
  });

  test('both tier and deny, and neither', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
    deny: true
  - resources: ["*"]
    interactions: [delete]
`),
    ).toEqual([
      'p.yaml:8:11: rules[0].deny: a rule has either tier: <name> or deny: true, not both',
      'p.yaml:9:5: rules[1]: a rule needs tier: <name> (serve what it matches) or deny: true (refuse it)',
    ]);
  });

  test('deny: false is refused (it would read as "allow")', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [delete]
    deny: false
`),
    ).toEqual(['p.yaml:7:11: rules[0].deny: expected true, found false']);
  });

  test('operations without the operation interaction', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [read]
    operations: ["$validate"]
    tier: read
`),
    ).toEqual(['p.yaml:7:17: rules[0].operations: operations applies to the operation interaction only; add operation to interactions']);
  });

  test('operation names must start with $', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [operation]
    operations: [validate, "$ok", "$no way"]
    tier: read
`),
    ).toEqual([
      'p.yaml:7:18: rules[0].operations[0]: "validate": operation names start with \'$\' (write "$validate")',
      'p.yaml:7:35: rules[0].operations[2]: "$no way" is not an operation name such as "$validate"',
    ]);
  });

  test("bad YAML: the parser's own message at its position", () => {
    const lines = errors(`${TIERS}rules: [
  - resources: ["*"
`);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^p\.yaml:\d+:\d+: \(syntax\): \S/);
  });

  test('a repeated key is an error, not a silent override', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
    tier: write
`),
    ).toEqual(['p.yaml:8:5: (syntax): Map keys must be unique']);
  });

  test('several documents in one file', () => {
    expect(errors(`${TIERS}---\nrules: []\n`)[0]).toMatch(/^p\.yaml:\d+:\d+: \(syntax\): Source contains multiple documents/);
  });

  test('empty tiers, empty rules, empty file, missing sections', () => {
    expect(errors('tiers: []\nrules: []\n')).toEqual(['p.yaml:1:8: tiers: expected at least 1 item, found none', 'p.yaml:2:8: rules: expected at least 1 item, found none']);
    expect(errors('# nothing yet\n')).toEqual(['p.yaml:1:1: (document): the file is empty; expected a mapping with the fields tiers, rules, supplyChain, authorization, limits']);
    expect(errors(`${TIERS}`)).toEqual(['p.yaml:1:1: rules: missing required field (rules, first match wins, no match = deny)']);
    expect(errors('tiers:\nrules: x\n')).toEqual([
      'p.yaml:1:7: tiers: expected a list (each item a mapping with the fields name, upstreams, workers, timeoutMs, mode, enforcement, readOnly, server, tls), found an empty value',
      'p.yaml:2:8: rules: expected a list (each item a mapping with the fields resources, interactions, operations, tier, deny, clients, scopes, patient, certificates), found the string "x"',
    ]);
    expect(errors('- a\n')).toEqual(['p.yaml:1:1: (document): expected a mapping with the fields tiers, rules, supplyChain, authorization, limits, found a list']);
  });

  test('tier names: duplicates and shapes', () => {
    expect(
      errors(`tiers:
  - name: read
  - name: Read Tier
  - name: read
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
    ).toEqual([`p.yaml:3:11: tiers[1].name: "Read Tier" is not a tier name: lower-case letters, digits, '-' and '_', starting with a letter, at most 32 characters`]);
    expect(
      errors(`tiers:
  - name: read
  - name: read
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
    ).toEqual(["p.yaml:3:11: tiers[1].name: tier 'read' is already defined by tiers[0]"]);
    expect(
      errors(`tiers:
  - name: proxy
rules:
  - resources: ["*"]
    interactions: [read]
    tier: proxy
`),
    ).toEqual(["p.yaml:2:11: tiers[0].name: 'proxy' is the front door's own name (its profiles and metrics): give the tier another"]);
  });

  test('upstream addresses', () => {
    expect(
      errors(`tiers:
  - name: read
    upstreams:
      - http://127.0.0.1:9101
      - unix:/run/fhirguard/read-0.sock
      - https://fhir.example.org/fhir
      - ftp://127.0.0.1:21
      - unix:relative.sock
      - http://127.0.0.1:9101/a/../fhir
      - http://user:secret@127.0.0.1:9101
      - not a url
      - http://127.0.0.1:9101
      - http://127.0.0.1:9102/?x=1
      - HTTP://127.0.0.1:9103/fhir/
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
    ).toEqual([
      'p.yaml:7:9: tiers[0].upstreams[3]: "ftp://127.0.0.1:21": expected http://host:port[/base], https://host:port[/base] or unix:/absolute/socket/path',
      'p.yaml:8:9: tiers[0].upstreams[4]: "unix:relative.sock": expected http://host:port[/base], https://host:port[/base] or unix:/absolute/socket/path',
      `p.yaml:9:9: tiers[0].upstreams[5]: "http://127.0.0.1:9101/a/../fhir": the base path must be plain segments (letters, digits, '.', '_', '~', '-'), e.g. https://fhir.example.org/fhir`,
      'p.yaml:10:9: tiers[0].upstreams[6]: "http://user:secret@127.0.0.1:9101": credentials do not belong in the policy file',
      'p.yaml:11:9: tiers[0].upstreams[7]: "not a url" is not a URL; expected http://host:port[/base], https://host:port[/base] or unix:/absolute/socket/path',
      'p.yaml:12:9: tiers[0].upstreams[8]: "http://127.0.0.1:9101" is listed twice',
      'p.yaml:13:9: tiers[0].upstreams[9]: "http://127.0.0.1:9102/?x=1": an upstream takes no query or fragment',
    ]);
  });

  test('numbers and enums out of range or of the wrong type', () => {
    expect(
      errors(`tiers:
  - name: read
    workers: 0
    timeoutMs: "10s"
    mode: block
    enforcement: yes
    readOnly: 1
  - name: write
    workers: 2.5
    timeoutMs: 99999999
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
    ).toEqual([
      'p.yaml:3:14: tiers[0].workers: expected an integer from 1 to 64, found 0',
      'p.yaml:4:16: tiers[0].timeoutMs: expected an integer from 1 to 3600000, found the string "10s"',
      'p.yaml:5:11: tiers[0].mode: "block" is not one of audit, enforce',
      'p.yaml:6:18: tiers[0].enforcement: "yes" is not one of required, preferred',
      'p.yaml:7:15: tiers[0].readOnly: expected true or false, found 1',
      'p.yaml:9:14: tiers[1].workers: expected an integer from 1 to 64, found 2.5',
      'p.yaml:10:16: tiers[1].timeoutMs: expected an integer from 1 to 3600000, found 99999999',
    ]);
  });

  test('workers on a tier with upstreams', () => {
    expect(
      errors(`tiers:
  - name: read
    upstreams: ["http://127.0.0.1:9101"]
    workers: 3
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
    ).toEqual(["p.yaml:4:14: tiers[0].workers: tier 'read' has upstreams; workers counts embedded reference workers, which a tier with upstreams does not start"]);
  });

  test('readOnly may only make a tier stricter', () => {
    expect(
      errors(`tiers:
  - name: read
    readOnly: false
  - name: write
    readOnly: true
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
  - resources: [Patient]
    interactions: [read, update]
    tier: write
`),
    ).toEqual([
      "p.yaml:3:15: tiers[0].readOnly: readOnly: false would loosen tier 'read', to which no rule routes anything that writes; remove the field",
      "p.yaml:5:15: tiers[1].readOnly: tier 'write' cannot be read-only: rules[1] routes update to it",
    ]);
  });

  test('system-level interactions need resources: ["*"], and "*" stands alone', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: [Patient]
    interactions: [read, batch, capabilities]
    tier: read
  - resources: ["*", Patient]
    interactions: [read]
    tier: read
`),
    ).toEqual([
      'p.yaml:6:26: rules[0].interactions[1]: batch is a system-level interaction, with no resource type: it needs resources: ["*"]',
      'p.yaml:6:33: rules[0].interactions[2]: capabilities is a system-level interaction, with no resource type: it needs resources: ["*"]',
      'p.yaml:8:16: rules[1].resources: "*" already covers every type: list either "*" or resource types',
    ]);
  });

  test('duplicates inside a list', () => {
    expect(
      errors(`${TIERS}rules:
  - resources: [Patient, Patient]
    interactions: [read, read]
    tier: read
`),
    ).toEqual(['p.yaml:5:26: rules[0].resources[1]: "Patient" is listed twice', 'p.yaml:6:26: rules[0].interactions[1]: "read" is listed twice']);
  });

  test('anchors and aliases are fine; an alias bomb is refused', () => {
    const ok = compilePolicy(
      `tiers:
  - name: read
rules:
  - resources: &all ["*"]
    interactions: [read]
    tier: read
  - resources: *all
    interactions: [delete]
    deny: true
`,
      'p.yaml',
    );
    expect(ok.tiers.map((t) => t.name)).toEqual(['read']);
    const bomb = ['a0: &a0 [Patient]'];
    for (let k = 1; k < 12; k++) bomb.push(`a${k}: &a${k} [*a${k - 1}, *a${k - 1}]`);
    const lines = errors(
      `${bomb.map((l) => `# ${l}`).join('\n')}\ntiers:\n  - name: read\nrules:\n  - resources: &r [Patient]\n    interactions: [read]\n    tier: read\n${Array.from({ length: 101 }, () => '  - resources: *r\n    interactions: [read]\n    tier: read\n').join('')}`,
    );
    expect(lines.some((l) => /: more than 100 aliases; write the values out$/.test(l))).toBe(true);
  });

  test('all problems of a file are reported together', () => {
    expect(
      errors(`tiers:
  - name: read
    colour: blue
rules:
  - resources: [Patiant]
    interactions: [reed]
    tier: read
`),
    ).toHaveLength(3);
  });

  test('loadPolicy names the file it read, and a file that cannot be read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirguard-policy-'));
    try {
      const file = path.join(dir, 'policy.yaml');
      fs.writeFileSync(file, `${TIERS}rules:\n  - resources: ["*"]\n    interactions: [read]\n    tier: nowhere\n`);
      expect(() => loadPolicy(file)).toThrow(`${file}:7:11: rules[0].tier: tier 'nowhere' is not defined; the tiers are read, write`);
      const missing = path.join(dir, 'absent.yaml');
      expect(() => loadPolicy(missing)).toThrow(`${missing}:1:1: (document): cannot read the policy file: no such file`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the fixture with every kind of mistake', () => {
    const file = path.join(__dirname, '..', 'fixtures', 'policy', 'broken.yaml');
    let err: PolicyError | undefined;
    try {
      loadPolicy(file);
    } catch (e) {
      err = e as PolicyError;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect(err!.issues.map((i) => [i.line, i.path])).toEqual([
      [9, 'tiers[1].upstream'],
      [13, 'rules[0].resources[0]'],
      [14, 'rules[0].interactions[1]'],
    ]);
    for (const i of err!.issues) expect(i.file).toBe(file);
  });
});
