import { resolve } from 'node:path';
import { InvalidPolicyError, InvalidReferenceError, parseImageName, transports } from '@img/core';
import { describe, expect, it } from 'vitest';
import {
  newOciArchiveReference,
  newOciIndexReference,
  newOciReference,
  OciArchiveReference,
  OciReference,
  ociArchiveTransport,
  ociTransport,
} from './index.js';

describe('oci: references', () => {
  it('registers oci and oci-archive on import', () => {
    expect(transports.get('oci')).toBe(ociTransport);
    expect(transports.get('oci-archive')).toBe(ociArchiveTransport);
  });

  it('ends the path at the first colon and keeps later colons in the name', () => {
    const ref = ociTransport.parseReference('/tmp/layout:repo/app:v1');
    expect(ref.path).toBe('/tmp/layout');
    expect(ref.image).toBe('repo/app:v1');
  });

  it('reads a path without a name as the only image', () => {
    const ref = ociTransport.parseReference('/tmp/layout');
    expect(ref.image).toBe('');
    expect(ref.sourceIndex).toBeUndefined();
  });

  it('reads @N as a zero-based source index', () => {
    const ref = ociTransport.parseReference('/tmp/layout:@2');
    expect(ref.sourceIndex).toBe(2);
    expect(ref.image).toBe('');
  });

  it('accepts a signed source index as strconv.Atoi does', () => {
    expect(ociTransport.parseReference('/tmp/layout:@+3').sourceIndex).toBe(3);
  });

  it('refuses a negative source index', () => {
    expect(() => ociTransport.parseReference('/tmp/layout:@-1')).toThrow(InvalidReferenceError);
  });

  it('refuses a source index that is not an integer', () => {
    expect(() => ociTransport.parseReference('/tmp/layout:@first')).toThrow(/not an integer/);
  });

  it('refuses a name that is not a valid ref name', () => {
    expect(() => ociTransport.parseReference('/tmp/layout:bad name')).toThrow(InvalidReferenceError);
    expect(() => ociTransport.parseReference('/tmp/layout:-v1')).toThrow(InvalidReferenceError);
  });

  it('refuses an empty path', () => {
    expect(() => ociTransport.parseReference(':v1')).toThrow(/the path is empty/);
  });

  it('quotes the text as typed in its errors', () => {
    expect(() => ociTransport.parseReference(':')).toThrow('invalid reference "oci::": the path is empty');
    expect(() => ociArchiveTransport.parseReference(':')).toThrow(
      'invalid reference "oci-archive::": the path is empty',
    );
    expect(() => ociTransport.parseReference('/tmp/layout:@+1x')).toThrow(
      'invalid reference "oci:/tmp/layout:@+1x": source index "@+1x" is not an integer',
    );
  });

  it('refuses a source index too large to hold, saying so and quoting it as typed', () => {
    expect(() => ociTransport.parseReference('/tmp/layout:@99999999999999999999')).toThrow(
      'invalid reference "oci:/tmp/layout:@99999999999999999999": source index "@99999999999999999999" is too large (at most 9007199254740991)',
    );
    expect(() => newOciIndexReference('/tmp/layout', 2 ** 60)).toThrow(/the source index is too large/);
  });

  it('refuses a path with a colon from the constructor function', () => {
    expect(() => newOciReference('/tmp/a:b', 'v1')).toThrow(/contains a colon/);
  });

  it('round-trips names, indexes and bare paths through parseImageName', () => {
    for (const text of ['oci:/tmp/layout:v1', 'oci:/tmp/layout:@0', 'oci:/tmp/layout', 'oci:rel/dir:a/b:c']) {
      const ref = parseImageName(text);
      expect(ref).toBeInstanceOf(OciReference);
      expect(ref.toString()).toBe(text);
      expect(parseImageName(ref.toString()).stringWithinTransport()).toBe(ref.stringWithinTransport());
    }
  });

  it('round-trips oci-archive references through parseImageName', () => {
    for (const text of ['oci-archive:/tmp/a.tar:v1', 'oci-archive:/tmp/a.tar']) {
      const ref = parseImageName(text);
      expect(ref).toBeInstanceOf(OciArchiveReference);
      expect(ref.toString()).toBe(text);
    }
  });

  it('builds an index reference from its constructor function', () => {
    expect(newOciIndexReference('/tmp/layout', 1).toString()).toBe('oci:/tmp/layout:@1');
  });

  it('has no docker reference', () => {
    expect(newOciReference('/tmp/layout', 'v1').dockerReference).toBeUndefined();
  });

  it('resolves a relative path for the policy identity and appends the name', () => {
    const ref = newOciReference('some/dir', 'v1');
    expect(ref.policyConfigurationIdentity()).toBe(`${resolve('some/dir')}:v1`);
  });

  it('uses the bare resolved path as the identity of an unnamed reference', () => {
    expect(newOciReference('/tmp/x/../layout').policyConfigurationIdentity()).toBe('/tmp/layout');
  });

  it('lists the path, then its parents up to but not including /, as namespaces', () => {
    expect(newOciReference('/var/lib/images', 'v1').policyConfigurationNamespaces()).toEqual([
      '/var/lib/images',
      '/var/lib',
      '/var',
    ]);
  });

  it('lists only the parents as namespaces of an unnamed reference', () => {
    expect(newOciReference('/var/lib/images').policyConfigurationNamespaces()).toEqual(['/var/lib', '/var']);
  });

  it('gives oci-archive references the same identity rules', () => {
    const ref = newOciArchiveReference('/srv/a.tar', 'v1');
    expect(ref.policyConfigurationIdentity()).toBe('/srv/a.tar:v1');
    expect(ref.policyConfigurationNamespaces()).toEqual(['/srv/a.tar', '/srv']);
  });

  it('does not read @N as an index in oci-archive references', () => {
    expect(() => ociArchiveTransport.parseReference('/tmp/a.tar:@1')).toThrow(InvalidReferenceError);
  });
});

describe('policy scopes', () => {
  it('accepts absolute canonical paths, with or without a name', () => {
    expect(() => ociTransport.validatePolicyConfigurationScope('/var/lib/images')).not.toThrow();
    expect(() => ociTransport.validatePolicyConfigurationScope('/var/lib/images:v1')).not.toThrow();
    expect(() => ociArchiveTransport.validatePolicyConfigurationScope('/srv/a.tar')).not.toThrow();
  });

  it('refuses a relative scope', () => {
    expect(() => ociTransport.validatePolicyConfigurationScope('images')).toThrow(InvalidPolicyError);
  });

  it('refuses / as a scope', () => {
    expect(() => ociTransport.validatePolicyConfigurationScope('/')).toThrow(/default scope/);
  });

  it('refuses a non-canonical scope and suggests the clean one', () => {
    expect(() => ociTransport.validatePolicyConfigurationScope('/var//lib/')).toThrow(/perhaps "\/var\/lib"/);
    expect(() => ociArchiveTransport.validatePolicyConfigurationScope('/srv/../a.tar')).toThrow(
      InvalidPolicyError,
    );
  });
});
