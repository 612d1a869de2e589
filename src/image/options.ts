// The image options `fhirguard agent` and `fhirguard up` share: the worker image to run
// (instead of the host's files) and the advisory database it is scanned against.

import path from 'node:path';
import type { Logger } from 'pino';
import type { OptionSpec } from '../cli/command';
import type { Policy } from '../policy';
import { toolVersion } from './tool';
import { WorkerImage } from './worker-image';

export const IMAGE_OPTIONS: Record<string, OptionSpec> = {
  image: {
    type: 'string',
    env: 'FHIRGUARD_IMAGE',
    arg: '<layout>[:<tag>]',
    help: 'run workers from this OCI image (from `fhirguard image build`; also <layout>@sha256:<digest>), scanned and gated before it is unpacked, instead of from host files',
  },
  advisories: {
    type: 'string',
    env: 'FHIRGUARD_ADVISORIES',
    arg: '<dir>',
    help: 'the OSV advisory database (a directory of OSV JSON files) images are scanned against; required with --image',
  },
};

/** The agent's worker image from the options, or undefined without --image. Throws on a usage error. */
export function workerImageFrom(values: Record<string, unknown>, o: { policy: Policy; stateDir: string; log: Logger }): WorkerImage | undefined {
  const ref = values.image;
  if (typeof ref !== 'string' || ref === '') return undefined;
  const advisories = values.advisories;
  if (typeof advisories !== 'string' || advisories === '') {
    throw new Error('--image needs --advisories <dir> (FHIRGUARD_ADVISORIES): an image is never run unscanned');
  }
  return new WorkerImage({
    ref,
    advisories: path.resolve(advisories),
    policy: o.policy.supplyChain,
    cacheDir: path.join(o.stateDir, 'images'),
    log: o.log,
    tool: toolVersion(),
  });
}
