/*
 * Native frame sealing: the same bytes as sealFrame() in schemas/src/codec.ts, without a JS
 * allocation per frame. One call seals one `frame` event of one chain (sealFrames, further down,
 * seals many from a recorder batch into an event-log record run):
 *
 *   sealFrame(out, outOffset, chain, s2c, msgTypePart, time, data) -> end offset, or -(bytes needed)
 *
 *   out          Buffer the record is written into at outOffset (a slab shared by many records)
 *   chain        the chain's state, a Buffer laid out as CHAIN_* below: the previous hash (raw),
 *                the next seq, and the session's constant header fragments. Updated in place: on
 *                return it holds this record's hash and seq + 1.
 *   s2c          0 = c2s, 1 = s2c
 *   msgTypePart  `,"msg_type":<JSON string>` as UTF-8 bytes, or undefined (no msg_type)
 *   time         µs since epoch (a safe integer)
 *   data         the raw protocol bytes (any Uint8Array)
 *
 * When the record does not fit in `out` after outOffset, nothing is written and the chain is
 * unchanged; the return value is minus the record's size, so the caller can take a bigger slab.
 *
 * Record layout and hash (codec.ts): magic, version, hash[32], u32be header length, header, data;
 * hash = SHA-256(prev_hash ‖ u32be(H) ‖ header ‖ data). SHA-256 is OpenSSL's, the copy that Node
 * itself is linked with (resolved from the node process when the addon loads). event_id is a
 * random (v4) UUID from OpenSSL's CSPRNG, as crypto.randomUUID() makes them.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The chain state's seq and lengths are written by JS as little-endian (writeDoubleLE, u16 LE). */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the native sealer reads little-endian chain state; build without it (the JS sealer is used)"
#endif

/* OpenSSL's SHA-256 and RAND_bytes, as exported by the node binary (Node's own OpenSSL). The
 * context is opaque here; OpenSSL's SHA256_CTX is 112 bytes, so 256 leaves room. */
typedef struct { _Alignas(16) unsigned char opaque[256]; } sha256_ctx;
extern int SHA256_Init(sha256_ctx *c);
extern int SHA256_Update(sha256_ctx *c, const void *data, size_t len);
extern int SHA256_Final(unsigned char *md, sha256_ctx *c);
extern int RAND_bytes(unsigned char *buf, int num);

/* Chain state layout (schemas/src/native.ts builds it). */
#define CHAIN_HASH 0       /* 32 bytes: previous hash, raw */
#define CHAIN_SEQ 32       /* float64 LE: next seq (a safe integer) */
#define CHAIN_GW_LEN 40    /* u16 LE: length of the gateway fragment */
#define CHAIN_SESS_LEN 42  /* u16 LE: length of the session fragment */
#define CHAIN_PARTS 44     /* gateway fragment, then session fragment */

#define MAGIC 0x56
#define FORMAT_VERSION 1
#define HEADER_OFFSET 38

static const char HEX[] = "0123456789abcdef";

/* Random bytes for event ids, drawn in blocks: one RAND_bytes call per 256 ids. Per thread, so
 * the socket thread and the log thread never share a pool. */
static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_used = sizeof(pool);

static int random16(unsigned char *out) {
  if (pool_used + 16 > sizeof(pool)) {
    if (RAND_bytes(pool, (int)sizeof(pool)) != 1) return 0;
    pool_used = 0;
  }
  memcpy(out, pool + pool_used, 16);
  /* Used bytes are not left behind for anyone reading process memory later. */
  memset(pool + pool_used, 0, 16);
  pool_used += 16;
  return 1;
}

/* 36 characters of a v4 UUID (RFC 9562), lowercase. */
static char *put_uuid(char *p, const unsigned char *r) {
  unsigned char b[16];
  memcpy(b, r, 16);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = HEX[b[i] >> 4];
    *p++ = HEX[b[i] & 15];
  }
  return p;
}

/* Decimal digits of a non-negative integer below 2^63. */
static int digits(uint64_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

static char *put_uint(char *p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + n;
}

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

#define MAX_SAFE 9007199254740991.0

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, "VIGIL_NATIVE_ARG", msg);
  return NULL;
}

/* One N-API call per argument (each costs tens of ns): get_typedarray_info fails on anything else. */
static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  size_t length;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (uint8_t *)ptr;
  *len = length;
  return 1;
}

/* A chain state's fields (CHAIN_* above), read and checked once per frame. */
typedef struct {
  uint8_t *state;
  const char *gw, *sess;
  uint16_t gw_len, sess_len;
  uint64_t seq;
} chain_view;

static int chain_view_of(uint8_t *chain, size_t chain_len, chain_view *v) {
  double seq_d;
  if (chain_len < CHAIN_PARTS) return 0;
  memcpy(&seq_d, chain + CHAIN_SEQ, 8);
  memcpy(&v->gw_len, chain + CHAIN_GW_LEN, 2);
  memcpy(&v->sess_len, chain + CHAIN_SESS_LEN, 2);
  if ((size_t)CHAIN_PARTS + v->gw_len + v->sess_len > chain_len || !(seq_d >= 0 && seq_d < MAX_SAFE)) return 0;
  v->state = chain;
  v->gw = (const char *)chain + CHAIN_PARTS;
  v->sess = v->gw + v->gw_len;
  v->seq = (uint64_t)seq_d;
  return 1;
}

/* Keys in canonical (sorted) order, exactly as codec.ts sealFrame writes them. */
static const char D_C2S[] = "{\"direction\":\"c2s\",\"event_id\":\"";
static const char D_S2C[] = "{\"direction\":\"s2c\",\"event_id\":\"";
static const char PREV[] = ",\"prev_hash\":\"";
static const char SEQ[] = "\",\"seq\":";
static const char TAIL[] = ",\"type\":\"frame\",\"version\":1}";

/* Size of a frame record (magic .. data) of chain `v` with a msg_type part of type_len bytes. */
static size_t frame_record_size(const chain_view *v, size_t type_len, uint64_t time, size_t data_len, size_t *header_len) {
  *header_len = (sizeof(D_C2S) - 1) + 36 + v->gw_len + type_len + (sizeof(PREV) - 1) + 64 + (sizeof(SEQ) - 1) + (size_t)digits(v->seq) + v->sess_len +
                (size_t)digits(time) + (sizeof(TAIL) - 1);
  return HEADER_OFFSET + *header_len + data_len;
}

/*
 * Write the frame record of chain `v` at rec (room for its frame_record_size checked by the
 * caller) and advance the chain. `type_part` is `,"msg_type":<JSON string>` or empty. Returns NULL,
 * or what failed, with its error code in *code (nothing is then advanced).
 */
static const char *seal_record(uint8_t *rec, chain_view *v, uint32_t s2c, const uint8_t *type_part, size_t type_len, uint64_t time,
                               const uint8_t *data, size_t data_len, size_t header_len, const char **code) {
  unsigned char rnd[16];
  if (!random16(rnd)) {
    *code = "VIGIL_NATIVE_RAND";
    return "RAND_bytes failed";
  }
  size_t total = HEADER_OFFSET + header_len + data_len;
  uint8_t *chain = v->state;
  char *p = (char *)rec + HEADER_OFFSET;
  p = s2c ? PUT_LIT(p, D_S2C) : PUT_LIT(p, D_C2S);
  p = put_uuid(p, rnd);
  p = put(p, v->gw, v->gw_len);
  if (type_len) p = put(p, (const char *)type_part, type_len);
  p = PUT_LIT(p, PREV);
  for (int i = 0; i < 32; i++) {
    *p++ = HEX[chain[CHAIN_HASH + i] >> 4];
    *p++ = HEX[chain[CHAIN_HASH + i] & 15];
  }
  p = PUT_LIT(p, SEQ);
  p = put_uint(p, v->seq, digits(v->seq));
  p = put(p, v->sess, v->sess_len);
  p = put_uint(p, time, digits(time));
  p = PUT_LIT(p, TAIL);
  if (data_len) memcpy(p, data, data_len); /* an empty Uint8Array may have no data pointer */

  rec[0] = MAGIC;
  rec[1] = FORMAT_VERSION;
  rec[34] = (uint8_t)(header_len >> 24);
  rec[35] = (uint8_t)(header_len >> 16);
  rec[36] = (uint8_t)(header_len >> 8);
  rec[37] = (uint8_t)header_len;

  sha256_ctx ctx;
  unsigned char digest[32];
  if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, chain + CHAIN_HASH, 32) != 1 || SHA256_Update(&ctx, rec + 34, total - 34) != 1 ||
      SHA256_Final(digest, &ctx) != 1) {
    *code = "VIGIL_NATIVE_SHA256";
    return "SHA-256 failed";
  }
  memcpy(rec + 2, digest, 32);
  memcpy(chain + CHAIN_HASH, digest, 32);
  double next = (double)(v->seq + 1);
  memcpy(chain + CHAIN_SEQ, &next, 8);
  v->seq++;
  return NULL;
}

static napi_value seal_frame(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7) return fail(env, "sealFrame takes 7 arguments");

  uint8_t *out, *chain, *type_part = NULL, *data;
  size_t out_len, chain_len, type_len = 0, data_len;
  uint32_t out_off, s2c;
  double time_d;
  napi_valuetype tt;
  chain_view v;
  if (!bytes_of(env, argv[0], &out, &out_len)) return fail(env, "out must be a Uint8Array");
  if (napi_get_value_uint32(env, argv[1], &out_off) != napi_ok || out_off > out_len) return fail(env, "bad out offset");
  if (!bytes_of(env, argv[2], &chain, &chain_len) || chain_len < CHAIN_PARTS) return fail(env, "chain must be a chain state");
  if (napi_get_value_uint32(env, argv[3], &s2c) != napi_ok) return fail(env, "direction must be 0 or 1");
  if (napi_typeof(env, argv[4], &tt) != napi_ok) return fail(env, "bad msg_type part");
  if (tt != napi_undefined && !bytes_of(env, argv[4], &type_part, &type_len)) return fail(env, "msg_type part must be a Uint8Array or undefined");
  if (napi_get_value_double(env, argv[5], &time_d) != napi_ok || !(time_d >= 0 && time_d <= MAX_SAFE) || time_d != (double)(int64_t)time_d)
    return fail(env, "time must be a non-negative safe integer");
  if (!bytes_of(env, argv[6], &data, &data_len)) return fail(env, "data must be a Uint8Array");
  if (!chain_view_of(chain, chain_len, &v)) return fail(env, "corrupt chain state");

  size_t header_len;
  size_t total = frame_record_size(&v, type_len, (uint64_t)time_d, data_len, &header_len);
  napi_value result;
  if (total > (size_t)out_len - out_off) {
    napi_create_double(env, -(double)total, &result);
    return result;
  }
  const char *code = NULL;
  const char *err = seal_record(out + out_off, &v, s2c, type_part, type_len, (uint64_t)time_d, data, data_len, header_len, &code);
  if (err) {
    napi_throw_error(env, code, err);
    return NULL;
  }
  napi_create_uint32(env, (uint32_t)(out_off + total), &result);
  return result;
}

/*
 * The recorder thread's batch loop (gateway/src/recorder/thread/host.ts): seal a run of
 * consecutive FRAME ops of a socket-thread batch straight into an event-log record run, with one
 * call for many frames instead of several per frame.
 *
 *   sealFrames(batch, pos, end, run, runAt, chains, io) -> position of the first op not sealed
 *
 *   batch   the batch (gateway/src/recorder/thread/wire.ts); ops from pos to end
 *   run     the record run being built (eventlog/src/run.ts); records are written from runAt on
 *   chains  the natively sealed chains by slot, in a ring of N entries: owners (Float64Array(N),
 *           slot + 1 of the chain at slot % N, or 0), states and keys (arrays of N: its chain
 *           state and its record key, the session id as UTF-8). A slot whose entry is another
 *           slot's (the ring wrapped past a long-lived session) is left to the caller.
 *   io      Float64Array(4), written on every return, also when it throws after sealing some
 *           records (the caller accounts them before the error goes on): [0] end of the records
 *           written in run, [1] records written, [2] bytes of their values (sealed events),
 *           [3] the size of the next record when it did not fit in run, -1 when sealing failed
 *           (RAND_bytes or SHA-256; the error is thrown), else 0
 *
 * Each record is the local log's record (eventlog/src/local/record.ts) with offset, timestamp and
 * CRC left zero for the log to stamp: u32be length, u32 crc, u64 offset, u64 timestamp, u8 format,
 * u16be key length, key, u16be header count (0), u32be value length, value (the sealed event).
 *
 * It stops, leaving the op to the caller's JS path, at any op that is not a FRAME, a frame of a
 * slot without a native state here, a msg_type that is not plain printable ASCII (the JS path
 * escapes it canonically), a time that is not a safe integer, or a record that does not fit in
 * run. A FRAME op cut short (lengths past `end`) stops it too; the JS reader refuses it.
 */
#define OP_FRAME 2
#define NO_TYPE 255
#define REC_FORMAT 1
#define REC_FORMAT_AT 24
#define REC_KEY_AT 27
#define REC_OVERHEAD 33
#define TYPE_PREFIX ",\"msg_type\":\""

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* The Uint8Array at index i of an array (states or keys); 0 for a hole or anything else. The
 * arrays are the host's own (plain, holey arrays of Buffers): no getters run here. */
static int element_bytes(napi_env env, napi_value array, uint32_t i, uint8_t **data, size_t *len) {
  napi_value v;
  return napi_get_element(env, array, i, &v) == napi_ok && bytes_of(env, v, data, len);
}

static napi_value seal_frames(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7) return fail(env, "sealFrames takes 7 arguments");
  uint8_t *batch, *run;
  size_t batch_len, run_len;
  uint32_t pos, end, run_at;
  napi_value owners_v, states_v, keys_v;
  bool is_array;
  napi_typedarray_type type;
  size_t owners_len, io_len;
  void *owners_ptr, *io_ptr;
  if (!bytes_of(env, argv[0], &batch, &batch_len) || batch_len > UINT32_MAX) return fail(env, "batch must be a Uint8Array (< 4 GiB)");
  if (napi_get_value_uint32(env, argv[1], &pos) != napi_ok || napi_get_value_uint32(env, argv[2], &end) != napi_ok || end > batch_len || pos > end)
    return fail(env, "bad batch range");
  if (!bytes_of(env, argv[3], &run, &run_len) || run_len > UINT32_MAX) return fail(env, "run must be a Uint8Array (< 4 GiB)");
  if (napi_get_value_uint32(env, argv[4], &run_at) != napi_ok || run_at > run_len) return fail(env, "bad run offset");
  if (napi_get_named_property(env, argv[5], "owners", &owners_v) != napi_ok || napi_get_named_property(env, argv[5], "states", &states_v) != napi_ok ||
      napi_get_named_property(env, argv[5], "keys", &keys_v) != napi_ok)
    return fail(env, "chains must be {owners, states, keys}");
  if (napi_get_typedarray_info(env, owners_v, &type, &owners_len, &owners_ptr, NULL, NULL) != napi_ok || type != napi_float64_array || owners_len == 0 ||
      owners_len > UINT32_MAX)
    return fail(env, "chains.owners must be a Float64Array");
  if (napi_is_array(env, states_v, &is_array) != napi_ok || !is_array || napi_is_array(env, keys_v, &is_array) != napi_ok || !is_array)
    return fail(env, "chains.states and chains.keys must be arrays");
  if (napi_get_typedarray_info(env, argv[6], &type, &io_len, &io_ptr, NULL, NULL) != napi_ok || type != napi_float64_array || io_len < 4)
    return fail(env, "io must be a Float64Array(4)");
  const double *owners = (const double *)owners_ptr;
  double *io = (double *)io_ptr;
  double records = 0, value_bytes = 0, next = 0;
  const char *err_code = NULL, *err = NULL;
  int64_t last_slot = -1;
  uint8_t *state = NULL, *key = NULL;
  size_t state_len = 0, key_len = 0;
  /* `,"msg_type":"` + at most 254 bytes + `"` */
  uint8_t type_part[sizeof(TYPE_PREFIX) - 1 + 254 + 1];
  memcpy(type_part, TYPE_PREFIX, sizeof(TYPE_PREFIX) - 1);

  while (pos < end && batch[pos] == OP_FRAME) {
    /* Every length is checked against `end` before the bytes it covers are read. */
    uint32_t p = pos;
    if (end - p < 7) break;
    uint32_t slot;
    memcpy(&slot, batch + p + 1, 4);
    uint32_t s2c = batch[p + 5] != 0;
    uint32_t type_len = batch[p + 6];
    p += 7;
    size_t part_len = 0;
    if (type_len != NO_TYPE) {
      if (end - p < type_len) break;
      int plain = type_len > 0;
      for (uint32_t i = 0; i < type_len; i++) {
        uint8_t c = batch[p + i];
        /* JSON.stringify leaves exactly these unescaped in printable ASCII. */
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') plain = 0;
      }
      if (!plain) break;
      memcpy(type_part + sizeof(TYPE_PREFIX) - 1, batch + p, type_len);
      part_len = sizeof(TYPE_PREFIX) - 1 + type_len;
      type_part[part_len++] = '"';
      p += type_len;
    }
    if (end - p < 12) break;
    double time_d;
    uint32_t data_len;
    memcpy(&time_d, batch + p, 8);
    memcpy(&data_len, batch + p + 8, 4);
    p += 12;
    if (end - p < data_len) break;
    if (!(time_d >= 0 && time_d <= MAX_SAFE) || time_d != (double)(int64_t)time_d) break;

    uint32_t ring = (uint32_t)(slot % owners_len);
    if (owners[ring] != (double)slot + 1) break;
    /* Consecutive frames of one session (a result's messages) reuse its state and key: the
     * buffers' memory stays where it is for the whole call (no JS runs in between). */
    if ((int64_t)slot != last_slot) {
      /* A scope per lookup: the handles of this state and key go with it. */
      napi_handle_scope scope;
      if (napi_open_handle_scope(env, &scope) != napi_ok) break;
      int ok = element_bytes(env, states_v, ring, &state, &state_len) && element_bytes(env, keys_v, ring, &key, &key_len) && key_len <= 0xffff;
      napi_close_handle_scope(env, scope);
      if (!ok) break;
      last_slot = slot;
    }
    chain_view v;
    if (!chain_view_of(state, state_len, &v)) break;

    size_t header_len;
    size_t value_len = frame_record_size(&v, part_len, (uint64_t)time_d, data_len, &header_len);
    size_t size = REC_OVERHEAD + key_len + value_len;
    if (size > UINT32_MAX - run_len) break; /* no run could hold it: the JS path refuses it */
    if (size > run_len - run_at) {
      next = (double)size;
      break;
    }
    uint8_t *rec = run + run_at;
    memset(rec, 0, REC_FORMAT_AT);
    put_be32(rec, (uint32_t)(size - 4));
    rec[REC_FORMAT_AT] = REC_FORMAT;
    rec[REC_FORMAT_AT + 1] = (uint8_t)(key_len >> 8);
    rec[REC_FORMAT_AT + 2] = (uint8_t)key_len;
    if (key_len) memcpy(rec + REC_KEY_AT, key, key_len);
    uint8_t *h = rec + REC_KEY_AT + key_len;
    h[0] = 0;
    h[1] = 0;
    put_be32(h + 2, (uint32_t)value_len);
    err = seal_record(h + 6, &v, s2c, type_part, part_len, (uint64_t)time_d, batch + p, data_len, header_len, &err_code);
    if (err) {
      next = -1;
      break;
    }
    run_at += (uint32_t)size;
    records++;
    value_bytes += (double)value_len;
    pos = p + data_len;
  }
  io[0] = run_at;
  io[1] = records;
  io[2] = value_bytes;
  io[3] = next;
  if (err) {
    napi_throw_error(env, err_code, err);
    return NULL;
  }
  napi_value result;
  napi_create_uint32(env, pos, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "sealFrame", NAPI_AUTO_LENGTH, seal_frame, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sealFrame", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "sealFrames", NAPI_AUTO_LENGTH, seal_frames, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sealFrames", fn) != napi_ok) return NULL;
  return exports;
}
