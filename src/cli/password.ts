import { createInterface } from 'node:readline';
import { UsageError } from './usage.ts';

/** Reads standard input whole. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks on the terminal without echoing what is typed. */
function ask(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    let asked = false;
    output._writeToOutput = (s: string) => {
      // The question is written; what is typed is not.
      if (!asked) process.stderr.write(s);
      asked = true;
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

/**
 * A password from standard input (--password-stdin: its first line), from the terminal
 * (--prompt-password: asked twice, not echoed), or from TRADESTORE_PASSWORD; never from the
 * command line, where `ps` shows it to everyone. Undefined when none is given (no password).
 */
export async function readPassword(from: { stdin: boolean; prompt: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (from.stdin && from.prompt) throw new UsageError('--password-stdin and --prompt-password: choose one');
  if (from.stdin) {
    const password = (await readStdin()).split(/\r?\n/)[0] ?? '';
    if (password === '') throw new UsageError('--password-stdin: standard input held no password');
    return password;
  }
  if (from.prompt) {
    if (!process.stdin.isTTY) throw new UsageError('--prompt-password needs a terminal; use --password-stdin or TRADESTORE_PASSWORD');
    const first = await ask('password: ');
    const again = await ask('again: ');
    if (first !== again) throw new UsageError('the two passwords differ');
    return first;
  }
  const fromEnv = env.TRADESTORE_PASSWORD;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}
