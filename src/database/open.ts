import type { Config } from '../config.ts';
import { EmbeddedDatabase } from './embedded.ts';
import { PostgresDatabase } from './postgres.ts';
import type { Database } from './types.ts';

/** The server when DATABASE_URL is set, the embedded database otherwise. */
export async function openDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir'> & { poolMax?: number }): Promise<Database> {
  if (config.databaseUrl) return PostgresDatabase.open({ url: config.databaseUrl, max: config.poolMax });
  return EmbeddedDatabase.open({ dataDir: config.dataDir });
}
