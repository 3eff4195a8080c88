#pragma once

#include <napi.h>

namespace uffd {

void InitUnixSocket(Napi::Env env, Napi::Object exports);

}  // namespace uffd
