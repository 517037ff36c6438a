/**
 * Validate an OCSF record against the shipped schema subset (schema-1.3.0.json): base-event
 * requirements, known class and activity, type_uid = class_uid × 100 + activity_id, category,
 * class-required attributes, and the required attributes of the objects it carries.
 */
import { readFileSync } from 'node:fs';

interface Req {
  required: string[];
  at_least_one?: string[];
}
interface Schema {
  version: string;
  base: { required: string[]; integers: string[]; enums: Record<string, number[]> };
  classes: Record<string, Req & { name: string; category_uid: number; activities: Record<string, string> }>;
  objects: Record<string, Req>;
  attribute_objects: Record<string, string>;
}

export const OCSF_SCHEMA: Schema = JSON.parse(readFileSync(new URL('./schema-1.3.0.json', import.meta.url), 'utf8')) as Schema;
export const OCSF_VERSION = OCSF_SCHEMA.version;

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);

function checkReq(obj: Record<string, unknown>, req: Req, where: string, out: string[]): void {
  for (const k of req.required) if (!present(obj[k])) out.push(`${where}${k}: required`);
  if (req.at_least_one && !req.at_least_one.some((k) => present(obj[k]))) out.push(`${where}: needs at least one of ${req.at_least_one.join(', ')}`);
}

/** Problems found (empty = valid). */
export function validateOcsf(record: Record<string, unknown>): string[] {
  const out: string[] = [];
  const s = OCSF_SCHEMA;
  checkReq(record, { required: s.base.required }, '', out);
  for (const k of s.base.integers) if (record[k] !== undefined && !Number.isInteger(record[k])) out.push(`${k}: must be an integer`);
  for (const [k, values] of Object.entries(s.base.enums)) if (record[k] !== undefined && !values.includes(record[k] as number)) out.push(`${k}: ${String(record[k])} is not in the enum`);
  const cls = s.classes[String(record.class_uid)];
  if (!cls) return [...out, `class_uid ${String(record.class_uid)}: not a class of this schema subset`];
  if (record.category_uid !== cls.category_uid) out.push(`category_uid: ${String(record.category_uid)} is not ${cls.category_uid} (${cls.name})`);
  if (!(String(record.activity_id) in cls.activities)) out.push(`activity_id: ${String(record.activity_id)} is not an activity of ${cls.name}`);
  if (record.type_uid !== (record.class_uid as number) * 100 + (record.activity_id as number)) out.push('type_uid: must be class_uid * 100 + activity_id');
  checkReq(record, cls, '', out);
  for (const [path, objName] of Object.entries(s.attribute_objects)) {
    const v = path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), record);
    if (v === undefined) continue;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      out.push(`${path}: must be an object (${objName})`);
      continue;
    }
    checkReq(v as Record<string, unknown>, s.objects[objName]!, `${path}.`, out);
  }
  return out;
}
