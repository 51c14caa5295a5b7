import { InvalidReferenceError, parseImageName, parseNormalizedNamed } from '@img/core';
import { describe, expect, it } from 'vitest';
import { dockerTransport, newDockerReference } from './index.js';

describe('docker references', () => {
  it('normalises Docker Hub names and adds latest', () => {
    const ref = dockerTransport.parseReference('//busybox');
    expect(ref.dockerReference.toString()).toBe('docker.io/library/busybox:latest');
    expect(ref.toString()).toBe('docker://busybox:latest');
    expect(ref.host).toBe('docker.io');
    expect(ref.repository).toBe('library/busybox');
  });

  it('keeps a host with a port, a tag or a digest, and round-trips', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    for (const text of ['//127.0.0.1:5000/team/app:v1', `//localhost:5000/app@${digest}`]) {
      const ref = dockerTransport.parseReference(text);
      expect(dockerTransport.parseReference(ref.stringWithinTransport()).policyConfigurationIdentity()).toBe(
        ref.policyConfigurationIdentity(),
      );
    }
    expect(dockerTransport.parseReference(`//localhost:5000/app@${digest}`).manifestReference).toBe(digest);
  });

  it('is registered on import', () => {
    expect(parseImageName('docker://quay.io/org/app:1').transport).toBe(dockerTransport);
  });

  it('refuses a missing //, a tag with a digest, and upper-case names', () => {
    expect(() => dockerTransport.parseReference('busybox')).toThrow(InvalidReferenceError);
    expect(() => dockerTransport.parseReference(`//app:v1@sha256:${'a'.repeat(64)}`)).toThrow(
      /both a tag and a digest/,
    );
    expect(() => dockerTransport.parseReference('//App')).toThrow(/lowercase/);
    expect(() => newDockerReference(parseNormalizedNamed(`app:v1@sha256:${'b'.repeat(64)}`))).toThrow(
      InvalidReferenceError,
    );
  });

  it('lists policy namespaces as containers/image does', () => {
    expect(
      dockerTransport
        .parseReference('//registry.example.com:5000/team/app:v1')
        .policyConfigurationNamespaces(),
    ).toEqual([
      'registry.example.com:5000/team/app',
      'registry.example.com:5000/team',
      'registry.example.com:5000',
      '*.example.com',
      '*.com',
    ]);
  });
});
