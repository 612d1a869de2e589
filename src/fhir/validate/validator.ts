// The resource validator: the core R4 model plus the operator's profiles, behind one call
// that returns every issue found. Built once (the proxy at start, the CLI per run); each
// type's tables and invariants are compiled on first use.

import * as path from 'node:path';
import type { Issue } from '../outcome';
import { TypeRegistry } from './compiled';
import { coreModel } from './model/core';
import type { Model } from './model/spec';
import { installRoot } from '../../install/root';
import { readConformanceDir } from './packages';
import { ProfileSet } from './profiles';
import { Walker } from './walker';

export interface ResourceValidationOptions {
  /** Profiles (canonical URLs) the top-level resource must also conform to, besides its meta.profile. */
  profiles?: readonly string[];
  /** An unknown profile (in meta.profile or `profiles`) is an error rather than a warning. */
  unknownProfileIsError?: boolean;
}

export interface ValidatorConfig {
  /** Folders of StructureDefinitions / FHIR packages (default: none). */
  profileDirs?: readonly string[];
}

const CORE_SD = 'http://hl7.org/fhir/StructureDefinition/';

export class FhirValidator {
  readonly registry: TypeRegistry;
  readonly profiles: ProfileSet;

  constructor(config: ValidatorConfig = {}, model: Model = cloneModel(coreModel())) {
    this.registry = new TypeRegistry(model);
    this.profiles = new ProfileSet(this.registry);
    for (const dir of config.profileDirs ?? []) this.loadProfiles(dir);
  }

  /** Loads the profiles of a folder; returns what could not be used. */
  loadProfiles(dir: string): string[] {
    const notes: string[] = [];
    for (const file of readConformanceDir(dir)) {
      for (const p of file.problems) notes.push(`${path.basename(file.file)}: ${p}`);
      const before = this.profiles.notes.length;
      this.profiles.load(file.resources);
      notes.push(...this.profiles.notes.slice(before));
    }
    return notes;
  }

  /**
   * Compiles every type's tables and invariants now rather than on first use (about a second
   * of start-up, mostly parsing FHIRPath), so that no request pays for it. Returns the ms taken.
   */
  preload(): number {
    const start = performance.now();
    for (const name of this.registry.names()) this.registry.get(name);
    return performance.now() - start;
  }

  /** Every issue of one resource (errors and warnings); valid when no issue is an error. */
  validateResource(resource: unknown, opts: ResourceValidationOptions = {}): Issue[] {
    const w = new Walker(this.registry, (res, location, env, walker) => {
      const meta = res.meta as { profile?: unknown } | undefined;
      const claimed = Array.isArray(meta?.profile) ? meta.profile.filter((p): p is string => typeof p === 'string') : [];
      const urls = res === resource ? [...claimed, ...(opts.profiles ?? [])] : claimed;
      for (const url of urls) {
        if (url === CORE_SD + String(res.resourceType)) continue; // the base definition itself
        if (this.profiles.has(url)) {
          walker.issues.push(...this.profiles.check(res, url, location, env, (ref) => walker.resolveInBundle(ref)));
        } else {
          walker.issues.push({
            severity: opts.unknownProfileIsError ? 'error' : 'warning',
            code: 'not-supported',
            diagnostics: `profile ${url} is not loaded: the resource was not validated against it`,
            expression: [location + '.meta.profile'],
          });
        }
      }
    });
    try {
      w.resource(resource);
    } catch (err) {
      // Only a pathologically deep document exhausts the stack (the proxy bounds JSON depth
      // before this; the CLI reads files as they are): a verdict, not a crash.
      if (!(err instanceof RangeError)) throw err;
      return [...w.issues, { severity: 'fatal', code: 'too-costly', diagnostics: `the document is nested too deeply to validate (${err.message})` }];
    }
    return w.issues;
  }
}

/** The registry can add types to its model: each validator gets its own copy of the tables. */
function cloneModel(m: Model): Model {
  return { fhirVersion: m.fhirVersion, types: { ...m.types }, valueSets: { ...m.valueSets }, extensions: { ...m.extensions }, codeSystems: m.codeSystems };
}

export function hasErrors(issues: readonly Issue[]): boolean {
  return issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
}

/** Where operators drop custom profiles: FHIRGUARD_FHIR_PROFILES, else profiles/fhir/ of the installation. */
export function defaultProfileDir(): string {
  return process.env.FHIRGUARD_FHIR_PROFILES || path.join(installRoot(), 'profiles', 'fhir');
}

let shared: FhirValidator | undefined;

/** The process-wide validator with the operator's profiles, built on first use. */
export function defaultValidator(): FhirValidator {
  shared ??= new FhirValidator({ profileDirs: [defaultProfileDir()] });
  return shared;
}

/**
 * For the proxy's start: builds the process-wide validator, loads the operator's profiles
 * and compiles everything. Returns what the operator should know (profiles that could not be
 * used) and the time taken.
 */
export function preloadValidator(): { ms: number; profiles: string[]; notes: string[] } {
  const start = performance.now();
  const v = (shared = new FhirValidator());
  const notes = v.loadProfiles(defaultProfileDir());
  v.preload();
  return { ms: performance.now() - start, profiles: v.profiles.urls(), notes };
}
