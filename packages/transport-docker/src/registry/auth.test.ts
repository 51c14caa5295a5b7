import { describe, expect, it } from 'vitest';
import { nextLink } from '../list-tags.js';
import { parseChallenges, parseTokenResponse } from './auth.js';
import { retryAfterMs } from './client.js';
import { parseErrorBody, redactUrl } from './errors.js';

describe('parseChallenges', () => {
  it('reads a bearer challenge with a quoted comma in the scope', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry.example.com',
          scope: 'repository:a/b:pull,push',
        },
      },
    ]);
  });

  it('splits several challenges in one header and across headers', () => {
    expect(
      parseChallenges(['Basic realm="a, b", Bearer realm="x",error=invalid_token', 'Negotiate abc==']),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'a, b' } },
      { scheme: 'bearer', params: { realm: 'x', error: 'invalid_token' } },
      { scheme: 'negotiate', params: { '': 'abc==' } },
    ]);
  });

  it('unescapes backslashes in quoted values and lower-cases names', () => {
    expect(parseChallenges('BASIC Realm="say \\"hi\\""')).toEqual([
      { scheme: 'basic', params: { realm: 'say "hi"' } },
    ]);
  });
});

describe('parseTokenResponse', () => {
  it('takes token or access_token and raises a short expires_in to 60 s', () => {
    const now = 1_000_000;
    expect(parseTokenResponse(Buffer.from('{"access_token":"t","expires_in":10}'), now)?.expiresAt).toBe(
      now + 55_000,
    );
    expect(
      parseTokenResponse(Buffer.from('{"token":"u","expires_in":300,"refresh_token":"r"}'), now),
    ).toEqual({
      token: 'u',
      expiresAt: now + 295_000,
      refreshToken: 'r',
    });
    expect(parseTokenResponse(Buffer.from('{}'), now)).toBeUndefined();
  });
});

describe('helpers', () => {
  it('parses Retry-After as seconds or a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });

  it('finds the next page in a Link header', () => {
    const base = new URL('http://r/v2/app/tags/list?n=2');
    expect(nextLink('</v2/app/tags/list?last=b&n=2>; rel="next"', base)?.href).toBe(
      'http://r/v2/app/tags/list?last=b&n=2',
    );
    expect(nextLink('<http://x/prev>; rel="prev", <http://x/next>; rel=next', base)?.href).toBe(
      'http://x/next',
    );
    expect(nextLink(undefined, base)).toBeUndefined();
  });

  it('redacts userinfo and query from URLs and reads registry error bodies', () => {
    expect(redactUrl('https://user:pw@r.example/v2/a?token=secret')).toBe('https://r.example/v2/a');
    expect(parseErrorBody(Buffer.from('{"errors":[{"code":"DENIED","message":"no"},{"code":"X"}]}'))).toEqual(
      [{ code: 'DENIED', message: 'no' }, { code: 'X' }],
    );
  });
});
