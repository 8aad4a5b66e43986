// The batch producer (ADR 0043): librdkafka's producer with one call per slice of messages and one delivery answer per
// slice, instead of @confluentinc/kafka-javascript's one call and one JavaScript event per message.
//
// Why: publishing cdr.pseudonymised cost ingest's main thread 7–10 µs per record through the package's binding
// (benchmarks/results/batch-producer-2026-12-07.md): per message it wraps the opaque in a V8 persistent handle, reads
// headers through property enumeration, copies the topic name, and per delivery report it builds a JavaScript object
// (with a copy of the key as an external buffer) and calls into JavaScript. Here the messages of a slice are queued in
// one call, and the delivery reports are counted on librdkafka's side: JavaScript hears once per slice, with the
// slice's first error.
//
// The library is the one the package built (its headers and librdkafka.so.1, linked with an rpath): same version,
// same properties, same error codes as the package's producer, so services/platform/kafka/nativePublisher.ts keeps its
// error model. Threads: one polls the client (delivery reports and error events, handed to JavaScript through a
// thread-safe function); `connect` and `close` wait on threads of their own, never on the JavaScript thread.
#define NAPI_VERSION 8
#include <node_api.h>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

enum EventKind { kDelivered = 1, kError = 2, kConnected = 3, kClosed = 4 };

struct Event {
  int kind;
  uint32_t id;
  int code;
  std::string message;
  bool fatal;
};

struct Producer {
  rd_kafka_t *rk = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::thread poller;
  std::thread connector;
  std::atomic<bool> stopping{false};
  // JavaScript thread only: answers still to come (slices, a connect, a close). While there are any, the thread-safe
  // function keeps the event loop alive, so a process awaiting a send does not end before its answer.
  uint32_t awaited = 0;
  bool closing = false;
  // Set when the thread-safe function may no longer be called: released after `close`, or the environment tearing down
  // (a process that ends without closing, while the poller still reports errors).
  std::mutex emitting;
  bool gone = false;
};

/** One slice of messages: counted down by the delivery reports; the first failure is kept. */
struct Slice {
  Producer *producer;
  uint32_t id;
  std::atomic<int> remaining{1}; // 1 = the producing call itself, released when it has queued what it could
  std::mutex lock;
  int code = 0;
  std::string message;
  bool fatal = false;
};

// Holding the lock while calling is safe only because the call never blocks (nonblocking, an unbounded queue): the
// JavaScript thread may be waiting for this lock in environmentGone.
void emit(Producer *p, Event *e) {
  std::lock_guard<std::mutex> guard(p->emitting);
  if (p->gone || napi_call_threadsafe_function(p->tsfn, e, napi_tsfn_nonblocking) != napi_ok) delete e;
}

// Runs on the JavaScript thread when its environment tears down, before Node frees the thread-safe function (cleanup
// hooks run in reverse order of registration, and the function registered its own first).
void environmentGone(void *arg) {
  Producer *p = static_cast<Producer *>(arg);
  std::lock_guard<std::mutex> guard(p->emitting);
  p->gone = true;
}

void finishSlice(Slice *s) {
  emit(s->producer, new Event{kDelivered, s->id, s->code, s->message, s->fatal});
  delete s;
}

void releaseSlice(Slice *s) {
  if (s->remaining.fetch_sub(1) == 1) finishSlice(s);
}

/** What made the client fail for good (an idempotent producer fenced, out of sequence…), as librdkafka words it. */
std::string fatalReason(rd_kafka_t *rk) {
  char reason[512];
  if (rd_kafka_fatal_error(rk, reason, sizeof reason) == RD_KAFKA_RESP_ERR_NO_ERROR) return rd_kafka_err2str(RD_KAFKA_RESP_ERR__FATAL);
  return reason;
}

void onDelivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *) {
  Slice *s = static_cast<Slice *>(m->_private);
  if (s == nullptr) return;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::lock_guard<std::mutex> guard(s->lock);
    if (s->code == 0) {
      s->code = m->err;
      char ignored[8];
      if (m->err == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_fatal_error(rk, ignored, sizeof ignored) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // After a fatal error librdkafka fails what it still held (as purged, -152): the publisher must see the
        // client is gone for good, as the package's binding shows it (code -150), and start a new one.
        s->code = RD_KAFKA_RESP_ERR__FATAL;
        s->fatal = true;
        s->message = fatalReason(rk);
      } else {
        s->message = rd_kafka_err2str(m->err);
      }
    }
  }
  releaseSlice(s);
}

void onError(rd_kafka_t *, int err, const char *reason, void *opaque) {
  Producer *p = static_cast<Producer *>(opaque);
  emit(p, new Event{kError, 0, err, reason ? reason : "", err == RD_KAFKA_RESP_ERR__FATAL});
}

// librdkafka writes its log to stderr unless told otherwise; its errors reach JavaScript through onError, as with
// the package (which drops the log unless an 'event.log' listener asks for it).
void onLog(const rd_kafka_t *, int, const char *, const char *) {}

void callJs(napi_env env, napi_value callback, void *context, void *data) {
  Event *e = static_cast<Event *>(data);
  Producer *p = static_cast<Producer *>(context);
  if (env != nullptr && callback != nullptr) {
    if (e->kind != kError && p->awaited > 0 && --p->awaited == 0) napi_unref_threadsafe_function(env, p->tsfn);
    napi_value undefined, args[5];
    napi_get_undefined(env, &undefined);
    napi_create_int32(env, e->kind, &args[0]);
    napi_create_uint32(env, e->id, &args[1]);
    napi_create_int32(env, e->code, &args[2]);
    napi_create_string_utf8(env, e->message.data(), e->message.size(), &args[3]);
    napi_get_boolean(env, e->fatal, &args[4]);
    napi_call_function(env, undefined, callback, 5, args, nullptr);
  }
  delete e;
}

void awaitAnswer(napi_env env, Producer *p) {
  if (p->awaited++ == 0) napi_ref_threadsafe_function(env, p->tsfn);
}

napi_value throwError(napi_env env, const std::string &message) {
  napi_throw_error(env, nullptr, message.c_str());
  return nullptr;
}

bool stringOf(napi_env env, napi_value v, std::string &out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return false;
  out.resize(len + 1);
  if (napi_get_value_string_utf8(env, v, out.data(), len + 1, &len) != napi_ok) return false;
  out.resize(len);
  return true;
}

enum class Allow { kBuffer, kStringOrBuffer };
enum class Bytes { kNull, kSome, kInvalid };
char empty[1] = {0};

/**
 * The bytes of `v` for librdkafka: null/undefined → kNull; a Buffer → its memory; a string (where allowed) → its UTF-8
 * in `scratch` (by length, so a U+0000 inside is kept). Zero-length bytes get a real pointer (`empty`).
 */
Bytes bytesOf(napi_env env, napi_value v, Allow allow, std::string &scratch, const void **data, size_t *len) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  *data = nullptr;
  *len = 0;
  if (type == napi_null || type == napi_undefined) return Bytes::kNull;
  if (type == napi_string) {
    if (allow != Allow::kStringOrBuffer || !stringOf(env, v, scratch)) return Bytes::kInvalid;
    *data = scratch.empty() ? empty : scratch.data();
    *len = scratch.size();
    return Bytes::kSome;
  }
  bool isBuffer = false;
  napi_is_buffer(env, v, &isBuffer);
  if (!isBuffer) return Bytes::kInvalid;
  void *memory = nullptr;
  napi_get_buffer_info(env, v, &memory, len);
  *data = *len == 0 ? empty : memory;
  return Bytes::kSome;
}

Producer *producerOf(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = nullptr;
  if (napi_get_cb_info(env, info, argc, argv, &self, nullptr) != napi_ok) return nullptr;
  if (napi_unwrap(env, self, &data) != napi_ok) return nullptr;
  return static_cast<Producer *>(data);
}

// A producer the garbage collector takes without `close` keeps its client (and this struct, which its threads use):
// the publisher always closes what it made.
void finalizeProducer(napi_env, void *, void *) {}

/** new Producer(conf: Record<string, string>, onEvent: (kind, id, code, message, fatal) => void) */
napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  napi_get_cb_info(env, info, &argc, argv, &self, nullptr);
  if (argc < 2) return throwError(env, "Producer(conf, onEvent)");
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  napi_value names;
  if (napi_get_property_names(env, argv[0], &names) != napi_ok) {
    rd_kafka_conf_destroy(conf);
    return throwError(env, "conf must be an object");
  }
  uint32_t count = 0;
  napi_get_array_length(env, names, &count);
  std::string name, value;
  for (uint32_t i = 0; i < count; i++) {
    napi_value n, v;
    napi_get_element(env, names, i, &n);
    napi_get_property(env, argv[0], n, &v);
    if (!stringOf(env, n, name) || !stringOf(env, v, value)) {
      rd_kafka_conf_destroy(conf);
      return throwError(env, "conf values must be strings");
    }
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return throwError(env, errstr);
    }
  }
  Producer *p = new Producer();
  rd_kafka_conf_set_opaque(conf, p);
  rd_kafka_conf_set_dr_msg_cb(conf, onDelivery);
  rd_kafka_conf_set_error_cb(conf, onError);
  rd_kafka_conf_set_log_cb(conf, onLog);
  napi_value resource;
  napi_create_string_utf8(env, "cdr-pipeline:batch-producer", NAPI_AUTO_LENGTH, &resource);
  if (napi_create_threadsafe_function(env, argv[1], nullptr, resource, 0, 1, nullptr, nullptr, p, callJs, &p->tsfn) != napi_ok) {
    rd_kafka_conf_destroy(conf);
    delete p;
    return throwError(env, "onEvent must be a function");
  }
  napi_unref_threadsafe_function(env, p->tsfn);
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (p->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
    delete p;
    return throwError(env, errstr);
  }
  // Only for a client that exists: a hook left for a struct deleted above ran on freed memory at exit (found from
  // outside: a certificate librdkafka refuses, then SIGABRT at the process's end).
  napi_add_env_cleanup_hook(env, environmentGone, p);
  p->poller = std::thread([p]() {
    while (!p->stopping.load()) rd_kafka_poll(p->rk, 200);
  });
  napi_wrap(env, self, p, finalizeProducer, nullptr, nullptr);
  return self;
}

/** connect(timeoutMs): answered by a `connected` event with librdkafka's code (0: the cluster answered). */
napi_value connectProducer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Producer *p = producerOf(env, info, &argc, argv);
  if (p == nullptr) return throwError(env, "not a producer");
  if (p->closing || p->connector.joinable()) return throwError(env, "connect once, before close");
  int32_t timeoutMs = 30000;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &timeoutMs);
  awaitAnswer(env, p);
  p->connector = std::thread([p, timeoutMs]() {
    const rd_kafka_metadata_t *md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, nullptr, &md, timeoutMs);
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    emit(p, new Event{kConnected, 0, err, err ? rd_kafka_err2str(err) : "", false});
  });
  return nullptr;
}

/**
 * One producing call (`produce`, `producePacked`): the topic handle, the slice its messages carry, and what the call
 * answers. A topic librdkafka cannot open is an answer, not a throw: the publisher would take a throw for a client gone
 * and retire a healthy one; librdkafka always says why, and should it not, the slice must still fail, never look sent.
 */
struct SliceCall {
  Producer *p;
  rd_kafka_topic_t *rkt;
  Slice *slice;
  uint32_t queued = 0;
  int code = 0;
  std::string message;
  bool fatal = false;

  SliceCall(Producer *producer, const std::string &topic, uint32_t id) : p(producer), rkt(rd_kafka_topic_new(producer->rk, topic.c_str(), nullptr)) {
    slice = new Slice();
    slice->producer = producer;
    slice->id = id;
    if (rkt == nullptr) {
      code = rd_kafka_last_error() != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_last_error() : RD_KAFKA_RESP_ERR__INVALID_ARG;
      message = std::string("topic ") + topic + ": " + rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(code));
    }
  }

  /** Queues one message; false (and the answer set) if librdkafka refused it. */
  bool queue(const rd_kafka_vu_t *vus, size_t n) {
    slice->remaining.fetch_add(1);
    rd_kafka_error_t *error = rd_kafka_produceva(p->rk, vus, n);
    if (error == nullptr) {
      queued++;
      return true;
    }
    slice->remaining.fetch_sub(1);
    code = rd_kafka_error_code(error);
    message = rd_kafka_error_string(error);
    fatal = rd_kafka_error_is_fatal(error);
    // librdkafka refuses to produce after a fatal error with the original code (an out-of-order sequence, 45, say),
    // where the package's binding gives -150: the publisher's signal to retire this client and start a new one.
    if (fatal) code = RD_KAFKA_RESP_ERR__FATAL;
    rd_kafka_error_destroy(error);
    return false;
  }
};

/** Ends a producing call: the slice awaits its reports if anything was queued; the call's answer. */
napi_value finishSlice(napi_env env, SliceCall &call) {
  if (call.rkt != nullptr) rd_kafka_topic_destroy(call.rkt);
  if (call.queued > 0) {
    awaitAnswer(env, call.p);
    releaseSlice(call.slice);
  } else {
    delete call.slice;
  }

  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_uint32(env, call.queued, &v);
  napi_set_named_property(env, result, "queued", v);
  napi_create_int32(env, call.code, &v);
  napi_set_named_property(env, result, "code", v);
  napi_create_string_utf8(env, call.message.data(), call.message.size(), &v);
  napi_set_named_property(env, result, "message", v);
  napi_get_boolean(env, call.fatal, &v);
  napi_set_named_property(env, result, "fatal", v);
  return result;
}

/**
 * produce(topic, keys, values, headerNames, headerValues, headerEnds, id) → { queued, code, message, fatal }
 * keys[i]: string | Buffer | null; values[i]: Buffer | null; the headers of message i are headerNames/headerValues
 * [headerEnds[i-1], headerEnds[i]) (values string | Buffer). Messages are queued in order until one is refused; a
 * `delivered` event with `id` follows once every queued one is reported (none if nothing was queued).
 */
napi_value produceSlice(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  Producer *p = producerOf(env, info, &argc, argv);
  if (p == nullptr) return throwError(env, "not a producer");
  if (argc < 7) return throwError(env, "produce(topic, keys, values, headerNames, headerValues, headerEnds, id)");
  if (p->closing) return throwError(env, "producer is closed");
  std::string topic;
  if (!stringOf(env, argv[0], topic)) return throwError(env, "topic must be a string");
  uint32_t count = 0, id = 0;
  napi_get_array_length(env, argv[2], &count);
  napi_get_value_uint32(env, argv[6], &id);
  uint32_t *headerEnds = nullptr;
  size_t headerEndsLength = 0;
  bool hasHeaders = false;
  napi_is_typedarray(env, argv[5], &hasHeaders);
  if (hasHeaders) {
    napi_typedarray_type type;
    void *data = nullptr;
    napi_get_typedarray_info(env, argv[5], &type, &headerEndsLength, &data, nullptr, nullptr);
    if (type != napi_uint32_array || headerEndsLength < count) return throwError(env, "headerEnds must be a Uint32Array, one end per message");
    headerEnds = static_cast<uint32_t *>(data);
  }

  uint32_t headerFrom = 0;
  SliceCall call(p, topic, id);
  std::string key, valueBytes;
  std::vector<std::string> headerNames, headerStrings;
  std::vector<rd_kafka_vu_t> vus;
  if (call.rkt == nullptr) count = 0;
  for (uint32_t i = 0; i < count; i++) {
    vus.clear();
    rd_kafka_vu_t vu;
    vu.vtype = RD_KAFKA_VTYPE_RKT;
    vu.u.rkt = call.rkt;
    vus.push_back(vu);
    vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu.u.i = RD_KAFKA_MSG_F_COPY;
    vus.push_back(vu);
    vu.vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu.u.ptr = call.slice;
    vus.push_back(vu);

    // A zero-length value, key or header value is empty, not null: librdkafka tells them apart by the pointer.
    napi_value v;
    const void *data = nullptr;
    size_t len = 0;
    napi_get_element(env, argv[2], i, &v);
    if (bytesOf(env, v, Allow::kBuffer, valueBytes, &data, &len) == Bytes::kInvalid) {
      call.code = RD_KAFKA_RESP_ERR__INVALID_ARG;
      call.message = "a message value must be a Buffer or null";
      break;
    }
    vu.vtype = RD_KAFKA_VTYPE_VALUE;
    vu.u.mem.ptr = const_cast<void *>(data);
    vu.u.mem.size = len;
    vus.push_back(vu);

    napi_get_element(env, argv[1], i, &v);
    const Bytes keyKind = bytesOf(env, v, Allow::kStringOrBuffer, key, &data, &len);
    if (keyKind == Bytes::kInvalid) {
      call.code = RD_KAFKA_RESP_ERR__INVALID_ARG;
      call.message = "a message key must be a string, a Buffer or null";
      break;
    }
    if (keyKind == Bytes::kSome) {
      vu.vtype = RD_KAFKA_VTYPE_KEY;
      vu.u.mem.ptr = const_cast<void *>(data);
      vu.u.mem.size = len;
      vus.push_back(vu);
    }

    const uint32_t headerTo = headerEnds ? headerEnds[i] : 0;
    if (headerTo > headerFrom) {
      headerNames.resize(headerTo - headerFrom);
      headerStrings.resize(headerTo - headerFrom);
    }
    bool badHeader = false;
    for (uint32_t h = headerFrom; h < headerTo; h++) {
      napi_value n, hv;
      napi_get_element(env, argv[3], h, &n);
      napi_get_element(env, argv[4], h, &hv);
      std::string &name = headerNames[h - headerFrom];
      if (!stringOf(env, n, name) || bytesOf(env, hv, Allow::kStringOrBuffer, headerStrings[h - headerFrom], &data, &len) != Bytes::kSome) {
        badHeader = true;
        break;
      }
      vu.vtype = RD_KAFKA_VTYPE_HEADER;
      vu.u.header.name = name.c_str();
      vu.u.header.val = data;
      vu.u.header.size = static_cast<ssize_t>(len);
      vus.push_back(vu);
    }
    if (badHeader) {
      call.code = RD_KAFKA_RESP_ERR__INVALID_ARG;
      call.message = "a header name must be a string and its value a string or a Buffer";
      break;
    }
    headerFrom = headerTo;
    if (!call.queue(vus.data(), vus.size())) break;
  }
  return finishSlice(env, call);
}

/** A typed array's elements, if `v` is one of `type`. */
template <typename T>
bool typedArrayOf(napi_env env, napi_value v, napi_typedarray_type type, T **data, size_t *length) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) return false;
  napi_typedarray_type actual;
  void *raw = nullptr;
  if (napi_get_typedarray_info(env, v, &actual, length, &raw, nullptr, nullptr) != napi_ok || actual != type) return false;
  *data = static_cast<T *>(raw);
  return true;
}

/**
 * producePacked(topic, values, valueEnds, keys, keyEnds, headerName, headerValues, headerEnds, from, to, id)
 *   → { queued, code, message, fatal }
 * Messages [from, to) of a packed batch (services/platform/kafka/packedMessages.ts, ADR 0044): message i's value, key
 * and header value are bytes [ends[i-1], ends[i]) of `values`, `keys`, `headerValues` (Uint8Array; ends Uint32Array),
 * every message with the one header `headerName`. Read straight from those buffers (librdkafka copies them): no
 * JavaScript value per message. Queued in order until one is refused, answered as `produce` is.
 */
napi_value producePacked(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  Producer *p = producerOf(env, info, &argc, argv);
  if (p == nullptr) return throwError(env, "not a producer");
  if (argc < 11)
    return throwError(env, "producePacked(topic, values, valueEnds, keys, keyEnds, headerName, headerValues, headerEnds, from, to, id)");
  if (p->closing) return throwError(env, "producer is closed");
  std::string topic, headerName;
  if (!stringOf(env, argv[0], topic)) return throwError(env, "topic must be a string");
  if (!stringOf(env, argv[5], headerName)) return throwError(env, "headerName must be a string");
  uint8_t *values = nullptr, *keys = nullptr, *headers = nullptr;
  uint32_t *valueEnds = nullptr, *keyEnds = nullptr, *headerEnds = nullptr;
  size_t valuesLength = 0, keysLength = 0, headersLength = 0, count = 0, keyCount = 0, headerCount = 0;
  if (!typedArrayOf(env, argv[1], napi_uint8_array, &values, &valuesLength) || !typedArrayOf(env, argv[3], napi_uint8_array, &keys, &keysLength) ||
      !typedArrayOf(env, argv[6], napi_uint8_array, &headers, &headersLength))
    return throwError(env, "values, keys and headerValues must be Uint8Arrays");
  if (!typedArrayOf(env, argv[2], napi_uint32_array, &valueEnds, &count) || !typedArrayOf(env, argv[4], napi_uint32_array, &keyEnds, &keyCount) ||
      !typedArrayOf(env, argv[7], napi_uint32_array, &headerEnds, &headerCount) || keyCount != count || headerCount != count)
    return throwError(env, "valueEnds, keyEnds and headerEnds must be Uint32Arrays, one end per message");
  uint32_t from = 0, to = 0, id = 0;
  napi_get_value_uint32(env, argv[8], &from);
  napi_get_value_uint32(env, argv[9], &to);
  napi_get_value_uint32(env, argv[10], &id);
  if (from > to || to > count) return throwError(env, "from and to must satisfy 0 <= from <= to <= the number of messages");
  // Every end in range and in order, before anything is queued: a bad array fails the call, never half a slice.
  auto ordered = [count](const uint32_t *ends, size_t length) {
    uint32_t last = 0;
    for (size_t i = 0; i < count; i++) {
      if (ends[i] < last || ends[i] > length) return false;
      last = ends[i];
    }
    return true;
  };
  if (!ordered(valueEnds, valuesLength) || !ordered(keyEnds, keysLength) || !ordered(headerEnds, headersLength))
    return throwError(env, "an end offset is out of order or past its buffer");

  SliceCall call(p, topic, id);
  if (call.rkt == nullptr) to = from;
  // A zero-length value, key or header value is empty, not null: librdkafka tells them apart by the pointer.
  auto at = [](uint8_t *base, const uint32_t *ends, uint32_t i) -> void * {
    const uint32_t start = i == 0 ? 0 : ends[i - 1];
    return ends[i] == start ? static_cast<void *>(empty) : static_cast<void *>(base + start);
  };
  auto span = [](const uint32_t *ends, uint32_t i) -> size_t { return ends[i] - (i == 0 ? 0 : ends[i - 1]); };
  rd_kafka_vu_t vus[6];
  for (uint32_t i = from; i < to; i++) {
    vus[0].vtype = RD_KAFKA_VTYPE_RKT;
    vus[0].u.rkt = call.rkt;
    vus[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[1].u.i = RD_KAFKA_MSG_F_COPY;
    vus[2].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[2].u.ptr = call.slice;
    vus[3].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[3].u.mem.ptr = at(values, valueEnds, i);
    vus[3].u.mem.size = span(valueEnds, i);
    vus[4].vtype = RD_KAFKA_VTYPE_KEY;
    vus[4].u.mem.ptr = at(keys, keyEnds, i);
    vus[4].u.mem.size = span(keyEnds, i);
    vus[5].vtype = RD_KAFKA_VTYPE_HEADER;
    vus[5].u.header.name = headerName.c_str();
    vus[5].u.header.val = at(headers, headerEnds, i);
    vus[5].u.header.size = static_cast<ssize_t>(span(headerEnds, i));
    if (!call.queue(vus, 6)) break;
  }
  return finishSlice(env, call);
}

/**
 * close(flushMs): flushes up to flushMs, stops the poller and destroys the client on a thread of its own, then a
 * `closed` event. Reports still owed for messages the flush did not see delivered never come (the publisher fails those
 * sends itself). A second close throws.
 */
napi_value closeProducer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Producer *p = producerOf(env, info, &argc, argv);
  if (p == nullptr) return throwError(env, "not a producer");
  if (p->closing) return throwError(env, "producer is already closed");
  p->closing = true;
  int32_t flushMs = 10000;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &flushMs);
  awaitAnswer(env, p);
  std::thread([p, flushMs]() {
    if (p->connector.joinable()) p->connector.join();
    rd_kafka_flush(p->rk, flushMs);
    p->stopping.store(true);
    rd_kafka_yield(p->rk);
    p->poller.join();
    rd_kafka_destroy(p->rk);
    p->rk = nullptr;
    // The last call, then the release, unless the environment went first (Node has freed the function then).
    std::lock_guard<std::mutex> guard(p->emitting);
    if (p->gone) return;
    Event *closed = new Event{kClosed, 0, 0, "", false};
    if (napi_call_threadsafe_function(p->tsfn, closed, napi_tsfn_nonblocking) != napi_ok) delete closed;
    p->gone = true;
    napi_release_threadsafe_function(p->tsfn, napi_tsfn_release);
  }).detach();
  return nullptr;
}

/**
 * injectFatalError(code, reason): librdkafka's own test hook (rd_kafka_test_fatal_error) — the client fails for good as
 * after a real idempotence failure. Tests only: the fatal path cannot be provoked from a healthy broker.
 */
napi_value injectFatalError(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Producer *p = producerOf(env, info, &argc, argv);
  if (p == nullptr || p->closing) return throwError(env, "not an open producer");
  int32_t code = RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
  std::string reason = "injected";
  if (argc >= 1) napi_get_value_int32(env, argv[0], &code);
  if (argc >= 2) stringOf(env, argv[1], reason);
  rd_kafka_test_fatal_error(p->rk, static_cast<rd_kafka_resp_err_t>(code), reason.c_str());
  return nullptr;
}

napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"connect", nullptr, connectProducer, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"produce", nullptr, produceSlice, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"producePacked", nullptr, producePacked, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, closeProducer, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"injectFatalError", nullptr, injectFatalError, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls, version;
  napi_define_class(env, "Producer", NAPI_AUTO_LENGTH, construct, nullptr, sizeof(methods) / sizeof(methods[0]), methods, &cls);
  napi_set_named_property(env, exports, "Producer", cls);
  napi_create_string_utf8(env, rd_kafka_version_str(), NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "librdkafkaVersion", version);
  return exports;
}

} // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
