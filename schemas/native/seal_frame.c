/*
 * Native frame sealing: the same bytes as sealFrame() in schemas/src/codec.ts, without a JS
 * allocation per frame. One call seals one `frame` event of one chain:
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

static napi_value seal_frame(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7) return fail(env, "sealFrame takes 7 arguments");

  uint8_t *out, *chain, *type_part = NULL, *data;
  size_t out_len, chain_len, type_len = 0, data_len;
  uint32_t out_off, s2c;
  double seq_d, time_d;
  napi_valuetype tt;
  if (!bytes_of(env, argv[0], &out, &out_len)) return fail(env, "out must be a Uint8Array");
  if (napi_get_value_uint32(env, argv[1], &out_off) != napi_ok || out_off > out_len) return fail(env, "bad out offset");
  if (!bytes_of(env, argv[2], &chain, &chain_len) || chain_len < CHAIN_PARTS) return fail(env, "chain must be a chain state");
  if (napi_get_value_uint32(env, argv[3], &s2c) != napi_ok) return fail(env, "direction must be 0 or 1");
  if (napi_typeof(env, argv[4], &tt) != napi_ok) return fail(env, "bad msg_type part");
  if (tt != napi_undefined && !bytes_of(env, argv[4], &type_part, &type_len)) return fail(env, "msg_type part must be a Uint8Array or undefined");
  if (napi_get_value_double(env, argv[5], &time_d) != napi_ok || !(time_d >= 0 && time_d <= MAX_SAFE) || time_d != (double)(int64_t)time_d)
    return fail(env, "time must be a non-negative safe integer");
  if (!bytes_of(env, argv[6], &data, &data_len)) return fail(env, "data must be a Uint8Array");

  memcpy(&seq_d, chain + CHAIN_SEQ, 8);
  uint16_t gw_len, sess_len;
  memcpy(&gw_len, chain + CHAIN_GW_LEN, 2);
  memcpy(&sess_len, chain + CHAIN_SESS_LEN, 2);
  if ((size_t)CHAIN_PARTS + gw_len + sess_len > chain_len || !(seq_d >= 0 && seq_d < MAX_SAFE)) return fail(env, "corrupt chain state");
  const char *gw = (const char *)chain + CHAIN_PARTS;
  const char *sess = gw + gw_len;
  uint64_t seq = (uint64_t)seq_d, time = (uint64_t)time_d;
  int seq_digits = digits(seq), time_digits = digits(time);

  /* Keys in canonical (sorted) order, exactly as codec.ts sealFrame writes them. */
  static const char D_C2S[] = "{\"direction\":\"c2s\",\"event_id\":\"";
  static const char D_S2C[] = "{\"direction\":\"s2c\",\"event_id\":\"";
  static const char PREV[] = ",\"prev_hash\":\"";
  static const char SEQ[] = "\",\"seq\":";
  static const char TAIL[] = ",\"type\":\"frame\",\"version\":1}";
  size_t header_len = (sizeof(D_C2S) - 1) + 36 + gw_len + type_len + (sizeof(PREV) - 1) + 64 + (sizeof(SEQ) - 1) + (size_t)seq_digits + sess_len +
                      (size_t)time_digits + (sizeof(TAIL) - 1);
  size_t total = HEADER_OFFSET + header_len + data_len;
  napi_value result;
  if (total > (size_t)out_len - out_off) {
    napi_create_double(env, -(double)total, &result);
    return result;
  }

  unsigned char rnd[16];
  if (!random16(rnd)) {
    napi_throw_error(env, "VIGIL_NATIVE_RAND", "RAND_bytes failed");
    return NULL;
  }
  uint8_t *rec = out + out_off;
  char *p = (char *)rec + HEADER_OFFSET;
  p = s2c ? PUT_LIT(p, D_S2C) : PUT_LIT(p, D_C2S);
  p = put_uuid(p, rnd);
  p = put(p, gw, gw_len);
  if (type_len) p = put(p, (const char *)type_part, type_len);
  p = PUT_LIT(p, PREV);
  for (int i = 0; i < 32; i++) {
    *p++ = HEX[chain[CHAIN_HASH + i] >> 4];
    *p++ = HEX[chain[CHAIN_HASH + i] & 15];
  }
  p = PUT_LIT(p, SEQ);
  p = put_uint(p, seq, seq_digits);
  p = put(p, sess, sess_len);
  p = put_uint(p, time, time_digits);
  p = PUT_LIT(p, TAIL);
  memcpy(p, data, data_len);

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
    napi_throw_error(env, "VIGIL_NATIVE_SHA256", "SHA-256 failed");
    return NULL;
  }
  memcpy(rec + 2, digest, 32);
  memcpy(chain + CHAIN_HASH, digest, 32);
  double next = (double)(seq + 1);
  memcpy(chain + CHAIN_SEQ, &next, 8);

  napi_create_uint32(env, (uint32_t)(out_off + total), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "sealFrame", NAPI_AUTO_LENGTH, seal_frame, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sealFrame", fn) != napi_ok) return NULL;
  return exports;
}
