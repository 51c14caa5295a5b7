import { InvalidPolicyError, InvalidReferenceError, parseImageName } from '@img/core';
import { describe, expect, it } from 'vitest';
import { dockerArchiveTransport, dockerDaemonTransport } from './index.js';

describe('docker-daemon references', () => {
  it('normalizes a name:tag and writes it back in the familiar form', () => {
    const ref = dockerDaemonTransport.parseReference('busybox:latest');
    expect(ref.dockerReference?.toString()).toBe('docker.io/library/busybox:latest');
    expect(ref.toString()).toBe('docker-daemon:busybox:latest');
    expect(String(parseImageName(ref.toString()))).toBe('docker-daemon:busybox:latest');
  });

  it('takes sha256:<hex> as an image ID', () => {
    const id = `sha256:${'a'.repeat(64)}`;
    const ref = dockerDaemonTransport.parseReference(id);
    expect(ref.id).toBe(id);
    expect(ref.dockerReference).toBeUndefined();
    expect(ref.toString()).toBe(`docker-daemon:${id}`);
  });

  it.each([
    ['busybox', /neither a tag nor a digest/],
    [`sha512:${'a'.repeat(128)}`, /only sha256 image IDs/],
    ['sha256:abc', /reserved for image IDs/],
    [`busybox:v1@sha256:${'a'.repeat(64)}`, /a tag and a digest together/],
    ['a'.repeat(64), /64-byte hexadecimal/],
    ['Busybox:v1', /lowercase/],
  ])('refuses "%s"', (text, reason) => {
    expect(() => dockerDaemonTransport.parseReference(text)).toThrow(InvalidReferenceError);
    expect(() => dockerDaemonTransport.parseReference(text)).toThrow(reason);
  });

  it('has no policy identity, and only the default scope', () => {
    const ref = dockerDaemonTransport.parseReference('busybox:latest');
    expect(ref.policyConfigurationIdentity()).toBe('');
    expect(ref.policyConfigurationNamespaces()).toEqual([]);
    expect(() => dockerDaemonTransport.validatePolicyConfigurationScope('docker.io/library/busybox')).toThrow(
      InvalidPolicyError,
    );
  });
});

describe('docker-archive references', () => {
  it('splits the path at the first colon and tags a bare name :latest', () => {
    const ref = dockerArchiveTransport.parseReference('/tmp/a.tar:busybox');
    expect(ref.path).toBe('/tmp/a.tar');
    expect(ref.dockerReference?.toString()).toBe('docker.io/library/busybox:latest');
    expect(ref.toString()).toBe('docker-archive:/tmp/a.tar:docker.io/library/busybox:latest');
    expect(String(parseImageName(ref.toString()))).toBe(ref.toString());
  });

  it('takes @N as a source index', () => {
    const ref = dockerArchiveTransport.parseReference('/tmp/a.tar:@2');
    expect(ref.sourceIndex).toBe(2);
    expect(ref.toString()).toBe('docker-archive:/tmp/a.tar:@2');
  });

  it.each([
    ['', /the path is empty/],
    ['/tmp/a.tar:@-1', /not a non-negative integer/],
    [`/tmp/a.tar:busybox@sha256:${'a'.repeat(64)}`, /digest references are not supported/],
  ])('refuses "%s"', (text, reason) => {
    expect(() => dockerArchiveTransport.parseReference(text)).toThrow(reason);
  });

  it('refuses a source index as destination', async () => {
    await expect(
      dockerArchiveTransport.parseReference('/tmp/a.tar:@0').newImageDestination({}),
    ).rejects.toThrow(/cannot be chosen by position/);
  });
});
