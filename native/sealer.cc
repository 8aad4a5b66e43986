// The native sealer (ADR 0040): for one month key, the token and the sealed vault form of an identifier, exactly what
// `tokenAndSeal` in services/core/pseudonym/monthKeys.ts computes with node:crypto, byte for byte:
//   mac    = HMAC-SHA-256(token key, "<type>:<value>")
//   token  = hex(mac[0..16))
//   sealed = nonce | tag | AES-256-GCM(vault key, nonce = mac[16..28), aad = "<month>:<token>", value)
// returned as [token, base64(sealed)] (with padding, as Buffer#toString('base64')).
//
// Why native: per new identifier node:crypto builds an Hmac and a Cipheriv object, schedules both keys again and makes
// five buffers (benchmarks/results/native-crypto-probe-2026-12-05.md); here both keys are scheduled once per month key
// and each identifier costs one context copy and one IV reset. The primitives are OpenSSL's own, the one linked into
// Node (this file is compiled against Node's headers and links nothing: the symbols resolve in the node process).
//
// Key material lives in OpenSSL contexts owned by a month object; `close` (or the garbage collector) frees them, and
// OpenSSL cleanses key schedules when it frees a context.
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>
#include <string>

namespace {

constexpr size_t kTokenBytes = 16;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kKeyBytes = 32;
constexpr size_t kMaxMonthBytes = 16;

struct Month {
  EVP_MAC_CTX *mac = nullptr;    // HMAC-SHA-256 keyed with the token key; copied per identifier
  EVP_CIPHER_CTX *gcm = nullptr; // AES-256-GCM keyed with the vault key; only the IV is set per identifier
  char month[kMaxMonthBytes];
  size_t monthLen = 0;
};

void freeMonth(Month *m) {
  if (m->mac) EVP_MAC_CTX_free(m->mac);
  if (m->gcm) EVP_CIPHER_CTX_free(m->gcm);
  m->mac = nullptr;
  m->gcm = nullptr;
}

void finalizeMonth(napi_env, void *data, void *) {
  Month *m = static_cast<Month *>(data);
  freeMonth(m);
  delete m;
}

napi_value fail(napi_env env, const char *what) {
  // OpenSSL's error queue is this thread's, shared with node:crypto: leave nothing of ours in it.
  ERR_clear_error();
  napi_throw_error(env, "ERR_CDR_NATIVE_SEALER", what);
  return nullptr;
}

bool bufferArg(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return false;
  void *d = nullptr;
  if (napi_get_buffer_info(env, v, &d, len) != napi_ok) return false;
  *data = static_cast<const uint8_t *>(d);
  return true;
}

// A JavaScript string as UTF-8 appended to `out` (lone surrogates become U+FFFD, as Buffer.from does).
bool appendUtf8(napi_env env, napi_value v, std::string &out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return false;
  size_t at = out.size();
  out.resize(at + len + 1);
  size_t written = 0;
  if (napi_get_value_string_utf8(env, v, &out[at], len + 1, &written) != napi_ok || written != len) return false;
  out.resize(at + len);
  return true;
}

// open(tokenKey: Buffer, vaultKey: Buffer, month: string) → month object
napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 3) return fail(env, "open(tokenKey, vaultKey, month)");
  const uint8_t *tokenKey, *vaultKey;
  size_t tokenKeyLen, vaultKeyLen;
  if (!bufferArg(env, argv[0], &tokenKey, &tokenKeyLen) || !bufferArg(env, argv[1], &vaultKey, &vaultKeyLen)) return fail(env, "open: keys must be Buffers");
  if (vaultKeyLen != kKeyBytes || tokenKeyLen == 0) return fail(env, "open: a vault key has 32 bytes and a token key at least one");
  std::string month;
  if (!appendUtf8(env, argv[2], month) || month.empty() || month.size() > kMaxMonthBytes) return fail(env, "open: month must be a short string");

  Month *m = new Month();
  std::memcpy(m->month, month.data(), month.size());
  m->monthLen = month.size();
  EVP_MAC *hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  bool ok = hmac != nullptr && (m->mac = EVP_MAC_CTX_new(hmac)) != nullptr && EVP_MAC_init(m->mac, tokenKey, tokenKeyLen, params) == 1;
  if (hmac) EVP_MAC_free(hmac); // the context keeps its own reference
  ok = ok && (m->gcm = EVP_CIPHER_CTX_new()) != nullptr && EVP_EncryptInit_ex(m->gcm, EVP_aes_256_gcm(), nullptr, vaultKey, nullptr) == 1 &&
       EVP_CIPHER_CTX_ctrl(m->gcm, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) == 1;
  if (!ok) {
    freeMonth(m);
    delete m;
    return fail(env, "open: OpenSSL refused the keys");
  }
  napi_value out;
  if (napi_create_external(env, m, finalizeMonth, nullptr, &out) != napi_ok) {
    freeMonth(m);
    delete m;
    return fail(env, "open: could not make the month object");
  }
  return out;
}

bool monthArg(napi_env env, napi_value v, Month **m) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return false;
  void *data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == nullptr) return false;
  *m = static_cast<Month *>(data);
  return true;
}

const char kHex[] = "0123456789abcdef";

// seal(month, type: string, value: string) → [token hex, base64(nonce | tag | ciphertext)]
napi_value Seal(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Month *m = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 3 || !monthArg(env, argv[0], &m))
    return fail(env, "seal(month, type, value)");
  if (m->mac == nullptr) return fail(env, "seal: this month's key was closed");
  // message = "<type>:<value>"; the value is its tail
  std::string message;
  message.reserve(64);
  if (!appendUtf8(env, argv[1], message)) return fail(env, "seal: type must be a string");
  message.push_back(':');
  size_t valueAt = message.size();
  if (!appendUtf8(env, argv[2], message)) return fail(env, "seal: value must be a string");
  const uint8_t *msg = reinterpret_cast<const uint8_t *>(message.data());
  size_t valueLen = message.size() - valueAt;

  uint8_t mac[32];
  size_t macLen = 0;
  EVP_MAC_CTX *h = EVP_MAC_CTX_dup(m->mac);
  bool ok = h != nullptr && EVP_MAC_update(h, msg, message.size()) == 1 && EVP_MAC_final(h, mac, &macLen, sizeof mac) == 1 && macLen == 32;
  if (h) EVP_MAC_CTX_free(h);
  if (!ok) return fail(env, "seal: HMAC failed");

  // out = token hex (32) | base64(sealed)
  size_t sealedLen = kNonceBytes + kTagBytes + valueLen;
  std::string sealed(sealedLen, '\0');
  uint8_t *s = reinterpret_cast<uint8_t *>(&sealed[0]);
  std::memcpy(s, mac + kTokenBytes, kNonceBytes);
  char aad[kMaxMonthBytes + 1 + 2 * kTokenBytes];
  std::memcpy(aad, m->month, m->monthLen);
  aad[m->monthLen] = ':';
  char *tokenHex = aad + m->monthLen + 1;
  for (size_t i = 0; i < kTokenBytes; i++) {
    tokenHex[2 * i] = kHex[mac[i] >> 4];
    tokenHex[2 * i + 1] = kHex[mac[i] & 15];
  }
  int n = 0, fin = 0;
  ok = EVP_EncryptInit_ex(m->gcm, nullptr, nullptr, nullptr, s) == 1 &&
       EVP_EncryptUpdate(m->gcm, nullptr, &n, reinterpret_cast<const uint8_t *>(aad), static_cast<int>(m->monthLen + 1 + 2 * kTokenBytes)) == 1 &&
       EVP_EncryptUpdate(m->gcm, s + kNonceBytes + kTagBytes, &n, msg + valueAt, static_cast<int>(valueLen)) == 1 &&
       static_cast<size_t>(n) == valueLen && EVP_EncryptFinal_ex(m->gcm, s + kNonceBytes + kTagBytes + n, &fin) == 1 && fin == 0 &&
       EVP_CIPHER_CTX_ctrl(m->gcm, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), s + kNonceBytes) == 1;
  if (!ok) return fail(env, "seal: AES-256-GCM failed");

  std::string b64(4 * ((sealedLen + 2) / 3) + 1, '\0');
  int b64Len = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(&b64[0]), s, static_cast<int>(sealedLen));
  // Two flat strings (not one to be sliced in JavaScript: a slice is a view that every later read of a cached token
  // goes through).
  napi_value result, token, sealedB64;
  if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_string_latin1(env, tokenHex, 2 * kTokenBytes, &token) != napi_ok ||
      napi_create_string_latin1(env, b64.data(), static_cast<size_t>(b64Len), &sealedB64) != napi_ok || napi_set_element(env, result, 0, token) != napi_ok ||
      napi_set_element(env, result, 1, sealedB64) != napi_ok)
    return fail(env, "seal: could not make the result");
  return result;
}

// close(month): frees the contexts (and their key schedules) now rather than at garbage collection
napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Month *m = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 1 || !monthArg(env, argv[0], &m)) return fail(env, "close(month)");
  freeMonth(m);
  return nullptr;
}

} // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"seal", nullptr, Seal, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  return exports;
}
