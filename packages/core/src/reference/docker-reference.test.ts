import { describe, expect, it } from 'vitest';
import { InvalidReferenceError } from '../errors.js';
import {
  isNameOnly,
  nameOnly,
  parseDockerReference,
  parseNormalizedNamed,
  tagNameOnly,
  withDigest,
  withTag,
} from './docker-reference.js';

const sha256 = 'sha256:3f5a61c9e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b';
const sha512 = `sha512:${'ab'.repeat(64)}`;
const imageId = '3f5a61c9e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b';

function parts(text: string) {
  const ref = parseNormalizedNamed(text);
  return { domain: ref.domain, path: ref.path, tag: ref.tag, digest: ref.digest };
}

function reasonFor(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    if (err instanceof InvalidReferenceError) return err.reason;
    throw err;
  }
  throw new Error('expected an InvalidReferenceError');
}

describe('parseNormalizedNamed', () => {
  describe('normalisation', () => {
    it('puts a single-component name under docker.io/library', () => {
      expect(parts('busybox')).toEqual({
        domain: 'docker.io',
        path: 'library/busybox',
        tag: undefined,
        digest: undefined,
      });
    });

    it('puts a multi-component name without a domain on docker.io as is', () => {
      expect(parts('foo/bar')).toEqual({
        domain: 'docker.io',
        path: 'foo/bar',
        tag: undefined,
        digest: undefined,
      });
    });

    it('keeps a deeper docker.io path as is', () => {
      expect(parseNormalizedNamed('foo/bar/baz').toString()).toBe('docker.io/foo/bar/baz');
    });

    it('adds library/ to a single-component name given with the docker.io domain', () => {
      expect(parseNormalizedNamed('docker.io/busybox').toString()).toBe('docker.io/library/busybox');
    });

    it('rewrites index.docker.io to docker.io', () => {
      expect(parts('index.docker.io/library/busybox:1.36')).toEqual({
        domain: 'docker.io',
        path: 'library/busybox',
        tag: '1.36',
        digest: undefined,
      });
    });

    it('adds library/ to a single-component name given with index.docker.io', () => {
      expect(parseNormalizedNamed('index.docker.io/busybox').toString()).toBe('docker.io/library/busybox');
    });

    it('does not add library/ on another registry', () => {
      expect(parts('example.com/app')).toEqual({
        domain: 'example.com',
        path: 'app',
        tag: undefined,
        digest: undefined,
      });
    });

    it('adds no tag of its own', () => {
      expect(parseNormalizedNamed('busybox').tag).toBeUndefined();
    });
  });

  describe('domains', () => {
    it('takes a first component with a port as the domain', () => {
      expect(parts('localhost:5000/app')).toEqual({
        domain: 'localhost:5000',
        path: 'app',
        tag: undefined,
        digest: undefined,
      });
    });

    it('takes a first component with a dot as the domain', () => {
      expect(parseNormalizedNamed('quay.io/coreos/etcd').domain).toBe('quay.io');
    });

    it('takes localhost as the domain', () => {
      expect(parts('localhost/app')).toEqual({
        domain: 'localhost',
        path: 'app',
        tag: undefined,
        digest: undefined,
      });
    });

    it('takes a dotless first component without a port as part of the Docker Hub path', () => {
      expect(parts('myhost/app')).toEqual({
        domain: 'docker.io',
        path: 'myhost/app',
        tag: undefined,
        digest: undefined,
      });
    });

    it('takes a name:port without a slash as a Docker Hub name and tag', () => {
      expect(parts('localhost:5000')).toEqual({
        domain: 'docker.io',
        path: 'library/localhost',
        tag: '5000',
        digest: undefined,
      });
    });

    it('accepts an IPv4 address with a port', () => {
      expect(parts('127.0.0.1:5000/app:v2')).toEqual({
        domain: '127.0.0.1:5000',
        path: 'app',
        tag: 'v2',
        digest: undefined,
      });
    });

    it('accepts a bracketed IPv6 address with a port', () => {
      expect(parts('[::1]:5000/app')).toEqual({
        domain: '[::1]:5000',
        path: 'app',
        tag: undefined,
        digest: undefined,
      });
    });

    it('accepts a bracketed IPv6 address without a port', () => {
      expect(parseNormalizedNamed('[fc00:ab::1]/team/app:v1').toString()).toBe('[fc00:ab::1]/team/app:v1');
    });

    it('accepts hyphens inside a domain component', () => {
      expect(parseNormalizedNamed('my-registry.example-corp.com/app').domain).toBe(
        'my-registry.example-corp.com',
      );
    });

    it('accepts upper-case letters in the domain', () => {
      expect(parseNormalizedNamed('Registry.Example.com/app').domain).toBe('Registry.Example.com');
    });

    it('refuses a domain component that starts with a hyphen', () => {
      expect(reasonFor(() => parseNormalizedNamed('-bad.example.com/app'))).toBe(
        'invalid domain "-bad.example.com"',
      );
    });

    it('refuses a domain component that ends with a hyphen', () => {
      expect(reasonFor(() => parseNormalizedNamed('bad-.example.com/app'))).toBe(
        'invalid domain "bad-.example.com"',
      );
    });

    it('refuses an empty domain component', () => {
      expect(reasonFor(() => parseNormalizedNamed('example..com/app'))).toBe('invalid domain "example..com"');
    });

    it('refuses a port that is not a number', () => {
      expect(reasonFor(() => parseNormalizedNamed('localhost:http/app'))).toBe(
        'invalid domain "localhost:http"',
      );
    });

    it('refuses an empty port', () => {
      expect(reasonFor(() => parseNormalizedNamed('localhost:/app'))).toBe('invalid domain "localhost:"');
    });

    it('refuses an IPv6 address without brackets', () => {
      expect(reasonFor(() => parseNormalizedNamed('::1/app'))).toBe('invalid domain "::1"');
    });
  });

  describe('repository paths', () => {
    it('accepts the separators ".", "_", "__" and runs of "-" inside a component', () => {
      expect(parseNormalizedNamed('example.com/a.b/c_d/e__f/g-h/i---j').path).toBe('a.b/c_d/e__f/g-h/i---j');
    });

    it('refuses upper-case letters in the path', () => {
      expect(reasonFor(() => parseNormalizedNamed('Foo/app'))).toBe('repository name must be lowercase');
    });

    it('refuses upper-case letters in a single-component name', () => {
      expect(reasonFor(() => parseNormalizedNamed('BusyBox:latest'))).toBe(
        'repository name must be lowercase',
      );
    });

    it('refuses upper-case letters in the path on another registry', () => {
      expect(reasonFor(() => parseNormalizedNamed('example.com/Team/app'))).toBe(
        'repository name must be lowercase',
      );
    });

    it('puts the whole text in the error message', () => {
      expect(() => parseNormalizedNamed('Foo/app')).toThrow(
        'invalid reference "Foo/app": repository name must be lowercase',
      );
    });

    it('refuses a component that starts with a separator', () => {
      expect(reasonFor(() => parseNormalizedNamed('-app'))).toBe('invalid repository path component "-app"');
    });

    it('refuses a component that ends with a separator', () => {
      expect(reasonFor(() => parseNormalizedNamed('team/app.'))).toBe(
        'invalid repository path component "app."',
      );
    });

    it('refuses three underscores in a row', () => {
      expect(reasonFor(() => parseNormalizedNamed('a___b'))).toBe(
        'invalid repository path component "a___b"',
      );
    });

    it('refuses two different separators in a row', () => {
      expect(reasonFor(() => parseNormalizedNamed('a._b'))).toBe('invalid repository path component "a._b"');
    });

    it('refuses a leading slash', () => {
      expect(reasonFor(() => parseNormalizedNamed('/app'))).toBe(
        'repository name must not have empty path components',
      );
    });

    it('refuses a trailing slash', () => {
      expect(reasonFor(() => parseNormalizedNamed('team/app/'))).toBe(
        'repository name must not have empty path components',
      );
    });

    it('refuses a doubled slash', () => {
      expect(reasonFor(() => parseNormalizedNamed('team//app'))).toBe(
        'repository name must not have empty path components',
      );
    });

    it('refuses characters outside the grammar', () => {
      expect(reasonFor(() => parseNormalizedNamed('team/app!'))).toBe(
        'invalid repository path component "app!"',
      );
    });

    it('refuses an empty string', () => {
      expect(reasonFor(() => parseNormalizedNamed(''))).toBe('repository name must not be empty');
    });

    it('refuses a domain with no path', () => {
      expect(reasonFor(() => parseNormalizedNamed('example.com/'))).toBe('repository name must not be empty');
    });

    it('refuses a tag with no name', () => {
      expect(reasonFor(() => parseNormalizedNamed(':latest'))).toBe('repository name must not be empty');
    });

    it('refuses a digest with no name', () => {
      expect(reasonFor(() => parseNormalizedNamed(`@${sha256}`))).toBe('repository name must not be empty');
    });

    it('refuses a 64-hex-digit name that looks like an image ID', () => {
      expect(reasonFor(() => parseNormalizedNamed(imageId))).toBe(
        'cannot specify 64-byte hexadecimal strings',
      );
    });

    it('accepts a 64-hex-digit string as a path component under a namespace', () => {
      expect(parseNormalizedNamed(`team/${imageId}`).path).toBe(`team/${imageId}`);
    });

    it('accepts a full name of exactly 255 characters', () => {
      const path = `team/${'a'.repeat(255 - 'example.com/team/'.length)}`;
      expect(parseNormalizedNamed(`example.com/${path}`).name()).toHaveLength(255);
    });

    it('refuses a full name over 255 characters', () => {
      const path = `team/${'a'.repeat(256 - 'example.com/team/'.length)}`;
      expect(reasonFor(() => parseNormalizedNamed(`example.com/${path}:v1`))).toBe(
        'repository name must not be more than 255 characters',
      );
    });

    it('counts the docker.io/library/ it adds toward the 255-character limit', () => {
      const name = 'a'.repeat(255 - 'docker.io/library/'.length + 1);
      expect(reasonFor(() => parseNormalizedNamed(name))).toBe(
        'repository name must not be more than 255 characters',
      );
    });
  });

  describe('tags', () => {
    it('reads the tag after the last colon that follows the last slash', () => {
      expect(parts('localhost:5000/team/app:v1.2')).toEqual({
        domain: 'localhost:5000',
        path: 'team/app',
        tag: 'v1.2',
        digest: undefined,
      });
    });

    it('accepts upper case, underscores, dots and hyphens in a tag', () => {
      expect(parseNormalizedNamed('app:V1_2.3-rc').tag).toBe('V1_2.3-rc');
    });

    it('accepts a tag that starts with an underscore', () => {
      expect(parseNormalizedNamed('app:_x').tag).toBe('_x');
    });

    it('accepts a 128-character tag', () => {
      expect(parseNormalizedNamed(`app:${'t'.repeat(128)}`).tag).toHaveLength(128);
    });

    it('refuses a 129-character tag', () => {
      expect(() => parseNormalizedNamed(`app:${'t'.repeat(129)}`)).toThrow(InvalidReferenceError);
    });

    it('refuses a tag that starts with a hyphen', () => {
      expect(reasonFor(() => parseNormalizedNamed('app:-x'))).toMatch(/^invalid tag "-x"/);
    });

    it('refuses a tag that starts with a dot', () => {
      expect(reasonFor(() => parseNormalizedNamed('app:.x'))).toMatch(/^invalid tag "\.x"/);
    });

    it('refuses an empty tag', () => {
      expect(reasonFor(() => parseNormalizedNamed('app:'))).toMatch(/^invalid tag ""/);
    });

    it('refuses a tag with a character outside the grammar', () => {
      expect(reasonFor(() => parseNormalizedNamed('app:v1+build'))).toMatch(/^invalid tag "v1\+build"/);
    });

    it('refuses a second colon in the last component', () => {
      expect(reasonFor(() => parseNormalizedNamed('app:v1:v2'))).toBe(
        'invalid repository path component "app:v1"',
      );
    });
  });

  describe('digests', () => {
    it('reads a sha256 digest', () => {
      expect(parts(`busybox@${sha256}`)).toEqual({
        domain: 'docker.io',
        path: 'library/busybox',
        tag: undefined,
        digest: sha256,
      });
    });

    it('reads a sha512 digest', () => {
      expect(parseNormalizedNamed(`example.com/app@${sha512}`).digest).toBe(sha512);
    });

    it('reads a tag and a digest together', () => {
      expect(parts(`localhost:5000/app:v1@${sha256}`)).toEqual({
        domain: 'localhost:5000',
        path: 'app',
        tag: 'v1',
        digest: sha256,
      });
    });

    it('refuses a digest of an unsupported algorithm', () => {
      expect(reasonFor(() => parseNormalizedNamed(`app@md5:${'a'.repeat(32)}`))).toBe(
        `invalid digest "md5:${'a'.repeat(32)}": unsupported algorithm "md5"`,
      );
    });

    it('refuses a digest of the wrong length', () => {
      expect(reasonFor(() => parseNormalizedNamed('app@sha256:abc'))).toMatch(
        /^invalid digest "sha256:abc": expected 64/,
      );
    });

    it('refuses a digest with upper-case hex digits', () => {
      expect(() => parseNormalizedNamed(`app@${sha256.toUpperCase().replace('SHA256', 'sha256')}`)).toThrow(
        InvalidReferenceError,
      );
    });

    it('refuses an empty digest', () => {
      expect(reasonFor(() => parseNormalizedNamed('app@'))).toMatch(/^invalid digest ""/);
    });

    it('refuses a second @', () => {
      expect(reasonFor(() => parseNormalizedNamed(`app@${sha256}@${sha256}`))).toMatch(/^invalid digest/);
    });
  });

  describe('output', () => {
    it('prints the full form with toString', () => {
      expect(parseNormalizedNamed(`busybox:1.36@${sha256}`).toString()).toBe(
        `docker.io/library/busybox:1.36@${sha256}`,
      );
    });

    it('prints domain/path with name', () => {
      expect(parseNormalizedNamed(`busybox:1.36@${sha256}`).name()).toBe('docker.io/library/busybox');
    });

    it('prints an official image without docker.io/library in the familiar form', () => {
      expect(parseNormalizedNamed('docker.io/library/busybox:latest').familiarString()).toBe(
        'busybox:latest',
      );
    });

    it('prints another Docker Hub repository without docker.io in the familiar form', () => {
      expect(parseNormalizedNamed('docker.io/foo/bar').familiarString()).toBe('foo/bar');
    });

    it('keeps library/ in the familiar form of a deeper path', () => {
      expect(parseNormalizedNamed('docker.io/library/foo/bar').familiarString()).toBe('library/foo/bar');
    });

    it('keeps the domain of another registry in the familiar form', () => {
      expect(parseNormalizedNamed(`localhost:5000/library/app:v1@${sha256}`).familiarString()).toBe(
        `localhost:5000/library/app:v1@${sha256}`,
      );
    });

    it('keeps the digest in the familiar form', () => {
      expect(parseNormalizedNamed(`busybox@${sha256}`).familiarString()).toBe(`busybox@${sha256}`);
    });

    it.each([
      'busybox',
      'busybox:latest',
      `busybox@${sha256}`,
      'foo/bar:v1',
      'library/foo/bar',
      'localhost/app',
      'localhost:5000/team/app:v2',
      `[::1]:5000/app:v1@${sha512}`,
      `example.com/a.b/c__d:1.0@${sha256}`,
    ])('parses the familiar form of %s back to the same reference', (text) => {
      const ref = parseNormalizedNamed(text);
      expect(parseNormalizedNamed(ref.familiarString()).toString()).toBe(ref.toString());
    });

    it.each([
      'docker.io/library/busybox',
      'docker.io/library/busybox:latest',
      'docker.io/foo/bar',
      'localhost:5000/team/app:v2',
      `example.com/app:v1@${sha256}`,
    ])('prints %s back unchanged with toString', (text) => {
      expect(parseNormalizedNamed(text).toString()).toBe(text);
    });

    it('returns a frozen object', () => {
      expect(Object.isFrozen(parseNormalizedNamed('busybox'))).toBe(true);
    });
  });
});

describe('parseDockerReference', () => {
  it('accepts a fully qualified name with a tag', () => {
    expect(parseDockerReference('docker.io/library/busybox:latest').familiarString()).toBe('busybox:latest');
  });

  it('accepts a fully qualified name with neither tag nor digest', () => {
    expect(parseDockerReference('localhost:5000/app').toString()).toBe('localhost:5000/app');
  });

  it('accepts a fully qualified name with a tag and a digest', () => {
    expect(parseDockerReference(`example.com/app:v1@${sha256}`).digest).toBe(sha256);
  });

  it('refuses a name without a domain', () => {
    expect(reasonFor(() => parseDockerReference('busybox'))).toBe(
      'reference must be fully qualified, as in "docker.io/library/busybox"',
    );
  });

  it('refuses a Docker Hub name without library/', () => {
    expect(() => parseDockerReference('docker.io/busybox:latest')).toThrow(InvalidReferenceError);
  });

  it('refuses index.docker.io', () => {
    expect(reasonFor(() => parseDockerReference('index.docker.io/library/busybox'))).toBe(
      'reference must be fully qualified, as in "docker.io/library/busybox"',
    );
  });

  it('refuses what parseNormalizedNamed refuses', () => {
    expect(reasonFor(() => parseDockerReference('example.com/App'))).toBe(
      'repository name must be lowercase',
    );
  });
});

describe('tag and digest helpers', () => {
  it('tagNameOnly adds latest to a bare name', () => {
    expect(tagNameOnly(parseNormalizedNamed('busybox')).toString()).toBe('docker.io/library/busybox:latest');
  });

  it('tagNameOnly keeps an existing tag', () => {
    expect(tagNameOnly(parseNormalizedNamed('busybox:1.36')).toString()).toBe(
      'docker.io/library/busybox:1.36',
    );
  });

  it('tagNameOnly adds no tag to a digest reference', () => {
    expect(tagNameOnly(parseNormalizedNamed(`busybox@${sha256}`)).toString()).toBe(
      `docker.io/library/busybox@${sha256}`,
    );
  });

  it('withTag replaces the tag', () => {
    expect(withTag(parseNormalizedNamed('localhost:5000/app:v1'), 'v2').toString()).toBe(
      'localhost:5000/app:v2',
    );
  });

  it('withTag keeps the digest', () => {
    expect(withTag(parseNormalizedNamed(`app@${sha256}`), 'v2').toString()).toBe(
      `docker.io/library/app:v2@${sha256}`,
    );
  });

  it('withTag refuses an invalid tag', () => {
    expect(() => withTag(parseNormalizedNamed('app'), '-bad')).toThrow(
      /^invalid reference "docker.io\/library\/app:-bad": invalid tag "-bad"/,
    );
  });

  it('withTag leaves the original reference unchanged', () => {
    const ref = parseNormalizedNamed('app:v1');
    withTag(ref, 'v2');
    expect(ref.tag).toBe('v1');
  });

  it('withDigest sets the digest and keeps the tag', () => {
    expect(withDigest(parseNormalizedNamed('example.com/app:v1'), sha512).toString()).toBe(
      `example.com/app:v1@${sha512}`,
    );
  });

  it('withDigest replaces an existing digest', () => {
    expect(withDigest(parseNormalizedNamed(`app@${sha512}`), sha256).digest).toBe(sha256);
  });

  it('withDigest refuses an invalid digest', () => {
    expect(reasonFor(() => withDigest(parseNormalizedNamed('app'), 'sha256:123'))).toMatch(
      /^invalid digest "sha256:123"/,
    );
  });

  it('nameOnly drops the tag and the digest', () => {
    expect(nameOnly(parseNormalizedNamed(`app:v1@${sha256}`)).toString()).toBe('docker.io/library/app');
  });

  it('isNameOnly is true for a bare name', () => {
    expect(isNameOnly(parseNormalizedNamed('example.com/app'))).toBe(true);
  });

  it('isNameOnly is false with a tag', () => {
    expect(isNameOnly(parseNormalizedNamed('example.com/app:v1'))).toBe(false);
  });

  it('isNameOnly is false with a digest', () => {
    expect(isNameOnly(parseNormalizedNamed(`example.com/app@${sha256}`))).toBe(false);
  });
});
