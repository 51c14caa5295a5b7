const unitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration in Go's `time.ParseDuration` syntax (what skopeo's `--command-timeout` and
 * `--retry-delay` take): a sequence of decimal numbers with units, `300ms`, `1m30s`, `1.5h`, or
 * plain `0`. Returns milliseconds; throws a TypeError naming the text otherwise.
 */
export function parseGoDuration(text: string): number {
  const fail = (why: string): never => {
    throw new TypeError(`invalid duration "${text}": ${why}`);
  };
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') fail('expected a number with a unit, e.g. 30s or 1m30s');
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  while (rest !== '') {
    const m = part.exec(rest);
    if (!m || (m[1] === '' && (m[2] === undefined || m[2] === '')))
      fail('expected a number with a unit, e.g. 30s or 1m30s');
    const unit = m![3]!;
    const scale = unitMs[unit];
    if (scale === undefined) fail(`unknown unit "${unit}" (use ns, us, ms, s, m or h)`);
    total += Number(`${m![1] || '0'}.${m![2] || '0'}`) * scale!;
    rest = rest.slice(m![0].length);
  }
  return sign * total;
}

/** A duration in milliseconds written back in Go's style (`1m30s`, `250ms`), for messages. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${Number(ms.toFixed(3))}ms`;
  let rest = ms / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const s = Number(rest.toFixed(3));
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}
