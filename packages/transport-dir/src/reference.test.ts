import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  InvalidLayoutError,
  InvalidPolicyError,
  InvalidReferenceError,
  ManifestUnknownError,
  NotSupportedError,
  parseImageName,
  transports,
} from '@img/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirReference, dirTransport, newDirReference } from './index.js';

describe('dirTransport.parseReference', () => {
  it('is named dir', () => {
    expect(dirTransport.name).toBe('dir');
  });

  it('keeps an absolute path as given and as its identity', () => {
    const ref = dirTransport.parseReference('/var/tmp/images/busybox');
    expect(ref.stringWithinTransport()).toBe('/var/tmp/images/busybox');
    expect(ref.policyConfigurationIdentity()).toBe('/var/tmp/images/busybox');
    expect(ref.toString()).toBe('dir:/var/tmp/images/busybox');
  });

  it('resolves a relative path against the working directory for the identity, and keeps it relative for display', () => {
    const ref = dirTransport.parseReference('images/../busybox');
    expect(ref.toString()).toBe('dir:images/../busybox');
    expect(ref.policyConfigurationIdentity()).toBe(resolve('busybox'));
  });

  it('cleans the identity: no trailing slash, no dot segments', () => {
    expect(dirTransport.parseReference('/a/./b//c/').policyConfigurationIdentity()).toBe('/a/b/c');
  });

  it('refuses an empty path with InvalidReferenceError', () => {
    expect(() => dirTransport.parseReference('')).toThrow(InvalidReferenceError);
    expect(() => dirTransport.parseReference('')).toThrow(
      'invalid reference "dir:": a directory path is required',
    );
  });

  it('round-trips through stringWithinTransport', () => {
    const ref = dirTransport.parseReference('./some/dir');
    const again = dirTransport.parseReference(ref.stringWithinTransport());
    expect(again.policyConfigurationIdentity()).toBe(ref.policyConfigurationIdentity());
    expect(again.toString()).toBe(ref.toString());
  });

  it('has no docker reference', () => {
    expect(dirTransport.parseReference('/x').dockerReference).toBeUndefined();
  });

  it('lists the parent directories as namespaces, nearest first, without /', () => {
    expect(dirTransport.parseReference('/a/b/c').policyConfigurationNamespaces()).toEqual(['/a/b', '/a']);
    expect(dirTransport.parseReference('/a').policyConfigurationNamespaces()).toEqual([]);
  });

  it('returns a DirReference whose transport is dirTransport', () => {
    const ref = dirTransport.parseReference('/x');
    expect(ref).toBeInstanceOf(DirReference);
    expect(ref.transport).toBe(dirTransport);
  });

  it('builds the same reference from newDirReference', () => {
    expect(newDirReference('/x/y').toString()).toBe(dirTransport.parseReference('/x/y').toString());
  });
});

describe('dirTransport.validatePolicyConfigurationScope', () => {
  it('accepts an absolute clean path', () => {
    expect(() => dirTransport.validatePolicyConfigurationScope('/srv/images')).not.toThrow();
  });

  it.each([
    ['srv/images', 'it must be an absolute path'],
    ['/', 'use the default scope "" instead'],
    ['/srv/../images', 'not in canonical form, perhaps "/images"'],
    ['/srv/images/', 'not in canonical form, perhaps "/srv/images"'],
    ['//srv', 'not in canonical form, perhaps "/srv"'],
  ])('refuses %s with InvalidPolicyError', (scope, why) => {
    expect(() => dirTransport.validatePolicyConfigurationScope(scope)).toThrow(InvalidPolicyError);
    expect(() => dirTransport.validatePolicyConfigurationScope(scope)).toThrow(why);
  });
});

describe('registration', () => {
  it('registers dir with @img/core on import, so parseImageName understands dir: names', () => {
    expect(transports.get('dir')).toBe(dirTransport);
    const ref = parseImageName('dir:/tmp/busybox');
    expect(ref).toBeInstanceOf(DirReference);
    expect(ref.toString()).toBe('dir:/tmp/busybox');
  });
});

describe('DirReference I/O entry points', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'img-dir-ref-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('refuses to delete an image with NotSupportedError, as skopeo does', async () => {
    await expect(newDirReference(tmp).deleteImage({})).rejects.toThrow(NotSupportedError);
  });

  it('fails to open a missing directory as a source with ManifestUnknownError naming the reference', async () => {
    const ref = newDirReference(join(tmp, 'missing'));
    await expect(ref.newImageSource({})).rejects.toThrow(ManifestUnknownError);
    await expect(ref.newImageSource({})).rejects.toThrow(`manifest unknown: dir:${join(tmp, 'missing')}`);
  });

  it('fails to open a file as a source with a one-line InvalidLayoutError', async () => {
    const file = join(tmp, 'file');
    await writeFile(file, 'not an image');
    const error = await newDirReference(file)
      .newImageSource({})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLayoutError);
    expect((error as Error).message).toBe(`cannot read dir:${file}: "${file}" is not a directory`);
  });
});
