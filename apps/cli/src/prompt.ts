import { createInterface, type Interface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * Asks questions on a terminal or reads answers line by line from piped stdin (as skopeo login
 * does), hiding what is typed for secrets. One instance per command; close it when done.
 */
export class Prompter {
  private readonly rl: Interface;
  private muted = false;
  private readonly lines: string[] = [];
  private readonly waiting: Array<(line: string | undefined) => void> = [];
  private ended = false;

  constructor(
    private readonly input: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin,
    private readonly output: NodeJS.WritableStream = process.stdout,
  ) {
    const echo = new Writable({
      write: (chunk, _encoding, callback) => {
        if (!this.muted) this.output.write(chunk);
        callback();
      },
    });
    this.rl = createInterface({ input, output: echo, terminal: input.isTTY === true });
    this.rl.on('line', (line) => {
      const next = this.waiting.shift();
      if (next) next(line);
      else this.lines.push(line);
    });
    this.rl.on('close', () => {
      this.ended = true;
      for (const next of this.waiting.splice(0)) next(undefined);
    });
  }

  /** Writes the question and reads one line; undefined at the end of input. */
  async ask(question: string, options: { secret?: boolean } = {}): Promise<string | undefined> {
    this.output.write(question);
    this.muted = options.secret === true && this.input.isTTY === true;
    try {
      const buffered = this.lines.shift();
      if (buffered !== undefined) return buffered;
      if (this.ended) return undefined;
      return await new Promise((resolve) => this.waiting.push(resolve));
    } finally {
      // The typed line ended without an echoed newline.
      if (this.muted) this.output.write('\n');
      this.muted = false;
    }
  }

  close(): void {
    this.rl.close();
  }
}

/** All of stdin as text (for --password-stdin), without its trailing line break. */
export async function readStdin(input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
