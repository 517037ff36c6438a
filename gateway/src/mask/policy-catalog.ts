/**
 * A catalog made of the mask rules alone, for code that sees statements but not the target
 * (ingest masking at rest: it holds no target credentials and must not connect to targets).
 *
 * For a relation named in a statement it returns one `partial` relation (lineage.ts) whose columns
 * are those the rules' `columns` patterns name for a table of that name: `FROM customers` with a
 * rule on `crm.customers.ssn` gives `customers(ssn)`. A reference to another column derives from
 * nothing (no rule covers it); a rule whose column part is a glob (`customers.card_*`) makes every
 * unlisted column of that table undecidable, hence masked. An unqualified relation matches rules of
 * any schema (the session's search_path is unknown), like the gateway's own relation matching.
 *
 * What it cannot see: views (their definitions live in the target's catalog), so a literal compared
 * with a view column derived from a masked column is masked only by the detectors; the table's
 * column order, so an INSERT without a column list into a table with a masked column has all its
 * values masked.
 *
 * Sources it produces are `schema.table.column` with `*` for an unknown schema; `choice(source)`
 * gives the strongest rule covering it (a rule pattern with a schema glob cannot be re-matched
 * against `*`, so the decision is taken here, where the pattern and the name meet).
 */
import type { MaskDirective } from '../policy/compile.ts';
import { stronger, type MaskChoice } from '../policy/mask.ts';
import { compileGlobList } from '../policy/glob.ts';
import type { CatalogLookup, RelationInfo } from './lineage.ts';

export interface PolicyCatalog extends CatalogLookup {
  /** The strongest rule covering a source this catalog produced. */
  choice(source: string): MaskChoice | undefined;
}

interface Pattern {
  readonly schema: ((s: string) => boolean) | undefined;
  readonly table: (s: string) => boolean;
  /** Lower-cased column name, or undefined for a glob. */
  readonly column: string | undefined;
  readonly choice: MaskChoice;
}

const GLOB = /[*?[\\]/;

function choiceOf(d: MaskDirective): MaskChoice {
  return d.keep_last === undefined ? { strategy: d.strategy, rule_id: d.rule_id } : { strategy: d.strategy, keep_last: d.keep_last, rule_id: d.rule_id };
}

export function policyCatalog(directives: readonly MaskDirective[]): PolicyCatalog {
  const patterns: Pattern[] = [];
  for (const d of directives) {
    for (const p of d.columns) {
      const parts = p.split('.');
      const [schema, table, column] = parts.length >= 3 ? parts.slice(-3) : parts.length === 2 ? [undefined, ...parts] : [undefined, '*', parts[0]];
      patterns.push({
        schema: schema === undefined ? undefined : compileGlobList([schema], true),
        table: compileGlobList([table!], true),
        column: GLOB.test(column!) ? undefined : column!.toLowerCase(),
        choice: choiceOf(d),
      });
    }
  }
  const choices = new Map<string, MaskChoice>();
  const cache = new Map<string, readonly RelationInfo[]>();
  return {
    relations(schema, name) {
      const key = `${schema ?? ''}\0${name}`;
      const hit = cache.get(key);
      if (hit) return hit;
      const s = schema?.toLowerCase();
      const n = name.toLowerCase();
      const prefix = `${s ?? '*'}.${n}.`;
      const columns: string[] = [];
      let unlisted = false;
      for (const p of patterns) {
        if (!p.table(n) || (s !== undefined && p.schema !== undefined && !p.schema(s))) continue;
        if (p.column === undefined) {
          unlisted = true;
          continue;
        }
        if (!columns.includes(p.column)) columns.push(p.column);
        const src = prefix + p.column;
        const prev = choices.get(src);
        if (prev === undefined || stronger(p.choice, prev)) choices.set(src, p.choice);
      }
      const rel: RelationInfo = { schema: s ?? '*', name: n, kind: 'r', columns, system: false, partial: true, unlistedOpaque: unlisted, viewQuery: () => undefined };
      const out = Object.freeze([rel]);
      if (cache.size < 10_000) cache.set(key, out);
      return out;
    },
    choice: (source) => choices.get(source),
  };
}
