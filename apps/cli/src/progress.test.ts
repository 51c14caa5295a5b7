import type { CopyEvent, CopyResult, Digest } from '@img/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  formatBytes,
  type ProgressMode,
  ProgressRenderer,
  resolveProgressMode,
  shortDigest,
  stderrStream,
  summaryLine,
} from './progress.js';

const layer = `sha256:${'ab'.repeat(32)}` as Digest;
const other = `sha256:${'cd'.repeat(32)}` as Digest;
const config = `sha256:${'ef'.repeat(32)}` as Digest;
const MiB = 1024 * 1024;

function sink(columns?: number) {
  const chunks: string[] = [];
  return { chunks, columns, write: (text: string) => chunks.push(text), text: () => chunks.join('') };
}

function renderer(mode: ProgressMode, clock = { t: 0 }) {
  const stderr = sink(80);
  const stdout = sink();
  const r = new ProgressRenderer({ mode, stderr, stdout, now: () => clock.t, frameMs: 100 });
  return { r, stderr, stdout, clock };
}

const result: CopyResult = {
  manifestDigest: config,
  manifest: { bytes: new Uint8Array(), mediaType: 'x' },
  alreadyPresent: false,
  bytesMoved: 12.3 * MiB,
  imageSize: 45.6 * MiB,
  blobsCopied: 3,
  blobsReused: 2,
  blobsMounted: 0,
};

const copyEvents: CopyEvent[] = [
  { type: 'image-start', manifestDigest: config, instance: false, layers: 2, size: 3 * MiB },
  { type: 'blob-reused', digest: other, size: MiB, kind: 'layer', how: 'present' },
  { type: 'blob-start', digest: layer, size: 2 * MiB, kind: 'layer' },
  { type: 'blob-bytes', digest: layer, bytes: MiB, size: 2 * MiB },
  { type: 'blob-done', digest: layer, bytes: 2 * MiB, kind: 'layer', stored: layer },
  { type: 'blob-start', digest: config, size: 300, kind: 'config' },
  { type: 'blob-done', digest: config, bytes: 300, kind: 'config', stored: config },
  { type: 'manifest-written', digest: config, mediaType: 'x', instance: false },
  { type: 'signatures-written', count: 0, manifestDigest: config },
];

afterEach(() => {
  vi.useRealTimers();
});

describe('helpers', () => {
  it('formats sizes in binary units with one decimal', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(12.34 * MiB)).toBe('12.3 MiB');
    expect(formatBytes(3 * 1024 * MiB)).toBe('3.0 GiB');
  });

  it('shortens digests to the algorithm and 12 hex digits', () => {
    expect(shortDigest(layer)).toBe('sha256:abababababab');
  });

  it('summarises what moved against the image size, saying when the image was already there', () => {
    expect(summaryLine(result)).toBe('Wrote 3 blobs, reused 2: moved 12.3 MiB of 45.6 MiB (image size)');
    expect(
      summaryLine({ ...result, alreadyPresent: true, bytesMoved: 0, blobsCopied: 0, blobsReused: 0 }),
    ).toBe(
      'Wrote 0 blobs, reused 0: moved 0 B of 45.6 MiB (image size), image already present: nothing moved',
    );
    expect(summaryLine({ ...result, blobsCopied: 1 })).toMatch(/^Wrote 1 blob,/);
  });

  it('counts the mounted blobs among the reused ones', () => {
    expect(summaryLine({ ...result, blobsCopied: 1, blobsReused: 4, blobsMounted: 3, bytesMoved: 300 })).toBe(
      'Wrote 1 blob, reused 4 (3 mounted): moved 300 B of 45.6 MiB (image size)',
    );
  });

  it('picks bars on a terminal and lines elsewhere for auto, nothing when quiet', () => {
    expect(resolveProgressMode('auto', { quiet: false, isTTY: true })).toBe('bars');
    expect(resolveProgressMode('auto', { quiet: false, isTTY: false })).toBe('lines');
    expect(resolveProgressMode('json', { quiet: false, isTTY: true })).toBe('json');
    expect(resolveProgressMode('bars', { quiet: true, isTTY: true })).toBe('none');
  });
});

describe('lines mode', () => {
  it('writes one line per finished or skipped blob and the summary', () => {
    const { r, stderr, stdout } = renderer('lines');
    for (const e of copyEvents) r.onEvent(e);
    r.finish(result);
    expect(stderr.text()).toBe(
      [
        'Skipping blob sha256:cdcdcdcdcdcd: reused: already present',
        'Copying blob sha256:abababababab done: copied 2.0 MiB',
        'Copying config sha256:efefefefefef done: copied 300 B',
        'Writing manifest to image destination',
        'Wrote 3 blobs, reused 2: moved 12.3 MiB of 45.6 MiB (image size)',
        '',
      ].join('\n'),
    );
    expect(stdout.text()).toBe('');
  });

  it('says when the destination already had the image', () => {
    const { r, stderr } = renderer('lines');
    r.onEvent({ type: 'image-present', manifestDigest: config, missingSignatures: 0 });
    r.onEvent({
      type: 'blob-reused',
      digest: layer,
      size: 1,
      kind: 'layer',
      how: 'substituted',
      substitute: other,
    });
    expect(stderr.text()).toBe(
      'Skipping: image already present at destination\nSkipping blob sha256:abababababab: reused: present as sha256:cdcdcdcdcdcd\n',
    );
  });

  it('says which blobs were mounted from another repository', () => {
    const { r, stderr } = renderer('lines');
    r.onEvent({ type: 'blob-reused', digest: layer, size: 1, kind: 'layer', how: 'mounted' });
    expect(stderr.text()).toBe('Skipping blob sha256:abababababab: mounted from another repository\n');
  });
});

describe('json mode', () => {
  it('writes each event as one JSON line on stdout and only the summary on stderr', () => {
    const { r, stderr, stdout } = renderer('json');
    for (const e of copyEvents) r.onEvent(e);
    r.finish(result);
    const lines = stdout.text().trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual(copyEvents);
    expect(stderr.text()).toBe('Wrote 3 blobs, reused 2: moved 12.3 MiB of 45.6 MiB (image size)\n');
  });
});

describe('none mode', () => {
  it('writes nothing at all', () => {
    const { r, stderr, stdout } = renderer('none');
    for (const e of copyEvents) r.onEvent(e);
    r.finish(result);
    expect(stderr.text() + stdout.text()).toBe('');
  });
});

describe('bars mode', () => {
  // What the terminal would show: apply "cursor up N", "clear line" and newlines to a screen of lines.
  function screen(output: string): string[] {
    const lines: string[] = [];
    let row = 0;
    const esc = '\u001b';
    const re = new RegExp(`${esc}\\[(\\d+)A|\\r${esc}\\[2K|\\n|[^${esc}\\r\\n]+`, 'g');
    for (const m of output.matchAll(re)) {
      if (m[1]) row -= Number(m[1]);
      else if (m[0] === '\n') row++;
      else if (m[0].startsWith('\r')) lines[row] = '';
      else lines[row] = (lines[row] ?? '') + m[0];
    }
    return lines;
  }

  it('redraws bars in place and leaves one final line per blob', () => {
    const { r, stderr, clock } = renderer('bars');
    r.onEvent({ type: 'blob-start', digest: layer, size: 2 * MiB, kind: 'layer' });
    clock.t = 1000;
    r.onEvent({ type: 'blob-bytes', digest: layer, bytes: MiB, size: 2 * MiB });
    expect(screen(stderr.text())).toEqual([
      'Copying blob sha256:abababababab [========>       ] 1.0 MiB / 2.0 MiB 1.0 MiB/s',
    ]);
    clock.t = 2000;
    r.onEvent({ type: 'blob-reused', digest: other, size: MiB, kind: 'layer', how: 'present' });
    r.onEvent({ type: 'blob-reused', digest: config, size: MiB, kind: 'layer', how: 'mounted' });
    clock.t = 3000;
    r.onEvent({ type: 'blob-done', digest: layer, bytes: 2 * MiB, kind: 'layer', stored: layer });
    r.finish({ ...result, blobsMounted: 1 });
    expect(screen(stderr.text())).toEqual([
      'Copying blob sha256:abababababab done: copied 2.0 MiB',
      'Copying blob sha256:cdcdcdcdcdcd skipped: reused: already present',
      'Copying blob sha256:efefefefefef skipped: mounted from another repository',
      'Wrote 3 blobs, reused 2 (1 mounted): moved 12.3 MiB of 45.6 MiB (image size)',
    ]);
    expect(stderr.text()).toContain('\x1b[2A');
  });

  it('draws at most once per frame, catching up on a timer', () => {
    vi.useFakeTimers();
    const { r, stderr, clock } = renderer('bars');
    r.onEvent({ type: 'blob-start', digest: layer, size: 100, kind: 'layer' });
    const framesAfterStart = stderr.chunks.length;
    for (let i = 1; i <= 50; i++) {
      clock.t = i;
      r.onEvent({ type: 'blob-bytes', digest: layer, bytes: i, size: 100 });
    }
    expect(stderr.chunks.length).toBe(framesAfterStart);
    clock.t = 100;
    vi.advanceTimersByTime(100);
    expect(stderr.chunks.length).toBe(framesAfterStart + 1);
    expect(screen(stderr.text())[0]).toContain('50 B / 100 B');
  });

  it('keeps lines within the terminal width', () => {
    const stderr = sink(30);
    const r = new ProgressRenderer({ mode: 'bars', stderr, stdout: sink(), now: () => 0 });
    r.onEvent({ type: 'blob-start', digest: layer, size: 100, kind: 'layer' });
    r.finish();
    expect(screen(stderr.text())[0]!.length).toBeLessThan(30);
  });
});

describe('resolveProgressMode with a lazy isTTY', () => {
  it('asks whether stderr is a terminal only for auto', () => {
    let asked = 0;
    const isTTY = () => {
      asked++;
      return true;
    };
    expect(resolveProgressMode('lines', { quiet: false, isTTY })).toBe('lines');
    expect(resolveProgressMode(undefined, { quiet: true, isTTY })).toBe('none');
    expect(asked).toBe(0);
    expect(resolveProgressMode('auto', { quiet: false, isTTY })).toBe('bars');
    expect(asked).toBe(1);
  });
});

describe('stderrStream', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes straight to fd 2 when it is not a terminal, through partial writes', () => {
    // Under the test runner fd 2 is a pipe, as in CI.
    const fds: number[] = [];
    const written: Buffer[] = [];
    const stream = stderrStream({
      write: (fd, data) => {
        const n = Math.min(3, data.length);
        fds.push(fd);
        written.push(Buffer.from(data.subarray(0, n)));
        return n;
      },
    });
    const viaProcess = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    stream.write('héllo\n');
    expect(Buffer.concat(written).toString()).toBe('héllo\n');
    expect(written.length).toBe(3);
    expect(new Set(fds)).toEqual(new Set([2]));
    expect(viaProcess).not.toHaveBeenCalled();
    expect(stream.columns).toBeUndefined();
  });

  it('hands the rest to process.stderr, in order, once a direct write fails', () => {
    let calls = 0;
    const direct: Buffer[] = [];
    const stream = stderrStream({
      write: (_fd, data) => {
        if (++calls === 2) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
        direct.push(Buffer.from(data.subarray(0, 2)));
        return 2;
      },
    });
    const later: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      later.push(Buffer.from(chunk).toString());
      return true;
    });
    stream.write('abcdef');
    stream.write('gh');
    expect(Buffer.concat(direct).toString()).toBe('ab');
    expect(later).toEqual(['cdef', 'gh']);
    expect(calls).toBe(2);
  });
});
