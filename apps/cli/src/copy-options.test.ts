import { insecureAcceptAnythingPolicy, MediaTypes, PolicyContext } from '@img/core';
import { describe, expect, it } from 'vitest';
import { copyOptionsFromFlags, imageListSelection, manifestFormats } from './copy-options.js';
import { systemContextFromFlags } from './session.js';

const policy = new PolicyContext(insecureAcceptAnythingPolicy);
const wiring = { policy, sourceCtx: {}, destinationCtx: {} };

describe('copyOptionsFromFlags', () => {
  it('copies the system image with defaults when no flag is given', () => {
    expect(copyOptionsFromFlags({}, wiring)).toEqual({
      policy,
      sourceCtx: {},
      destinationCtx: {},
      imageListSelection: 'system',
    });
  });

  it('maps --format to the manifest media type skopeo forces', () => {
    expect(copyOptionsFromFlags({ format: 'oci' }, wiring).forceManifestMediaType).toBe(
      MediaTypes.ociManifest,
    );
    expect(copyOptionsFromFlags({ format: 'v2s2' }, wiring).forceManifestMediaType).toBe(
      MediaTypes.dockerV2Schema2,
    );
    // v2s1 is not offered until img can write schema 1.
    expect(Object.keys(manifestFormats)).toEqual(['oci', 'v2s2']);
  });

  it('maps --all and --multi-arch to the image list selection', () => {
    expect(imageListSelection({ all: true })).toBe('all');
    expect(imageListSelection({ 'multi-arch': 'index-only' })).toBe('index-only');
    expect(imageListSelection({ 'multi-arch': 'all' })).toBe('all');
    expect(imageListSelection({})).toBe('system');
  });

  it('passes signatures, digests, concurrency, signal and events through', () => {
    const signal = new AbortController().signal;
    const onEvent = () => {};
    const options = copyOptionsFromFlags(
      { 'remove-signatures': true, 'preserve-digests': true, 'image-parallel-copies': 3 },
      { ...wiring, signal, onEvent },
    );
    expect(options).toMatchObject({
      removeSignatures: true,
      preserveDigests: true,
      concurrency: 3,
      signal,
      onEvent,
    });
  });

  it('leaves the default concurrency for --image-parallel-copies 0', () => {
    expect(copyOptionsFromFlags({ 'image-parallel-copies': 0 }, wiring)).not.toHaveProperty('concurrency');
  });
});

describe('systemContextFromFlags', () => {
  it('sets the platform overrides and the temporary directory', () => {
    expect(
      systemContextFromFlags({
        'override-os': 'linux',
        'override-arch': 'arm64',
        'override-variant': 'v8',
        tmpdir: '/big',
      }),
    ).toEqual({ osChoice: 'linux', architectureChoice: 'arm64', variantChoice: 'v8', tmpDir: '/big' });
    expect(systemContextFromFlags({})).toEqual({});
  });
});
