import { describe, expect, it } from 'vitest';
import { GoTime, goJson, goPrint, goStruct } from './go-value.js';

describe('goJson', () => {
  it('indents like json.MarshalIndent, sorting map keys and keeping struct fields in order', () => {
    const value = goStruct({ Z: 1, A: { b: '2', a: '1' }, E: [], M: {}, N: null }, 'T');
    expect(goJson(value, { indent: '    ' })).toBe(
      '{\n    "Z": 1,\n    "A": {\n        "a": "1",\n        "b": "2"\n    },\n    "E": [],\n    "M": {},\n    "N": null\n}',
    );
  });

  it('sorts map keys byte-wise as Go does, digits and all', () => {
    expect(goJson({ b: 1, '10': 2, '9': 3, B: 4 })).toBe('{"10":2,"9":3,"B":4,"b":1}');
  });

  it('escapes HTML characters unless told not to', () => {
    expect(goJson({ a: '<a&b>\u2028' })).toBe('{"a":"\\u003ca\\u0026b\\u003e\\u2028"}');
    expect(goJson({ a: '<a>' }, { escapeHtml: false })).toBe('{"a":"<a>"}');
  });

  it('writes times as RFC 3339 the way Go marshals them', () => {
    expect(goJson(new GoTime('2023-01-02T03:04:05.120000Z'))).toBe('"2023-01-02T03:04:05.12Z"');
    expect(goJson(new GoTime('2023-01-02T03:04:05+00:00'))).toBe('"2023-01-02T03:04:05Z"');
  });
});

describe('goPrint', () => {
  it('prints values as fmt %v', () => {
    expect(goPrint(undefined)).toBe('<no value>');
    expect(goPrint(null)).toBe('<nil>');
    expect(goPrint(['a', 'b'])).toBe('[a b]');
    expect(goPrint({ b: '2', a: '1' })).toBe('map[a:1 b:2]');
    expect(goPrint(goStruct({ b: '2', a: 1 }, 'T'))).toBe('{2 1}');
    expect(goPrint(new GoTime('2023-01-02T03:04:05+02:00'))).toBe('2023-01-02 03:04:05 +0200 +0200');
  });
});
