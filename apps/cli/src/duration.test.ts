import { describe, expect, it } from 'vitest';
import { formatGoDuration, parseGoDuration } from './duration.js';

describe('parseGoDuration', () => {
  it('reads Go durations into milliseconds', () => {
    expect(parseGoDuration('30s')).toBe(30_000);
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('1h2m3s')).toBe(3_723_000);
    expect(parseGoDuration('1.5h')).toBe(5_400_000);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('.5s')).toBe(500);
    expect(parseGoDuration('1500us')).toBe(1.5);
    expect(parseGoDuration('2µs')).toBe(0.002);
    expect(parseGoDuration('1000000ns')).toBe(1);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('-1s')).toBe(-1000);
  });

  it('refuses numbers without units, unknown units and stray text', () => {
    for (const bad of ['', '30', '1x', 's', '.s', '1m30', '1 s', '1s ', 'abc', '1d']) {
      expect(() => parseGoDuration(bad), bad).toThrow(/invalid duration/);
    }
  });
});

describe('formatGoDuration', () => {
  it('writes durations back in Go style', () => {
    expect(formatGoDuration(0)).toBe('0s');
    expect(formatGoDuration(250)).toBe('250ms');
    expect(formatGoDuration(30_000)).toBe('30s');
    expect(formatGoDuration(90_000)).toBe('1m30s');
    expect(formatGoDuration(3_723_000)).toBe('1h2m3s');
  });
});
