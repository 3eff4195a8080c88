// Node-shaped errno errors: see errors.h. The code is the errno's name
// (strerrorname_np), as Node's own errors have it.
#include "errors.h"

#include <string.h>

#include <string>

namespace uffd {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* name = strerrorname_np(err);
  std::string code = name ? std::string(name) : std::string("UNKNOWN");
  std::string message = std::string(syscall) + " " + code + ": " + strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  throw ErrnoError(env, err, syscall);
}

}  // namespace uffd
