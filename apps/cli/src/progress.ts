import { fstatSync, writeSync } from 'node:fs';
import type { CopyEvent, CopyResult, Digest } from '@img/core';

/** How `copy` reports progress: live bars (a terminal), one line per event, JSON lines, or nothing. */
export type ProgressMode = 'bars' | 'lines' | 'json' | 'none';

/** The `--progress` values; `auto` is bars on a terminal, lines otherwise. */
export const progressFlagValues = ['auto', 'bars', 'lines', 'json', 'none'] as const;

/** Where progress is written: a stream's `write`, and its width when it is a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  columns?: number | undefined;
}

/** Options of {@link ProgressRenderer}. */
export interface ProgressRendererOptions {
  mode: ProgressMode;
  /** Bars, lines and the summary go here. */
  stderr: ProgressStream;
  /** JSON events go here. */
  stdout: ProgressStream;
  /** The clock, in milliseconds; injectable for tests. */
  now?: () => number;
  /** The shortest time between two redraws of the bars; default 100 ms (10 frames a second). */
  frameMs?: number;
}

/**
 * Chooses the mode from `--progress` and `--quiet`, bars only when stderr is a terminal. `isTTY` may
 * be a function, asked only for `auto`: creating process.stderr costs a few milliseconds that a
 * quiet command need not pay.
 */
export function resolveProgressMode(
  flag: string | undefined,
  options: { quiet: boolean; isTTY: boolean | (() => boolean) },
): ProgressMode {
  if (options.quiet) return 'none';
  if (flag === undefined || flag === 'auto') {
    const isTTY = typeof options.isTTY === 'function' ? options.isTTY() : options.isTTY;
    return isTTY ? 'bars' : 'lines';
  }
  return flag as ProgressMode;
}

/**
 * process.stdout or process.stderr as a ProgressStream that creates the stream on first use, so
 * that a copy that prints nothing never creates it.
 */
export function lazyProcessStream(name: 'stdout' | 'stderr'): ProgressStream {
  return {
    write: (text) => process[name].write(text),
    get columns() {
      return process[name].columns;
    },
  };
}

/**
 * Whether file descriptor 2 is not a terminal, known without creating process.stderr: a pipe, a
 * file or a socket (what CI and scripts give) is not a character device. Creating process.stderr
 * for a pipe loads Node's net module, ~3 ms of a command that takes ~0.2 s. Always false on Windows.
 * Asked once per process.
 */
function stderrIsNotTerminal(): boolean {
  notTerminal ??= process.platform !== 'win32' && isNotCharacterDevice(2);
  return notTerminal;
}
let notTerminal: boolean | undefined;

function isNotCharacterDevice(fd: number): boolean {
  try {
    return !fstatSync(fd).isCharacterDevice();
  } catch {
    return false;
  }
}

/** Whether stderr is a terminal; asks process.stderr only when fd 2 might be one. */
export function stderrIsTTY(): boolean {
  return !stderrIsNotTerminal() && process.stderr.isTTY === true;
}

/**
 * stderr as a ProgressStream. When fd 2 is not a terminal, text is written straight to it with
 * writeSync, as process.stderr writes to pipes and files on POSIX (synchronously), without creating
 * that stream; should the descriptor refuse a write (a non-blocking pipe that is full), the rest of
 * the text and everything after it go through process.stderr, in order. On a terminal (or when fd
 * 2 cannot be examined), text goes to process.stderr, created on the first write.
 */
export function stderrStream(
  options: { write?: (fd: number, data: Uint8Array) => number } = {},
): ProgressStream {
  let direct: boolean | undefined;
  const write = options.write ?? writeSync;
  return {
    write(text) {
      direct ??= stderrIsNotTerminal();
      if (!direct) return process.stderr.write(text);
      let rest: Uint8Array = Buffer.from(text);
      try {
        while (rest.length > 0) {
          const written = write(2, rest);
          if (!(written > 0)) throw new Error('no progress writing to stderr');
          rest = rest.subarray(written);
        }
      } catch {
        direct = false;
        return process.stderr.write(rest);
      }
      return true;
    },
    get columns() {
      direct ??= stderrIsNotTerminal();
      return direct ? undefined : process.stderr.columns;
    },
  };
}

/** Bytes in binary units with one decimal: `512 B`, `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The short form of a digest shown in progress: the algorithm and the first 12 hex digits. */
export function shortDigest(digest: Digest | string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 13)}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * The line every copy ends with (unless --quiet): blobs written and reused (of which mounted), then
 * the blob bytes moved against the image's size.
 */
export function summaryLine(result: CopyResult): string {
  const mounted = result.blobsMounted > 0 ? ` (${result.blobsMounted} mounted)` : '';
  const base = `Wrote ${plural(result.blobsCopied, 'blob')}, reused ${result.blobsReused}${mounted}: moved ${formatBytes(result.bytesMoved)} of ${formatBytes(result.imageSize)} (image size)`;
  return result.alreadyPresent ? `${base}, image already present: nothing moved` : base;
}

/** What happened to a reused blob, as the progress output says it. */
function reuseText(event: Extract<CopyEvent, { type: 'blob-reused' }>): string {
  switch (event.how) {
    case 'mounted':
      return 'mounted from another repository';
    case 'substituted':
      return event.substitute ? `reused: present as ${shortDigest(event.substitute)}` : 'reused: present';
    default:
      return 'reused: already present';
  }
}

interface BlobRow {
  type: 'blob';
  digest: Digest;
  kind: 'layer' | 'config';
  size: number;
  bytes: number;
  startedAt: number;
  state: 'active' | 'copied' | 'reused';
  /** For a reused blob, how, as the output says it. */
  reuse?: string;
}

interface MessageRow {
  type: 'message';
  text: string;
}

type Row = BlobRow | MessageRow;

const defaultBarWidth = 20;
const minBarWidth = 10;
const maxBarWidth = 40;

/**
 * Turns copy events into progress output. `bars` keeps one line per blob and redraws the lines
 * still changing in place with ANSI cursor movement, at most once per frame; `lines` writes one
 * line when a blob is done or skipped; `json` writes each event as one JSON line on stdout.
 * Call {@link ProgressRenderer.finish} at the end, with the result on success.
 */
export class ProgressRenderer {
  private readonly rows: Row[] = [];
  private readonly blobs = new Map<string, BlobRow>();
  private readonly now: () => number;
  private readonly frameMs: number;
  /** Rows before this index are printed for good; the rest are redrawn. */
  private settled = 0;
  /** How many lines the last frame left on the screen below the settled rows. */
  private drawnLines = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: ProgressRendererOptions) {
    this.now = options.now ?? Date.now;
    this.frameMs = options.frameMs ?? 100;
  }

  /** Handles one event; never throws. Pass it as the copy's `onEvent`. */
  onEvent(event: CopyEvent): void {
    switch (this.options.mode) {
      case 'none':
        return;
      case 'json':
        this.options.stdout.write(`${JSON.stringify(event)}\n`);
        return;
      case 'lines':
        this.line(event);
        return;
      case 'bars':
        this.track(event);
        this.schedule();
        return;
    }
  }

  /** Draws the final frame and, given the copy's result, the summary line. */
  finish(result?: CopyResult): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.options.mode === 'bars') this.draw();
    if (result && this.options.mode !== 'none') this.options.stderr.write(`${summaryLine(result)}\n`);
  }

  private line(event: CopyEvent): void {
    const out = this.options.stderr;
    switch (event.type) {
      case 'blob-done':
        out.write(
          `Copying ${event.kind === 'config' ? 'config' : 'blob'} ${shortDigest(event.digest)} done: copied ${formatBytes(event.bytes)}\n`,
        );
        break;
      case 'blob-reused':
        out.write(
          `Skipping ${event.kind === 'config' ? 'config' : 'blob'} ${shortDigest(event.digest)}: ${reuseText(event)}\n`,
        );
        break;
      default: {
        const text = messageFor(event);
        if (text) out.write(`${text}\n`);
      }
    }
  }

  private blob(digest: Digest, kind: 'layer' | 'config', size: number): BlobRow {
    let row = this.blobs.get(digest);
    if (!row) {
      row = { type: 'blob', digest, kind, size, bytes: 0, startedAt: this.now(), state: 'active' };
      this.blobs.set(digest, row);
      this.rows.push(row);
    }
    return row;
  }

  private track(event: CopyEvent): void {
    switch (event.type) {
      case 'blob-start':
        this.blob(event.digest, event.kind, event.size);
        break;
      case 'blob-bytes': {
        const row = this.blob(event.digest, 'layer', event.size);
        row.bytes = event.bytes;
        if (event.size >= 0) row.size = event.size;
        break;
      }
      case 'blob-done': {
        const row = this.blob(event.digest, event.kind, -1);
        row.state = 'copied';
        row.bytes = event.bytes;
        break;
      }
      case 'blob-reused': {
        const row = this.blob(event.digest, event.kind, event.size);
        row.state = 'reused';
        row.reuse = reuseText(event);
        break;
      }
      default: {
        const text = messageFor(event);
        if (text) this.rows.push({ type: 'message', text });
      }
    }
  }

  private schedule(): void {
    const wait = this.lastDraw + this.frameMs - this.now();
    if (wait <= 0) {
      this.draw();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, wait);
    this.timer.unref?.();
  }

  private draw(): void {
    this.lastDraw = this.now();
    const width = this.options.stderr.columns;
    let out = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    for (let i = this.settled; i < this.rows.length; i++) {
      let text = this.render(this.rows[i]!);
      if (width && text.length >= width) text = text.slice(0, Math.max(width - 1, 1));
      out += `\r\x1b[2K${text}\n`;
    }
    while (this.settled < this.rows.length && isFinal(this.rows[this.settled]!)) this.settled++;
    this.drawnLines = this.rows.length - this.settled;
    if (out) this.options.stderr.write(out);
  }

  private render(row: Row): string {
    if (row.type === 'message') return row.text;
    const label = `Copying ${row.kind === 'config' ? 'config' : 'blob'} ${shortDigest(row.digest)}`;
    if (row.state === 'reused') return `${label} skipped: ${row.reuse ?? 'reused: already present'}`;
    if (row.state === 'copied') return `${label} done: copied ${formatBytes(row.bytes)}`;
    const seconds = (this.now() - row.startedAt) / 1000;
    const rate = seconds > 0.2 ? ` ${formatBytes(Math.round(row.bytes / seconds))}/s` : '';
    if (row.size <= 0) return `${label} ${formatBytes(row.bytes)}${rate}`;
    const counts = `${formatBytes(row.bytes)} / ${formatBytes(row.size)}${rate}`;
    // The bar takes what the terminal leaves of its width, within bounds.
    const columns = this.options.stderr.columns;
    const width = columns
      ? Math.max(minBarWidth, Math.min(maxBarWidth, columns - 1 - label.length - counts.length - 4))
      : defaultBarWidth;
    const filled = Math.min(width, Math.floor((row.bytes / row.size) * width));
    const bar =
      filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
    return `${label} [${bar}] ${counts}`;
  }
}

function isFinal(row: Row): boolean {
  return row.type === 'message' || row.state !== 'active';
}

function messageFor(event: CopyEvent): string | undefined {
  switch (event.type) {
    case 'image-present':
      return event.missingSignatures > 0
        ? `Image already present at destination: storing ${plural(event.missingSignatures, 'missing signature')}`
        : 'Skipping: image already present at destination';
    case 'manifest-written':
      return event.instance
        ? `Writing manifest ${shortDigest(event.digest)} to image destination`
        : 'Writing manifest to image destination';
    case 'signatures-written':
      return event.count > 0 ? `Storing ${plural(event.count, 'signature')}` : undefined;
    default:
      return undefined;
  }
}
