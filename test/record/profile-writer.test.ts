// From recorded sets to profile files: the template's argument filters and refusals are kept,
// names the worker never used are cut, used names outside the template get a rule that says
// so, the recording filter keeps the template's refusals, and the output is byte-stable.

import { parseEbpfProfile } from '../../src/enforce/ebpf-profile';
import { ebpfFromRecording, ebpfJson, recordingSeccomp, seccompFromRecording, seccompJson, withProvenance } from '../../src/record/profile-writer';
import { allowedSyscalls, parseSeccompProfile, type SeccompProfile } from '../../src/enforce/seccomp';

const template: SeccompProfile = {
  comment: ['tier x: what it does.', 'Hand-written starting profile (until recording).', 'Why the openat filter is there.'],
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  architectures: ['SCMP_ARCH_X86_64'],
  syscalls: [
    { names: ['read', 'write', 'close', 'getdents64'], action: 'SCMP_ACT_ALLOW', comment: 'files' },
    { names: ['openat'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 1603, op: 'SCMP_CMP_MASKED_EQ' }], comment: 'read-only opens' },
    { names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 21537, op: 'SCMP_CMP_EQ' }], comment: 'FIONBIO' },
    { names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 21505, op: 'SCMP_CMP_EQ' }], comment: 'TCGETS' },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, comment: 'ENOSYS: fall back to clone' },
    { names: ['unlink'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, comment: 'never removes files' },
    { names: ['ptrace'], action: 'SCMP_ACT_KILL_PROCESS', comment: 'never' },
  ],
};

describe('seccompFromRecording', () => {
  const used = ['write', 'read', 'openat', 'ioctl', 'futex', 'epoll_pwait'];
  const r = seccompFromRecording(template, used, 'in a test.');

  test('allows exactly the used names (and nothing the recording did not see)', () => {
    expect(allowedSyscalls(r.profile)).toEqual([...used].sort());
    expect(r.dropped).toEqual(['close', 'getdents64']);
  });

  test('keeps every argument filter of a used name, whole, in template order', () => {
    const openat = r.profile.syscalls.filter((s) => s.names.includes('openat'));
    expect(openat).toEqual([template.syscalls[1]]);
    const ioctl = r.profile.syscalls.filter((s) => s.names.includes('ioctl'));
    expect(ioctl.map((s) => s.args)).toEqual([template.syscalls[2].args, template.syscalls[3].args]);
  });

  test('keeps the refusals as written (they shape behaviour and never widen)', () => {
    for (const refusal of template.syscalls.slice(4)) expect(r.profile.syscalls).toContainEqual(refusal);
    expect(r.profile.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(r.profile.defaultErrnoRet).toBe(1);
  });

  test('gives used names no allowing rule named a rule of their own, for review', () => {
    expect(r.outsideTemplate).toEqual(['epoll_pwait', 'futex']);
    const own = r.profile.syscalls.find((s) => s.names.includes('futex'))!;
    expect(own.names).toEqual(['epoll_pwait', 'futex']);
    expect(own.action).toBe('SCMP_ACT_ALLOW');
    expect(own.comment).toMatch(/review/);
  });

  test('a used name the template refuses outright stays refused and is reported', () => {
    const x = seccompFromRecording(template, ['read', 'unlink'], 'p');
    expect(allowedSyscalls(x.profile)).toEqual(['read']);
    expect(x.refusedByTemplate).toEqual(['unlink']);
    expect(x.outsideTemplate).toEqual([]);
  });

  test('replaces the hand-written line with the provenance, keeps the others', () => {
    expect(r.profile.comment).toEqual(['tier x: what it does.', 'Recorded by `fhirguard record` in a test.', 'Why the openat filter is there.']);
    // Recording again on a recorded profile replaces its provenance line, not adds one.
    const again = seccompFromRecording(r.profile, used, 'again.');
    expect(again.profile.comment).toEqual(['tier x: what it does.', 'Recorded by `fhirguard record` again.', 'Why the openat filter is there.']);
    expect(withProvenance(undefined, 'p')).toEqual(['Recorded by `fhirguard record` p']);
  });

  test('writes the same bytes for the same sets in any order, and the agent can load them', () => {
    const a = seccompJson(seccompFromRecording(template, used, 'p').profile);
    const b = seccompJson(seccompFromRecording(template, [...used].reverse(), 'p').profile);
    expect(a).toBe(b);
    expect(a.endsWith('}\n')).toBe(true);
    expect(allowedSyscalls(parseSeccompProfile(JSON.parse(a), 'x.json'))).toEqual([...used].sort());
  });
});

describe('recordingSeccomp', () => {
  const f = recordingSeccomp(template);

  test('lets everything run and logs what the template does not allow', () => {
    expect(f.defaultAction).toBe('SCMP_ACT_LOG');
    expect(f.defaultErrnoRet).toBeUndefined();
  });

  test('keeps the ERRNO refusals, so the worker takes the paths it takes when enforced', () => {
    expect(f.syscalls).toContainEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    expect(f.syscalls).toContainEqual({ names: ['unlink'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
  });

  test('never kills: kill rules log instead', () => {
    expect(f.syscalls.find((s) => s.names.includes('ptrace'))!.action).toBe('SCMP_ACT_LOG');
    expect(f.syscalls.some((s) => /KILL|TRAP/.test(s.action))).toBe(false);
  });

  test('keeps argument filters on allowing rules', () => {
    expect(f.syscalls.find((s) => s.names.includes('openat'))!.args).toEqual([{ index: 2, value: 1603, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  });
});

describe('ebpfFromRecording', () => {
  test('serve set sorted; noWriteOpens and egress from the template', () => {
    const t = parseEbpfProfile({ comment: ['tier x serve.', 'Hand-written starting set.'], serve: ['read'], noWriteOpens: true, egress: [] }, 't.json');
    const p = ebpfFromRecording(t, ['write', 'read', 'accept4', 'read'], 'p');
    expect(p).toEqual({ comment: ['tier x serve.', 'Recorded by `fhirguard record` p'], serve: ['accept4', 'read', 'write'], noWriteOpens: true, egress: [] });
    expect(parseEbpfProfile(JSON.parse(ebpfJson(p)), 'out.json')).toEqual(p);
  });

  test('an unrestricted template stays unrestricted', () => {
    const p = ebpfFromRecording({ serve: [], noWriteOpens: false }, ['read'], 'p');
    expect(p.egress).toBeUndefined();
    expect(JSON.parse(ebpfJson(p))).not.toHaveProperty('egress');
  });
});
