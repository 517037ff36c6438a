/**
 * OCSF record → CEF (ArcSight Common Event Format, version 0) inside an RFC 5424 syslog message.
 * Header fields escape `\` and `|`; extension values escape `\`, `=` and line breaks (CEF spec).
 */
import type { OcsfRecord } from '../ocsf/map.ts';

const header = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|');
const ext = (s: string): string => s.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r?\n|\r/g, '\\n');

/** OCSF severity_id (0–6) → CEF severity (0–10). */
const CEF_SEVERITY = [0, 1, 3, 5, 8, 10, 10];

export function toCef(r: OcsfRecord, version: string): string {
  const md = (r.metadata ?? {}) as Record<string, unknown>;
  const actor = ((r.actor as Record<string, unknown> | undefined)?.user ?? {}) as Record<string, unknown>;
  const src = (r.src_endpoint ?? {}) as Record<string, unknown>;
  const dst = (r.dst_endpoint ?? {}) as Record<string, unknown>;
  const fields: [string, unknown][] = [
    ['rt', r.time], ['externalId', md.uid], ['suser', actor.name], ['src', src.ip], ['spt', src.port], ['dst', dst.ip], ['dpt', dst.port],
    ['cs1Label', 'session'], ['cs1', md.correlation_uid], ['cs2Label', 'ocsf_class'], ['cs2', `${String(r.class_uid)}/${String(r.activity_id)}`],
    ['outcome', r.status_id === 2 ? 'failure' : r.status_id === 1 ? 'success' : undefined], ['msg', r.message],
  ];
  const extension = fields.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${ext(String(v))}`).join(' ');
  const sev = CEF_SEVERITY[Number(r.severity_id)] ?? 5;
  return `CEF:0|Vigil|Vigil|${header(version)}|${header(`${String(r.type_uid)}`)}|${header(String(r.class_name ?? r.class_uid))}|${sev}|${extension}`;
}

/** RFC 5424 message (facility local0 = 16; severity from OCSF) carrying one CEF line. */
export function syslogLine(r: OcsfRecord, appName: string, version: string, hostname: string): string {
  const sev = Number(r.severity_id) >= 5 ? 2 : Number(r.severity_id) >= 4 ? 3 : Number(r.severity_id) >= 3 ? 4 : 6;
  const pri = 16 * 8 + sev;
  const ts = new Date(Number(r.time)).toISOString();
  return `<${pri}>1 ${ts} ${hostname} ${appName} - ${String(r.class_uid)} - ${toCef(r, version)}`;
}

/** RFC 6587 / RFC 5425 octet-counting: `MSG-LEN SP SYSLOG-MSG`, length in bytes. */
export function octetCounted(msg: string): Buffer {
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}
