import type { Database, Statement } from "better-sqlite3";

/**
 * Statements prepared once per distinct SQL text, for the life of the connection. Preparing one
 * for each call left a native statement to the collector every time: under many calls (10,000
 * CreateVm in a row) they piled up outside the JS heap and the process kept the memory.
 */
export class StatementCache {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: Database) {}

  prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement as unknown as Statement<P, R>;
  }
}
