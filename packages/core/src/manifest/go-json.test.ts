import { describe, expect, it } from 'vitest';
import { GoMap, goCompact, goMarshal, RawJson, rawMembers } from './go-json.js';

describe('goMarshal', () => {
  it('writes struct fields in order and leaves out undefined ones', () => {
    expect(goMarshal({ b: 1, a: undefined, c: 'x' })).toBe('{"b":1,"c":"x"}');
  });

  it('writes map keys sorted byte-wise', () => {
    expect(goMarshal(new GoMap({ é: 1, z: 2, Z: 3, '2': 4, '10': 5 }))).toBe(
      '{"10":5,"2":4,"Z":3,"z":2,"é":1}',
    );
  });

  it('escapes <, >, &, U+2028 and U+2029 in strings', () => {
    expect(goMarshal('<a>&\u2028\u2029')).toBe('"\\u003ca\\u003e\\u0026\\u2028\\u2029"');
  });

  it('writes raw JSON compacted', () => {
    expect(goMarshal([new RawJson('{ "a" : [ 1.0 , 2 ] }')])).toBe('[{"a":[1.0,2]}]');
  });
});

describe('goCompact', () => {
  it('keeps spaces and escapes inside strings', () => {
    expect(goCompact('{ "a b" : "c \\" d" }')).toBe('{"a b":"c \\" d"}');
  });

  it('keeps key order and number text', () => {
    expect(goCompact('{"z": 1e3, "a": 0.10}')).toBe('{"z":1e3,"a":0.10}');
  });
});

describe('rawMembers', () => {
  it('splits an object into keys and raw values in document order', () => {
    expect(rawMembers(' { "b" : { "x" : "}" } , "a":[1, "]"],"c":null } ')).toEqual([
      ['b', '{ "x" : "}" }'],
      ['a', '[1, "]"]'],
      ['c', 'null'],
    ]);
  });

  it('decodes escaped keys', () => {
    expect(rawMembers('{"\\u0041":1}')).toEqual([['A', '1']]);
  });

  it('gives nothing for an empty object', () => {
    expect(rawMembers('{ }')).toEqual([]);
  });
});
