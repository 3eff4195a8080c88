// Positional argument readers for the native boundary. The TypeScript layer
// validates and converts every argument first (lib/native.ts documents the
// exact types); these checks only stop a programming error in lib/ from
// turning into undefined behaviour.
#pragma once

#include <napi.h>

#include <cstdint>

namespace uffd {

inline void CheckArgCount(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() < n) {
    throw Napi::TypeError::New(info.Env(), "native: too few arguments");
  }
}

inline int64_t IntArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "native: argument " + std::to_string(i) + " must be a number");
  }
  return info[i].As<Napi::Number>().Int64Value();
}

inline uint64_t UintArg(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsBigInt()) {
    bool lossless = false;
    return info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  }
  int64_t v = IntArg(info, i);
  if (v < 0) {
    throw Napi::RangeError::New(info.Env(), "native: argument " + std::to_string(i) + " must not be negative");
  }
  return static_cast<uint64_t>(v);
}

inline int FdArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(IntArg(info, i));
}

// Where a JS byte source lives in memory: Buffer, any TypedArray, DataView or
// ArrayBuffer. Returns false if the value is none of these.
// Views are read with the raw C API, which gives their data pointer directly:
// Napi's ArrayBuffer() of a view over a SharedArrayBuffer throws a bare
// "Invalid argument" (napi_get_arraybuffer_info rejects a shared buffer).
inline bool BytesOf(Napi::Value v, uint8_t** data, size_t* length) {
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    *data = static_cast<uint8_t*>(ab.Data());
    *length = ab.ByteLength();
    return true;
  }
  void* bytes = nullptr;
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t elements = 0;
    if (napi_get_typedarray_info(v.Env(), v, &type, &elements, &bytes, nullptr, nullptr) != napi_ok) return false;
    *data = static_cast<uint8_t*>(bytes);
    *length = v.As<Napi::TypedArray>().ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    if (napi_get_dataview_info(v.Env(), v, length, &bytes, nullptr, nullptr) != napi_ok) return false;
    *data = static_cast<uint8_t*>(bytes);
    return true;
  }
  return false;
}

}  // namespace uffd
